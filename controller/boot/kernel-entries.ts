// BOOTEXT's kernel entries and grubenv, written by the controller (issue 14,
// reboot mode): the slot's kernel and initrd become GRUB's active entry, the
// pair before them its recovery entry, in the layout plans/boot-entries.ts
// describes, crash-safely. The plan says what to do and in which order; this
// file reads BOOTEXT for it and carries it out. BOOTEXT is mounted read-only on
// most boots: it is made writable for the write and read-only again after.
//
// GRUB does not replay ext4's journal, so "written" is not enough for GRUB to
// see a change: the journal is flushed to the home blocks with fsfreeze
// (freezing ext4 checkpoints its whole journal), not by remounting read-only,
// because a freeze works the same whether BOOTEXT is kept read-only or
// read-write (bootext.read_only), and also in the booted system, where files
// open for writing on BOOTEXT (overmounts) would make a read-only remount fail.

import { dirname } from "node:path";
import {
  type BootEntriesPlan,
  type BootEntriesState,
  type BootEntryStep,
  INITRD_FILE,
  KERNEL_DIR,
  KERNEL_FILE,
  type KernelDirEntry,
  type KernelPair,
  PAIRS_DIR,
  pairHashes,
  pairOfLink,
  planBootEntries,
} from "../plans/boot-entries.ts";
import { GRUB_DIR, grubenv, parseGrubenv } from "../plans/grub-config.ts";
import type { CutPoints } from "../system/cut-points.ts";
import type { Logger } from "../system/log.ts";
import { TOOLS } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import type { BootextResult } from "./bootext.ts";
import { copyVerified } from "./copy-verified.ts";

/** BOOTEXT where the bootext stage mounted it, and whether it is kept read-only (bootext.read_only). */
export type MountedBootext = Required<Pick<BootextResult, "mountPoint" | "readOnly">>;

const GRUBENV_FILE = "grubenv";
/** GRUB's block is 1024 bytes; anything much longer is not one, and is not read whole. */
const GRUBENV_MAX_BYTES = 4096;

/** A pair's folder: "whole" when both files are there and their sha512s start with the hashes its name carries. */
async function pairState(system: System, folder: string, id: string): Promise<"whole" | "broken"> {
  const hashes = pairHashes(id);
  if (hashes === undefined) return "broken";
  for (const [file, expected] of [
    [KERNEL_FILE, hashes.kernel],
    [INITRD_FILE, hashes.initrd],
  ] as const) {
    const path = `${folder}/${file}`;
    const info = await system.lstat(path);
    if (info?.type !== "file") return "broken";
    try {
      if (!(await system.hashOfRange(path, 0, info.size, "sha512")).startsWith(expected)) return "broken";
    } catch {
      // unreadable is as good as wrong: the plan writes the pair again
      return "broken";
    }
  }
  return "whole";
}

/** What BOOTEXT/Kernel holds: its entries, and its pairs, each hashed to tell whole from broken. */
export async function readBootEntries(system: System, bootextMount: string): Promise<BootEntriesState> {
  const dir = `${bootextMount}/${KERNEL_DIR}`;
  const entries = new Map<string, KernelDirEntry>();
  const pairs = new Map<string, "whole" | "broken">();
  if ((await system.lstat(dir))?.type !== "directory") return { entries, pairs };
  for (const name of (await system.readdir(dir)).sort()) {
    const info = await system.lstat(`${dir}/${name}`);
    if (info === undefined) continue;
    entries.set(name, info.type === "symlink" ? { type: "symlink", target: await system.readlink(`${dir}/${name}`) } : { type: info.type });
  }
  if (entries.get(PAIRS_DIR)?.type === "directory") {
    const pairsDir = `${dir}/${PAIRS_DIR}`;
    for (const id of (await system.readdir(pairsDir)).sort()) pairs.set(id, await pairState(system, `${pairsDir}/${id}`, id));
  }
  return { entries, pairs };
}

/** Writes the journal of the filesystem mounted at `mountPoint` to its home blocks, where GRUB reads. */
async function flushJournal(system: System, mountPoint: string): Promise<void> {
  await system.exec([TOOLS.fsfreeze, "--freeze", mountPoint]);
  try {
    await system.exec([TOOLS.fsfreeze, "--unfreeze", mountPoint]);
  } catch (error) {
    throw new Error(`Cannot thaw ${mountPoint} after flushing its journal: every write to it waits until \`fsfreeze --unfreeze ${mountPoint}\`: ${(error as Error).message}`);
  }
}

