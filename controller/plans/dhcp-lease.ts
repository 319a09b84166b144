// A DHCP lease as controller-udhcpc.sh records it, read into what the network
// stage (boot/network.ts) reports and uses.

/** A lease as controller-udhcpc.sh records it in NETWORK_DIR/IF.lease. */
export interface Lease {
  readonly interface: string;
  readonly ip: string;
  /** From the subnet mask; 32 without one or with a mask that has holes, as the script configures it then. */
  readonly prefix: number;
  readonly routers: readonly string[];
  readonly dns: readonly string[];
  readonly hostname?: string;
  readonly domain?: string;
  readonly serverId?: string;
  readonly leaseSeconds?: number;
}

export type LeaseParse =
  | { readonly ok: true; readonly lease: Lease; /** What was left out, one sentence each. */ readonly skipped: readonly string[] }
  | { readonly ok: false; readonly problem: string };

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
/** As the update manifest matches host names. */
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*$/;
const LEASE_KEYS = ["interface", "ip", "subnet", "router", "dns", "hostname", "domain", "serverid", "lease"] as const;
type LeaseKey = (typeof LEASE_KEYS)[number];

/** 255.255.255.0 → 24; undefined for anything that is not a netmask. */
export function prefixOfNetmask(mask: string): number | undefined {
  if (!IPV4.test(mask)) return undefined;
  const bits = mask
    .split(".")
    .map((octet) => Number(octet).toString(2).padStart(8, "0"))
    .join("");
  return /^1*0*$/.test(bits) ? bits.replace(/0+$/, "").length : undefined;
}

/**
 * Reads a lease file: KEY=VALUE lines, as controller-udhcpc.sh writes them. Blank
 * lines and unknown keys are passed over (a later script may record more); a
 * line that is not KEY=VALUE, or a value that is not what its key holds, is
 * left out and said in `skipped`. Without an interface and an IPv4 address it
 * is no lease at all.
 */
export function parseLease(text: string): LeaseParse {
  const values = new Map<LeaseKey, string>();
  const skipped: string[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === "") return;
    const match = /^([a-z_]+)=(.*)$/.exec(line);
    if (match === null) {
      skipped.push(`line ${index + 1}: expected KEY=VALUE, got ${JSON.stringify(line)}`);
      return;
    }
    const [, key = "", value = ""] = match;
    if ((LEASE_KEYS as readonly string[]).includes(key)) values.set(key as LeaseKey, value.trim());
  });

  const name = values.get("interface") ?? "";
  if (name === "") return { ok: false, problem: "Cannot use the lease: it names no interface, expected a line interface=NAME" };
  const ip = values.get("ip") ?? "";
  if (!IPV4.test(ip)) return { ok: false, problem: `Cannot use the lease: got ip=${JSON.stringify(ip)}, expected an IPv4 address such as 10.0.2.15` };

  /** A space-separated list of IPv4 addresses; what is not one is skipped. */
  const addresses = (key: LeaseKey): string[] =>
    (values.get(key) ?? "").split(/\s+/).filter((word) => {
      if (word === "") return false;
      if (IPV4.test(word)) return true;
      skipped.push(`${key}: got ${JSON.stringify(word)}, expected an IPv4 address`);
      return false;
    });
  /** A value that must pass `valid`; an empty one means the server sent none. */
  const optional = (key: LeaseKey, valid: (value: string) => boolean, expected: string): string | undefined => {
    const value = values.get(key) ?? "";
    if (value === "") return undefined;
    if (valid(value)) return value;
    skipped.push(`${key}: got ${JSON.stringify(value)}, expected ${expected}`);
    return undefined;
  };

  const subnet = optional("subnet", (value) => prefixOfNetmask(value) !== undefined, "a netmask such as 255.255.255.0");
  const hostname = optional("hostname", (value) => HOSTNAME.test(value), "a host name such as lab-07");
  const domain = optional("domain", (value) => !/[\u0000-\u001f\u007f]/.test(value), "a domain name");
  const serverId = optional("serverid", (value) => IPV4.test(value), "an IPv4 address");
  const leaseText = optional("lease", (value) => /^\d{1,10}$/.test(value), "a number of seconds");
  const lease: Lease = {
    interface: name,
    ip,
    prefix: subnet === undefined ? 32 : (prefixOfNetmask(subnet) ?? 32),
    routers: addresses("router"),
    dns: addresses("dns"),
    ...(hostname === undefined ? {} : { hostname }),
    ...(domain === undefined ? {} : { domain }),
    ...(serverId === undefined ? {} : { serverId }),
    ...(leaseText === undefined ? {} : { leaseSeconds: Number(leaseText) }),
  };
  return { ok: true, lease, skipped };
}
