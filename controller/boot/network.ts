// Stage "network": bring up networking in early userspace so the update check
// can reach its servers, within timeouts.network_seconds. No network is never
// fatal and never a hang: the stage says why in one warning, and the boot goes
// on with the local system.
//
// Why busybox udhcpc and not dracut's network modules: dracut has different
// ones for its two flavours (network-legacy for its shell init,
// network-manager or systemd-networkd for its systemd initrd), which behave
// differently, pull NetworkManager or systemd-networkd into the image, and
// wait on the network through dracut's initqueue with their own timeouts
// (rd.net.timeout.*), which the controller cannot bound per boot. busybox is
// one static binary that behaves the same in both flavours, and the
// controller runs it itself under a deadline it owns.
//
// Interfaces get DHCP one after another, not in parallel: System.exec cannot
// stop a command early, so a udhcpc started beside the one that wins would run
// on after the stage, and could still configure its interface (a second
// default route, another resolv.conf) while the boot goes on. One at a time,
// each under a time limit that ends before the deadline, nothing outlives the
// stage. Interfaces with carrier go first, so the usual machine with one
// cable plugged in gets its lease from the first udhcpc.
//
// The stage runs when something needs it (networkNeed, plans/network-need.ts):
// update.servers, or a kernel command line flag (net, ssh, lldpd,
// ssh_keys_url=, command_url=).
// With `net` every Ethernet interface gets its own lease, still one after
// another, each with an equal share of the time left; the report lists each.

import type { Config } from "../config/schema.ts";
import { type Lease, parseLease } from "../plans/dhcp-lease.ts";
import { networkNeed, type NetworkNeed } from "../plans/network-need.ts";
import type { Logger } from "../system/log.ts";
import { NETWORK_DIR, PROC_HOSTNAME, SYS_CLASS_NET, TOOLS, UDHCPC_SCRIPT } from "../system/paths.ts";
import type { System } from "../system/system.ts";

export interface NetworkResult {
  readonly status: "up" | "down" | "not-needed";
  /** The interface that got the lease. */
  readonly interface?: string;
  /** As configured, with the prefix length: "10.0.2.15/24". */
  readonly address?: string;
  /** MAC address of that interface. */
  readonly mac?: string;
  /** From the DHCP lease, else the kernel's host name unless it is unset ("(none)") or "localhost". For the report only: a DHCP server chose it, so it never selects config. */
  readonly hostname?: string;
  /** MAC addresses of every Ethernet interface seen, lowercase, for per-machine config. */
  readonly macs: string[];
  /** With `net` (every interface): each interface tried, with its address or why it has none. */
  readonly interfaces?: readonly InterfaceOutcome[];
  /** One sentence on what came of it, for the report. */
  readonly detail: string;
}

export interface InterfaceOutcome {
  readonly name: string;
  readonly mac?: string;
  /** "10.0.2.15/24" when it got a lease */
  readonly address?: string;
  readonly detail: string;
}

/** How often to look again while waiting for an interface or for carrier. */
const POLL_MS = 250;
/** Each wait for udev is this long at most, so the deadline is looked at in between. */
const SETTLE_SLICE_MS = 2000;
/** With network.interfaces, how long to wait for the others named once the first has appeared. */
const NAMED_GRACE_MS = 2000;
/** Autonegotiation takes one to three seconds on real NICs; an interface without carrier by then goes last. */
const CARRIER_GRACE_MS = 3000;
const LINK_UP_TIMEOUT_MS = 5000;
/** Less than this left is too little for a DHCP exchange. */
const MIN_DHCP_MS = 1000;
/** udhcpc's pause between DHCPDISCOVERs (busybox's default is 3 s; shorter means more tries within a short budget). */
const DISCOVER_PAUSE_S = 2;

/** ARPHRD_ETHER in /sys/class/net/IF/type. */
const ARPHRD_ETHER = "1";
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface Nic {
  readonly name: string;
  readonly mac: string | undefined;
}

interface Listing {
  /** Ethernet interfaces, in natural name order (eth2 before eth10). */
  readonly ethernet: readonly Nic[];
  /** The others, each with why: "lo (loopback)". */
  readonly skipped: readonly string[];
}

async function readSysfs(system: System, name: string, file: string): Promise<string | undefined> {
  try {
    return (await system.readText(`${SYS_CLASS_NET}/${name}/${file}`)).trim();
  } catch {
    // udev renames interfaces as they appear, and reading carrier of a link that is down is EINVAL
    return undefined;
  }
}