/** Runs `write` with BOOTEXT writable; a BOOTEXT kept read-only is read-only again afterwards, whatever happened. */
async function withWritableBootext<T>(system: System, bootext: MountedBootext, write: () => Promise<T>): Promise<T> {
  if (!bootext.readOnly) return write();
  await system.remount(bootext.mountPoint, false);
  let result: { value: T } | { error: unknown };
  try {
    result = { value: await write() };
  } catch (error) {
    result = { error };
  }
  try {
    await system.remount(bootext.mountPoint, true);
  } catch (error) {
    const also = "error" in result ? `; before that: ${(result.error as Error).message}` : "";
    throw new Error(`Cannot make BOOTEXT read-only again at ${bootext.mountPoint}, it stays writable until the next boot: ${(error as Error).message}${also}`);
  }
  if ("error" in result) throw result.error;
  return result.value;
}

async function carryOut(system: System, bootext: MountedBootext, step: BootEntryStep): Promise<void> {
  switch (step.op) {
    case "remove":
      return system.remove(step.path);
    case "mkdir":
      return system.mkdir(step.path);
    case "copy-verified":
      try {
        return await copyVerified(system, step, "nothing was linked");
      } catch (error) {
        // the plan copies only into a pair's temporary folder: a pair GRUB cannot see, gone with the bad copy
        await system.remove(dirname(step.to)).catch(() => undefined);
        throw error;
      }
    case "fsync":
      return system.syncPath(step.path);
    case "rename":
      return system.rename(step.from, step.to);
    case "symlink":
      return system.symlink(step.target, step.path);
    case "flush":
      // fsfreeze takes the mount point; the plan's path is on BOOTEXT, so this is its filesystem
      return flushJournal(system, bootext.mountPoint);
  }
}

/**
 * Makes `active` BOOTEXT's active pair and `recovery` (or, when undefined, the
 * pair that was active) its recovery pair, reaching each named cut point on the
 * way. `known` is what readBootEntries found on this boot, when the caller
 * already read it (hashing the pairs again would cost as much); read here
 * otherwise. Throws when a step fails: what was done stays, crash-safe, and
 * the next call finishes it.
 */
export async function writeBootEntries(
  system: System,
  log: Logger,
  bootext: MountedBootext,
  active: KernelPair,
  recovery: KernelPair | undefined,
  cuts: CutPoints,
  known?: BootEntriesState,
): Promise<BootEntriesPlan> {
  const state = known ?? (await readBootEntries(system, bootext.mountPoint));
  const plan = planBootEntries(`${bootext.mountPoint}/${KERNEL_DIR}`, state, active, recovery);
  for (const reason of plan.reasons) log.info(`BOOTEXT kernel entries: ${reason}`);
  if (plan.steps.length === 0) return plan;
  await withWritableBootext(system, bootext, async () => {
    for (const step of plan.steps) {
      await carryOut(system, bootext, step);
      if (step.cut !== undefined) await cuts.reach(step.cut);
    }
  });
  log.info(`BOOTEXT kernel entries written: active ${plan.active}${plan.recovery === undefined ? "" : `, recovery ${plan.recovery}`}`);
  return plan;
}

/** BOOTEXT's grub/ folder, refused when it is missing: without GRUB there, no grubenv would be read. */
async function grubFolder(system: System, bootext: MountedBootext, doing: string): Promise<string> {
  const folder = `${bootext.mountPoint}/${GRUB_DIR}`;
  const found = await system.lstat(folder);
  if (found?.type !== "directory") throw new Error(`Cannot ${doing}: expected GRUB's folder at ${folder}, got ${found === undefined ? "nothing" : `a ${found.type}`}`);
  return folder;
}

/** Replaces grubenv (temporary file, fsync, rename, folder fsync) and flushes it home, where GRUB's load_env and save_env find it. */
async function writeGrubenv(system: System, bootext: MountedBootext, folder: string, values: Readonly<Record<string, string>>): Promise<void> {
  const env = grubenv(values);
  if (!env.ok) throw new Error(env.problem);
  await system.writeBytes(`${folder}/${GRUBENV_FILE}`, new TextEncoder().encode(env.text));
  await flushJournal(system, bootext.mountPoint);
}

