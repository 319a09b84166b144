// Who a report comes from, as the fleet server keys it: the machine-id the
// controller put into /etc/machine-id, the MACs of the machine's NICs and its
// host name. The server refuses an envelope whose fields are not well formed,
// and a refusal is forever, so what the files hold is made sendable here: an
// interface without hardware or a real MAC is left out, a host name that is not one is sent
// mended (and the sender says so); only a missing or malformed machine-id
// stops the machine from reporting, since nothing else names it.

import { isHostname } from "../config/schema.ts";
import { ETC_MACHINE_ID, PROC_HOSTNAME, SYS_CLASS_NET } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import { isMac } from "../update/manifest.ts";
import { isMachineId, MACS_MAX } from "./envelope.ts";

export interface MachineIdentity {
  readonly machineId: string;
  readonly macs: readonly string[];
  readonly hostname: string;
}

/** One entry of /sys/class/net: its name, its address file's content when it could be read, and whether a device is behind it. */
export interface NicAddress {
  readonly name: string;
  readonly address: string | undefined;
  /**
   * /sys/class/net/NAME/device is there: a NIC (PCI, USB, virtio), not a bridge, bond, VLAN,
   * veth, tun or ifb, whose MACs are made up or borrowed and may change every boot
   */
  readonly hardware: boolean;
}

/** What the files said, as read; undefined where a file could not be read. */
export interface IdentityFiles {
  readonly machineId: string | undefined;
  readonly nics: readonly NicAddress[];
  readonly hostname: string | undefined;
}

export type IdentityRead =
  | { readonly ok: true; readonly machine: MachineIdentity; /** what was mended or left out, for the log */ readonly notes: readonly string[] }
  | { readonly ok: false; readonly problem: string };

/** What a machine whose host name is unset or has nothing usable in it is called. */
export const UNNAMED_HOST = "unnamed";

const NO_MAC = "00:00:00:00:00:00";

/**
 * Pure: a host name the envelope's check takes. Characters a host name cannot
 * hold become "-", empty labels go, each label loses its leading "-" and is cut
 * to 63 characters; the kernel's "(none)" and what mends to nothing are UNNAMED_HOST.
 */
export function sendableHostname(raw: string): string {
  const name = raw.trim();
  if (isHostname(name)) return name;
  if (name === "(none)") return UNNAMED_HOST;
  const labels = name
    .replace(/[^A-Za-z0-9.-]/g, "-")
    .split(".")
    .map((label) => label.replace(/^-+/, "").slice(0, 63))
    .filter((label) => label !== "");
  const mended = labels.join(".");
  return isHostname(mended) ? mended : UNNAMED_HOST;
}

/** Pure: the MACs of the NICs in natural name order, lowercase, each once; interfaces without hardware, no address or an all-zero one left out. */
export function nicMacs(nics: readonly NicAddress[]): string[] {
  const macs: string[] = [];
  for (const nic of [...nics].sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }))) {
    const mac = nic.address?.trim().toLowerCase();
    if (!nic.hardware || mac === undefined || !isMac(mac) || mac === NO_MAC || macs.includes(mac)) continue;
    macs.push(mac);
  }
  return macs;
}

/** Pure: the identity the envelope carries, or why there is none. */
export function machineIdentity(files: IdentityFiles): IdentityRead {
  const machineId = files.machineId?.trim();
  if (machineId === undefined || !isMachineId(machineId)) {
    const got = machineId === undefined ? "no readable file" : machineId === "" ? "an empty file" : JSON.stringify(machineId.slice(0, 40));
    return { ok: false, problem: `Cannot name this machine: expected a machine-id (32 lowercase hex digits) in ${ETC_MACHINE_ID}, got ${got}` };
  }
  const notes: string[] = [];
  const allMacs = nicMacs(files.nics);
  if (allMacs.length > MACS_MAX) notes.push(`${allMacs.length} NICs have a MAC: only the first ${MACS_MAX} are sent`);
  const raw = files.hostname?.trim();
  const hostname = raw === undefined ? UNNAMED_HOST : sendableHostname(raw);
  if (raw === undefined) notes.push(`${PROC_HOSTNAME} cannot be read: the host name is sent as "${UNNAMED_HOST}"`);
  else if (hostname !== raw) notes.push(`the host name ${JSON.stringify(raw.slice(0, 80))} is not a valid host name: sent as "${hostname}"`);
  return { ok: true, machine: { machineId, macs: allMacs.slice(0, MACS_MAX), hostname }, notes };
}

async function readOrUndefined(system: System, path: string): Promise<string | undefined> {
  try {
    return await system.readText(path);
  } catch {
    return undefined;
  }
}

/** The identity files of the running system, read through `system`; what cannot be read is undefined. */
export async function readIdentityFiles(system: System): Promise<IdentityFiles> {
  const names = await system.readdir(SYS_CLASS_NET).catch(() => []);
  const nics = await Promise.all(
    names.map(async (name) => ({
      name,
      address: await readOrUndefined(system, `${SYS_CLASS_NET}/${name}/address`),
      hardware: (await system.lstat(`${SYS_CLASS_NET}/${name}/device`).catch(() => undefined)) !== undefined,
    })),
  );
  return { machineId: await readOrUndefined(system, ETC_MACHINE_ID), nics, hostname: await readOrUndefined(system, PROC_HOSTNAME) };
}