async function listInterfaces(system: System): Promise<Listing> {
  let names: string[];
  try {
    names = await system.readdir(SYS_CLASS_NET);
  } catch {
    return { ethernet: [], skipped: [] };
  }
  names.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const ethernet: Nic[] = [];
  const skipped: string[] = [];
  for (const name of names) {
    if (name === "lo") {
      skipped.push("lo (loopback)");
      continue;
    }
    const type = await readSysfs(system, name, "type");
    if (type !== ARPHRD_ETHER) {
      skipped.push(`${name} (${type === undefined ? "gone" : `type ${type}`})`);
      continue;
    }
    // Wi-Fi says it is Ethernet too, but needs an association before DHCP can work
    if ((await system.lstat(`${SYS_CLASS_NET}/${name}/phy80211`)) !== undefined) {
      skipped.push(`${name} (wireless)`);
      continue;
    }
    const mac = (await readSysfs(system, name, "address"))?.toLowerCase();
    ethernet.push({ name, mac: mac !== undefined && MAC.test(mac) && mac !== "00:00:00:00:00:00" ? mac : undefined });
  }
  return { ethernet, skipped };
}

function describeNics(nics: readonly Nic[]): string {
  return nics.map((nic) => `${nic.name} (${nic.mac ?? "no MAC address"})`).join(", ");
}

/** Interfaces to try, in network.interfaces' order when it names any; `listing` is everything seen. */
async function waitForInterfaces(system: System, log: Logger, config: Config, deadline: number): Promise<{ listing: Listing; candidates: Nic[] }> {
  const named = [...new Set(config.network.interfaces)];
  const selected = (listing: Listing): Nic[] =>
    named.length === 0 ? [...listing.ethernet] : named.flatMap((name) => listing.ethernet.filter((nic) => nic.name === name));
  const start = system.monotonicMs();
  const remaining = () => Math.max(0, deadline - system.monotonicMs());

  // NIC drivers are loaded by udev from their modalias: an interface may appear only after a while.
  let listing = await listInterfaces(system);
  if (selected(listing).length === 0) {
    log.info(`waiting up to ${seconds(remaining())} (timeouts.network_seconds) for ${named.length === 0 ? "an Ethernet interface" : named.join(" or ")}`);
  }
  let firstSeenAt: number | undefined;
  for (;;) {
    const found = selected(listing).length;
    if (found > 0) firstSeenAt ??= system.monotonicMs();
    const allNamed = named.length > 0 && found === named.length;
    // network.interfaces is an order of preference: give the others named a moment to appear too
    const enough = firstSeenAt !== undefined && (named.length === 0 || system.monotonicMs() - firstSeenAt >= NAMED_GRACE_MS);
    if (allNamed || enough || remaining() === 0) break;
    // udev renames interfaces right after they appear: a name is only worth using once it has settled
    await system.settleDevices(Math.min(SETTLE_SLICE_MS, remaining()));
    await system.sleep(Math.min(POLL_MS, remaining()));
    listing = await listInterfaces(system);
  }

  const candidates = selected(listing);
  const seen = [describeNics(listing.ethernet) || "no Ethernet interface", ...listing.skipped.map((entry) => `skipped ${entry}`)];
  log.info(`interfaces seen after ${seconds(system.monotonicMs() - start)}: ${seen.join(", ")}`);
  const missing = named.filter((name) => !candidates.some((nic) => nic.name === name));
  if (missing.length > 0) {
    log.warn(
      `network.interfaces names ${missing.join(", ")}, which did not appear as Ethernet ${missing.length === 1 ? "interface" : "interfaces"} ` +
        `within ${seconds(system.monotonicMs() - start)}${candidates.length === 0 ? "" : `; using ${candidates.map((nic) => nic.name).join(", ")}`}`,
    );
  }
  return { listing, candidates };
}