/**
 * Before a reboot into the entries writeBootEntries made: their links and
 * files are flushed to their home blocks, then grubenv says boot "active" once
 * (next_entry) and "recovery" from then on (saved_entry), so a kernel that
 * never comes up is tried once. The healthy system puts "active" back
 * (settleGrubenv, from `controller mark-good`).
 */
export async function armRebootIntoActive(system: System, log: Logger, bootext: MountedBootext, cuts: CutPoints): Promise<void> {
  const folder = await grubFolder(system, bootext, "arm the reboot into BOOTEXT's active entry");
  await withWritableBootext(system, bootext, async () => {
    await flushJournal(system, bootext.mountPoint);
    await writeGrubenv(system, bootext, folder, { saved_entry: "recovery", next_entry: "active" });
    await cuts.reach("grubenv-written");
  });
  log.info(`${folder}/${GRUBENV_FILE}: the next boot tries the active entry once, later boots the recovery entry until the system is marked good`);
}

function grubenvPath(bootextMount: string): string {
  return `${bootextMount}/${GRUB_DIR}/${GRUBENV_FILE}`;
}

/** grubenv's variables on BOOTEXT mounted at `bootextMount`; undefined when there is no grubenv. */
export async function readGrubenv(system: System, bootextMount: string): Promise<ReadonlyMap<string, string> | undefined> {
  const path = grubenvPath(bootextMount);
  if ((await system.lstat(path)) === undefined) return undefined;
  return parseGrubenv(new TextDecoder().decode(await system.readBytes(path, GRUBENV_MAX_BYTES)));
}

/** Kernel/active on BOOTEXT mounted at `bootextMount`: where it points, and the pair id when that is pairs/ID. */
export async function readActiveLink(system: System, bootextMount: string): Promise<{ link: string; target?: string; pair?: string }> {
  const link = `${bootextMount}/${KERNEL_DIR}/active`;
  const target = (await system.lstat(link))?.type === "symlink" ? await system.readlink(link) : undefined;
  const pair = target === undefined ? undefined : pairOfLink(target);
  return { link, ...(target === undefined ? {} : { target }), ...(pair === undefined ? {} : { pair }) };
}

export interface GrubenvSettled {
  /** whether grubenv was written */
  readonly changed: boolean;
  readonly detail: string;
}

/** The booted slot's kernel as mark-good finds it: the pair it is on BOOTEXT when the system runs on it, or why not. */
export type BootedKernel = { readonly runs: string } | { readonly notRunning: string };

/**
 * On a healthy system: when grubenv still says "recovery" (armRebootIntoActive),
 * the system runs on its slot's own kernel and BOOTEXT's active entry is that
 * kernel's pair, "active" becomes GRUB's lasting choice again. Left as it is
 * otherwise: a system that came up on the recovery entry keeps booting it, so a
 * new kernel that panics before any controller runs is never GRUB's lasting
 * choice. `bootedKernel` is asked only when grubenv says "recovery", so a boot
 * without GRUB never reads the slot's record for it.
 */
export async function settleGrubenv(system: System, bootext: MountedBootext, bootedKernel: () => Promise<BootedKernel>): Promise<GrubenvSettled> {
  const path = grubenvPath(bootext.mountPoint);
  const env = await readGrubenv(system, bootext.mountPoint);
  if (env === undefined) return { changed: false, detail: `no ${path}: GRUB boots the active entry` };
  const saved = env.get("saved_entry");
  if (saved !== "recovery") return { changed: false, detail: `${path} has saved_entry ${JSON.stringify(saved ?? "")}: nothing to settle` };
  const { link, target, pair: activePair } = await readActiveLink(system, bootext.mountPoint);
  const booted = await bootedKernel();
  if (!("runs" in booted) || activePair !== booted.runs) {
    const slot = "runs" in booted ? `the booted slot's kernel is ${booted.runs}` : booted.notRunning;
    return { changed: false, detail: `${path} keeps saved_entry=recovery: ${link} is ${activePair ?? target ?? "missing"}, ${slot}` };
  }
  await withWritableBootext(system, bootext, () => writeGrubenv(system, bootext, dirname(path), { saved_entry: "active" }));
  return { changed: true, detail: `${path}: saved_entry=active, the booted slot's kernel ${booted.runs} is BOOTEXT's active entry` };
}
