// The machine's identity for systemd and everything that reads
// /etc/machine-id (journald's files, DHCP client ids, dbus). Every machine of
// a fleet boots the same image, and /etc is a tmpfs seeded from it, so the id
// cannot come from the image: the image ships an empty /etc/machine-id, and
// the controller keeps each machine's own id on its BOOTEXT, makes it once
// (random, as systemd does) and puts it into the /etc tmpfs on every boot.

import { dirname } from "node:path";
import { machineIdFrom, parseMachineId } from "../plans/machine-id.ts";
import { type CutPoints, NO_CUTS } from "../system/cut-points.ts";
import type { Logger } from "../system/log.ts";
import type { TmpfsOutcome } from "../system/new-root-paths.ts";
import { BOOTEXT_MACHINE_ID, ETC_MACHINE_ID, NEWROOT } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import type { BootextResult } from "./bootext.ts";

/** A machine-id file is 33 bytes; anything much longer is not one, and is not read whole. */
const MACHINE_ID_MAX_BYTES = 256;

export type MachineIdSource =
  /** read from BOOTEXT, where an earlier boot kept it */
  | "bootext"
  /** BOOTEXT had none: a new one was made and kept there */
  | "generated"
  /** BOOTEXT held something that is not a machine-id: a new one replaced it */
  | "replaced"
  /** the controller put none into /etc: /etc/machine-id is whatever the image has */
  | "image";

export interface MachineIdResult {
  readonly source: MachineIdSource;
  /** the id now in /etc/machine-id, when the controller put it there */
  readonly id?: string;
  readonly detail: string;
}

/** Where the id is kept and where it goes. */
export interface MachineIdPlaces {
  readonly bootext: Pick<BootextResult, "mountPoint" | "readOnly">;
  /** labels.bootext, for messages */
  readonly bootextLabel: string;
  /** how the tmpfs mounts went; the id goes only into a tmpfs on /etc, never into the read-only image */
  readonly tmpfs: readonly TmpfsOutcome[];
}

function newMachineId(): string {
  return machineIdFrom(crypto.getRandomValues(new Uint8Array(16)));
}

export type KeptMachineId =
  | { readonly status: "kept"; readonly id: string }
  | { readonly status: "missing" }
  /** the file is there but holds no machine-id, or cannot be read: `problem` says which */
  | { readonly status: "invalid"; readonly problem: string };

/**
 * The id an earlier boot kept on BOOTEXT (mounted at `mountPoint`), read only.
 * The check stage places the machine in a rollout by it, before the mounts
 * stage makes one on a first boot.
 */
export async function readKeptMachineId(system: System, mountPoint: string): Promise<KeptMachineId> {
  const file = `${mountPoint}/${BOOTEXT_MACHINE_ID}`;
  if ((await system.lstat(file)) === undefined) return { status: "missing" };
  try {
    const parsed = parseMachineId(new TextDecoder().decode(await system.readBytes(file, MACHINE_ID_MAX_BYTES)));
    return parsed.ok ? { status: "kept", id: parsed.id } : { status: "invalid", problem: parsed.problem };
  } catch (error) {
    return { status: "invalid", problem: `Cannot read it: ${(error as Error).message}` };
  }
}

/** The id a rollout places this machine by, or why it has none (plans/rollout.ts). */
export type RolloutMachineId = { readonly id: string } | { readonly why: string };

/** The id kept on BOOTEXT for the check stage: never made there (the mounts stage makes it, after the check). */
export async function machineIdForRollout(system: System, bootext: Pick<BootextResult, "mountPoint">, bootextLabel: string): Promise<RolloutMachineId> {
  const name = `${bootextLabel}/${BOOTEXT_MACHINE_ID}`;
  if (bootext.mountPoint === undefined) return { why: `no ${bootextLabel} is mounted` };
  const kept = await readKeptMachineId(system, bootext.mountPoint);
  if (kept.status === "kept") return { id: kept.id };
  return { why: kept.status === "missing" ? `${name} has none yet: a first boot makes it after the check` : `${name}: ${kept.problem}` };
}

/** The id kept on BOOTEXT: read, or made and written there; why not, when there is none to use. */
async function keptMachineId(
  system: System,
  log: Logger,
  places: MachineIdPlaces,
  mountPoint: string,
  cuts: CutPoints,
): Promise<{ readonly source: Exclude<MachineIdSource, "image">; readonly id: string } | { readonly source: "image"; readonly why: string }> {
  const file = `${mountPoint}/${BOOTEXT_MACHINE_ID}`;
  const name = `${places.bootextLabel}/${BOOTEXT_MACHINE_ID}`;
  const kept = await readKeptMachineId(system, mountPoint);
  if (kept.status === "kept") return { source: "bootext", id: kept.id };
  const replaces = kept.status === "invalid" ? kept.problem : undefined;
  if (places.bootext.readOnly) {
    const what = replaces === undefined ? "has none" : `cannot be replaced (${replaces})`;
    return { source: "image", why: `${name} ${what}: ${places.bootextLabel} is mounted read-only (bootext.read_only)` };
  }
  if (replaces !== undefined) log.warn(`${name}: ${replaces}; a new one replaces it`);
  const id = newMachineId();
  try {
    await system.writeBytes(file, new TextEncoder().encode(`${id}\n`));
  } catch (error) {
    return { source: "image", why: `Cannot write ${name}: ${(error as Error).message}` };
  }
  await cuts.reach("machine-id-written");
  log.info(`made the machine-id ${id} and kept it in ${name}`);
  return { source: replaces === undefined ? "generated" : "replaced", id };
}

/**
 * Puts the machine's kept id into /etc/machine-id of the new root. Never
 * throws: without a writable /etc or a BOOTEXT the image's file stays, and
 * an image that ships it empty lets systemd make a new id on every boot.
 */
export async function provideMachineId(system: System, log: Logger, places: MachineIdPlaces, cuts: CutPoints = NO_CUTS): Promise<MachineIdResult> {
  const image = (why: string, level: "info" | "warn"): MachineIdResult => {
    const detail = `${why}; ${ETC_MACHINE_ID} is the image's`;
    (level === "info" ? log.info : log.warn).call(log, detail);
    return { source: "image", detail };
  };
  const etcFolder = dirname(ETC_MACHINE_ID);
  const etc = places.tmpfs.find((outcome) => outcome.path === etcFolder);
  if (etc?.status !== "mounted") {
    return image(`${etcFolder} is not a tmpfs on this boot (${etc === undefined ? `tmpfs."${etcFolder}" is not enabled` : etc.detail})`, "warn");
  }
  const mountPoint = places.bootext.mountPoint;
  if (mountPoint === undefined) return image(`no ${places.bootextLabel} is mounted to keep a machine-id on`, "info");
  try {
    const kept = await keptMachineId(system, log, places, mountPoint, cuts);
    if (kept.source === "image") return image(kept.why, "warn");
    await system.writeText(`${NEWROOT}${ETC_MACHINE_ID}`, `${kept.id}\n`);
    const from = { bootext: "kept on", generated: "new, kept on", replaced: "new, replacing an invalid one on" }[kept.source];
    const detail = `${ETC_MACHINE_ID} is ${kept.id} (${from} ${places.bootextLabel})`;
    log.info(detail);
    return { source: kept.source, id: kept.id, detail };
  } catch (error) {
    return image(`Cannot put the machine-id into ${NEWROOT}${ETC_MACHINE_ID}: ${(error as Error).message}`, "warn");
  }
}