/** Brings the links up; those with carrier come first. A link that fails is a reason and left out. */
async function bringLinksUp(system: System, log: Logger, candidates: readonly Nic[], deadline: number, reasons: string[]): Promise<{ nic: Nic; carrier: boolean }[]> {
  const up: Nic[] = [];
  for (const [index, nic] of candidates.entries()) {
    const left = deadline - system.monotonicMs();
    if (left < MIN_DHCP_MS) {
      reasons.push(`no time left for ${candidates.slice(index).map((other) => other.name).join(", ")}`);
      break;
    }
    try {
      await system.exec([TOOLS.busybox, "ip", "link", "set", nic.name, "up"], { timeoutMs: Math.min(LINK_UP_TIMEOUT_MS, left) });
      up.push(nic);
    } catch (error) {
      reasons.push(`${nic.name}: ${messageOf(error)}`);
    }
  }
  if (up.length === 0) return [];

  const withCarrier = new Set<string>();
  const carrierUntil = Math.min(system.monotonicMs() + CARRIER_GRACE_MS, deadline);
  for (;;) {
    for (const nic of up) if ((await readSysfs(system, nic.name, "carrier")) === "1") withCarrier.add(nic.name);
    const left = carrierUntil - system.monotonicMs();
    if (withCarrier.size > 0 || left <= 0) break;
    await system.sleep(Math.min(POLL_MS, left));
  }
  // Carrier can be misreported or come late: interfaces without it are still tried, last.
  const links = up.map((nic) => ({ nic, carrier: withCarrier.has(nic.name) })).sort((a, b) => Number(b.carrier) - Number(a.carrier));
  log.info(`links up: ${links.map(({ nic, carrier }) => `${nic.name} (${carrier ? "carrier" : "no carrier yet"})`).join(", ")}`);
  return links;
}

export async function runNetworkStage(system: System, log: Logger, config: Config, need: NetworkNeed = networkNeed(config)): Promise<NetworkResult> {
  if (need.reasons.length === 0) {
    const detail = "no update server configured (update.servers is empty) and no net, ssh, lldpd, ssh_keys_url= or command_url= flag";
    log.info(`not needed: ${detail}`);
    return { status: "not-needed", macs: [], detail };
  }
  log.info(`needed for ${need.reasons.join(", ")}${need.everyInterface ? "; a lease on every Ethernet interface (net)" : ""}`);
  const start = system.monotonicMs();
  const deadline = start + config.timeouts.network_seconds * 1000;
  /** Why there is no network, one entry per thing that went wrong, for the one warning at the end. */
  const reasons: string[] = [];

  const { listing, candidates } = await waitForInterfaces(system, log, config, deadline);
  const macs = [...new Set(listing.ethernet.flatMap((nic) => (nic.mac === undefined ? [] : [nic.mac])))];
  if (candidates.length === 0) {
    const named = config.network.interfaces;
    reasons.push(named.length === 0 ? "no Ethernet interface appeared" : `none of network.interfaces (${named.join(", ")}) appeared`);
  }

  const links = await bringLinksUp(system, log, candidates, deadline, reasons);
  if (need.everyInterface) return leaseEveryInterface(system, log, links, macs, start, deadline, reasons);
  for (const [index, { nic, carrier }] of links.entries()) {
    const left = deadline - system.monotonicMs();
    if (left < MIN_DHCP_MS) {
      reasons.push(`no time left to ask for a lease on ${links.slice(index).map((link) => link.nic.name).join(", ")}`);
      break;
    }
    // an equal share of what is left for each interface still to try: one that has no DHCP server cannot starve the next
    const lease = await askForLease(system, log, nic, Math.floor(left / (links.length - index)));
    if (typeof lease === "string") {
      reasons.push(`${nic.name}${carrier ? "" : " (no carrier)"}: ${lease}`);
      continue;
    }
    const address = `${lease.ip}/${lease.prefix}`;
    const via = lease.routers[0] === undefined ? "without a router" : `via ${lease.routers[0]}`;
    const detail = `${nic.name} ${address} ${via} in ${seconds(system.monotonicMs() - start)}`;
    log.info(`lease: ${detail}${lease.dns.length === 0 ? "" : `, DNS ${lease.dns.join(" ")}`}`);
    const hostname = lease.hostname ?? (await kernelHostname(system));
    return {
      status: "up",
      interface: nic.name,
      address,
      ...(nic.mac === undefined ? {} : { mac: nic.mac }),
      ...(hostname === undefined ? {} : { hostname }),
      macs,
      detail,
    };
  }

  const why = reasons.join("; ");
  log.warn(`No network after ${seconds(system.monotonicMs() - start)} (${why}): booting the local system without an update check`);
  const hostname = await kernelHostname(system);
  return { status: "down", ...(hostname === undefined ? {} : { hostname }), macs, detail: why };
}

/** `net`: a lease on each link in turn, each with an equal share of what is left; the first lease is the one the update check uses. */
async function leaseEveryInterface(
  system: System,
  log: Logger,
  links: readonly { nic: Nic; carrier: boolean }[],
  macs: string[],
  start: number,
  deadline: number,
  reasons: string[],
): Promise<NetworkResult> {
  const outcomes: InterfaceOutcome[] = [];
  let first: { nic: Nic; address: string } | undefined;
  for (const [index, { nic, carrier }] of links.entries()) {
    const mac = nic.mac === undefined ? {} : { mac: nic.mac };
    const left = deadline - system.monotonicMs();
    if (left < MIN_DHCP_MS) {
      outcomes.push({ name: nic.name, ...mac, detail: "no time left to ask for a lease (timeouts.network_seconds)" });
      continue;
    }
    const lease = await askForLease(system, log, nic, Math.floor(left / (links.length - index)));
    if (typeof lease === "string") {
      const detail = `${carrier ? "" : "(no carrier) "}${lease}`;
      log.warn(`${nic.name}: ${detail}`);
      outcomes.push({ name: nic.name, ...mac, detail });
      continue;
    }
    const address = `${lease.ip}/${lease.prefix}`;
    const via = lease.routers[0] === undefined ? "without a router" : `via ${lease.routers[0]}`;
    const detail = `${address} ${via} in ${seconds(system.monotonicMs() - start)}`;
    log.info(`lease: ${nic.name} ${detail}`);
    outcomes.push({ name: nic.name, ...mac, address, detail });
    first ??= { nic, address };
  }
  const up = outcomes.filter((outcome) => outcome.address !== undefined);
  const summary = `${up.length} of ${outcomes.length} interfaces up${up.length === 0 ? "" : `: ${up.map((outcome) => `${outcome.name} ${outcome.address}`).join(", ")}`}`;
  const hostname = await kernelHostname(system);
  const host = hostname === undefined ? {} : { hostname };
  if (first === undefined) {
    const why = [...reasons, ...outcomes.map((outcome) => `${outcome.name}: ${outcome.detail}`)].join("; ") || "no Ethernet interface";
    log.warn(`No network after ${seconds(system.monotonicMs() - start)} (${why}): booting the local system without an update check`);
    return { status: "down", ...host, macs, interfaces: outcomes, detail: why };
  }
  log.info(summary);
  return {
    status: "up",
    interface: first.nic.name,
    address: first.address,
    ...(first.nic.mac === undefined ? {} : { mac: first.nic.mac }),
    ...host,
    macs,
    interfaces: outcomes,
    detail: summary,
  };
}

/** One udhcpc run on one interface within `budgetMs`: the lease, or why there is none. */
async function askForLease(system: System, log: Logger, nic: Nic, budgetMs: number): Promise<Lease | string> {
  const leasePath = `${NETWORK_DIR}/${nic.name}.lease`;
  // the lease file is this attempt's: one left from before would look like a lease
  await system.remove(leasePath);
  // udhcpc gives up by itself after tries × pause; the time limit only catches a stuck exchange
  const pause = Math.max(1, Math.min(DISCOVER_PAUSE_S, Math.floor(budgetMs / 1000)));
  const tries = Math.max(1, Math.floor(budgetMs / 1000 / pause));
  log.info(`${nic.name}: asking for a DHCP lease (up to ${seconds(budgetMs)})`);
  const argv = [TOOLS.busybox, "udhcpc", "-i", nic.name, "-f", "-q", "-n", "-t", String(tries), "-T", String(pause), "-s", UDHCPC_SCRIPT];
  let output = "";
  let failure: string | undefined;
  try {
    output = (await system.exec(argv, { timeoutMs: budgetMs })).stdout;
  } catch (error) {
    failure = messageOf(error);
  }
  let text: string;
  try {
    // also after a failure: udhcpc killed at its time limit right after the script configured the interface
    text = await system.readText(leasePath);
  } catch {
    if (failure !== undefined) return `no DHCP lease: ${failure}`;
    const said = output.trim() === "" ? "" : `: ${output.trim().split("\n").slice(-3).join(" | ")}`;
    return `udhcpc got a lease but ${UDHCPC_SCRIPT} did not record it in ${leasePath}${said}`;
  }
  const parsed = parseLease(text);
  if (!parsed.ok) return `${leasePath}: ${parsed.problem}`;
  if (parsed.lease.interface !== nic.name) {
    return `Cannot use the lease in ${leasePath}: got interface=${parsed.lease.interface}, expected ${nic.name}`;
  }
  if (parsed.skipped.length > 0) log.warn(`Ignoring parts of the DHCP lease in ${leasePath}: ${parsed.skipped.join("; ")}`);
  return parsed.lease;
}

async function kernelHostname(system: System): Promise<string | undefined> {
  try {
    const name = (await system.readText(PROC_HOSTNAME)).trim();
    return name === "" || name === "(none)" || name === "localhost" ? undefined : name;
  } catch {
    return undefined;
  }
}
