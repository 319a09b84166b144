// The bootloader's kernels on BOOTEXT, in AnthillaOS's layout (../shared/seeds
// 000: "Kernel: a softlink called active-kernel and active-initrd ... the same
// for recovery-kernel and recovery-initrd"), written so that a power cut at
// any instant leaves a pair GRUB can boot. Pure: the plan is a list of steps
// boot/kernel-entries.ts carries out in order; the step that ends a state the
// power-cut table names carries its cut point (system/cut-points.ts).
//
//   Kernel/pairs/RELEASE-KHASH-IHASH/vmlinuz       one folder per kernel and initrd pair, named by
//   Kernel/pairs/RELEASE-KHASH-IHASH/initrd.img    the release and the start of both sha512s
//   Kernel/active   -> pairs/ID                   the one link that switches the active pair
//   Kernel/recovery -> pairs/ID                   the one link that switches the recovery pair
//   Kernel/active-kernel -> active/vmlinuz        AnthillaOS's four names, made once, before the links they go through;
//   Kernel/active-initrd -> active/initrd.img     grub.cfg boots these
//   Kernel/recovery-kernel -> recovery/vmlinuz
//   Kernel/recovery-initrd -> recovery/initrd.img
//
// Why a folder per pair and a link to the folder: with active-kernel and
// active-initrd switched one after the other, a cut between them leaves a new
// kernel with the old initrd, whose modules do not fit it. Renaming one link
// switches both. A pair's folder is filled under a temporary name and renamed
// into place only once both files are written and fsynced, so a pair that
// exists is whole; links are made under a temporary name and renamed over the
// old one (rename(2) replaces atomically), links last; pairs no link names
// are removed at the very end.
//
// GRUB does not replay the ext4 journal: it reads the metadata in its home
// blocks, which the kernel writes some time after the journal commit, in no
// set order. So the journal is flushed home (a "flush" step) once the pairs
// are in place, before any link names them, and once the links are switched,
// before an old pair's blocks are freed: at every instant what GRUB reads is
// an old link to a pair that is still there, or a new link to a whole pair. test/unit/plans/boot-entries.test.ts carries a
// plan out on a model disk, cuts it after every step and checks what GRUB
// would boot there, and that the next boot's plan finishes the job.

import type { KernelSwitchCutPoint } from "../system/cut-points.ts";
import type { BootFile } from "./kernel-switch.ts";

export const KERNEL_DIR = "Kernel";
export const PAIRS_DIR = "pairs";
export const KERNEL_FILE = "vmlinuz";
export const INITRD_FILE = "initrd.img";
const TEMP_SUFFIX = ".tmp";
/** How much of each sha512 a pair's name carries: enough to tell two builds of one release apart. */
const HASH_CHARS = 16;

/** A kernel and its initrd as a slot's signed record names them, and where that slot's image is mounted. */
export interface KernelPair {
  readonly release: string;
  readonly kernel: BootFile;
  readonly initrd: BootFile;
  /** the mount point of the slot's image: the files are read from `${from}${kernel.path}` */
  readonly from: string;
}

export type KernelDirEntry =
  | { readonly type: "symlink"; readonly target: string }
  | { readonly type: "file" | "directory" | "other" };

/** What the stage found in BOOTEXT/Kernel before planning. */
export interface BootEntriesState {
  /** Kernel/'s own entries by name; empty when there is no Kernel/ */
  readonly entries: ReadonlyMap<string, KernelDirEntry>;
  /** Kernel/pairs/'s entries: "whole" when both files are there and match the hashes the name starts with (the stage checks), else "broken" */
  readonly pairs: ReadonlyMap<string, "whole" | "broken">;
}

/** The power-cut table's name for the state a step ends, on the steps that end one. */
interface Cut {
  readonly cut?: KernelSwitchCutPoint;
}

export type BootEntryStep =
  | ({ readonly op: "remove"; readonly path: string; readonly why: string } & Cut)
  | ({ readonly op: "mkdir"; readonly path: string } & Cut)
  /** copy, checking the size and sha512 while copying; a mismatch stops the plan (the slot's image is not what its record signs) */
  | ({ readonly op: "copy-verified"; readonly from: string; readonly to: string; readonly size: number; readonly sha512: string } & Cut)
  | ({ readonly op: "fsync"; readonly path: string } & Cut)
  | ({ readonly op: "rename"; readonly from: string; readonly to: string } & Cut)
  | ({ readonly op: "symlink"; readonly target: string; readonly path: string } & Cut)
  /** write the journal of the filesystem holding `path` to its home blocks, where GRUB reads */
  | ({ readonly op: "flush"; readonly path: string } & Cut);

export interface BootEntriesPlan {
  readonly steps: readonly BootEntryStep[];
  readonly active: string;
  readonly recovery?: string;
  readonly reasons: readonly string[];
}

/** Pure: the name of a pair's folder: "6.1.0-28-amd64-0123456789abcdef-fedcba9876543210". */
export function pairId(pair: Pick<KernelPair, "release" | "kernel" | "initrd">): string {
  return `${pair.release}-${pair.kernel.sha512.slice(0, HASH_CHARS)}-${pair.initrd.sha512.slice(0, HASH_CHARS)}`;
}

/** Pure: the pair id a link's target names when it is pairs/ID, else undefined. */
export function pairOfLink(target: string): string | undefined {
  const prefix = `${PAIRS_DIR}/`;
  const id = target.startsWith(prefix) ? target.slice(prefix.length) : undefined;
  return id !== undefined && !id.includes("/") ? id : undefined;
}

/** The pair a link in Kernel/ names, when it is a link to pairs/ID and that pair is whole. */
function linkedPair(state: BootEntriesState, name: "active" | "recovery"): string | undefined {
  const entry = state.entries.get(name);
  const id = entry?.type === "symlink" ? pairOfLink(entry.target) : undefined;
  return id !== undefined && state.pairs.get(id) === "whole" ? id : undefined;
}

/** Pure: the starts of the kernel's and the initrd's sha512 that a pair's folder name carries; undefined for a name that is not a pair's. */
export function pairHashes(id: string): { readonly kernel: string; readonly initrd: string } | undefined {
  const match = new RegExp(`^[^./][^/]*-([0-9a-f]{${HASH_CHARS}})-([0-9a-f]{${HASH_CHARS}})$`).exec(id);
  return match?.[1] === undefined || match[2] === undefined ? undefined : { kernel: match[1], initrd: match[2] };
}

/** Pure: whether BOOTEXT's active entry exists and whether it already is this kernel (the inputs of planKernelSwitch). */
export function bootEntryFor(state: BootEntriesState, kernel: Pick<KernelPair, "release" | "kernel" | "initrd"> | undefined): { exists: false } | { exists: true; matchesSlot: boolean } {
  const active = linkedPair(state, "active");
  const fixed = state.entries.get("active-kernel")?.type === "symlink" && state.entries.get("active-initrd")?.type === "symlink";
  if (active === undefined || !fixed) return { exists: false };
  return { exists: true, matchesSlot: kernel !== undefined && active === pairId(kernel) };
}

/**
 * Pure: the steps that make `active` BOOTEXT's active pair and `recovery`
 * (the other slot's kernel; when undefined, the pair that was active before,
 * if another) its recovery pair. `dir` is BOOTEXT's Kernel/ folder.
 */
export function planBootEntries(dir: string, state: BootEntriesState, active: KernelPair, recovery: KernelPair | undefined): BootEntriesPlan {
  const steps: BootEntryStep[] = [];
  const reasons: string[] = [];
  const pairsDir = `${dir}/${PAIRS_DIR}`;
  const activeId = pairId(active);
  const wasActive = linkedPair(state, "active");
  const wasRecovery = linkedPair(state, "recovery");
  const recoveryId = recovery !== undefined ? pairId(recovery) : wasActive !== undefined && wasActive !== activeId ? wasActive : wasRecovery !== activeId ? wasRecovery : undefined;

  // leftovers of a write a power cut stopped: never linked, so nothing boots them
  for (const [name] of state.entries) {
    if (name.startsWith(".") && name.endsWith(TEMP_SUFFIX)) steps.push({ op: "remove", path: `${dir}/${name}`, why: "left by a cut-short write" });
  }
  for (const [name] of state.pairs) {
    if (name.startsWith(".") && name.endsWith(TEMP_SUFFIX)) steps.push({ op: "remove", path: `${pairsDir}/${name}`, why: "left by a cut-short write" });
  }
  if (state.entries.get(PAIRS_DIR)?.type !== "directory") {
    if (state.entries.has(PAIRS_DIR)) steps.push({ op: "remove", path: pairsDir, why: `${PAIRS_DIR} is not a folder` });
    steps.push({ op: "mkdir", path: pairsDir }, { op: "fsync", path: dir });
  }

  const needed: [string, KernelPair, string][] = [[activeId, active, "active"]];
  if (recovery !== undefined && recoveryId !== undefined && recoveryId !== activeId) needed.push([recoveryId, recovery, "recovery"]);
  let written = false;
  for (const [id, pair, role] of needed) {
    const found = state.pairs.get(id);
    if (found === "whole") continue;
    if (found === "broken") steps.push({ op: "remove", path: `${pairsDir}/${id}`, why: "its files do not match the hashes its name carries" });
    const temp = `${pairsDir}/.${id}${TEMP_SUFFIX}`;
    reasons.push(`the ${role} pair ${id} is ${found === "broken" ? "broken" : "not on BOOTEXT"}: written from ${pair.from}`);
    steps.push(
      { op: "mkdir", path: temp },
      { op: "copy-verified", from: `${pair.from}${pair.kernel.path}`, to: `${temp}/${KERNEL_FILE}`, size: pair.kernel.size, sha512: pair.kernel.sha512 },
      { op: "fsync", path: `${temp}/${KERNEL_FILE}` },
      { op: "copy-verified", from: `${pair.from}${pair.initrd.path}`, to: `${temp}/${INITRD_FILE}`, size: pair.initrd.size, sha512: pair.initrd.sha512 },
      { op: "fsync", path: `${temp}/${INITRD_FILE}` },
      { op: "fsync", path: temp, cut: "kernel-entry-pair-written" },
      { op: "rename", from: temp, to: `${pairsDir}/${id}` },
      { op: "fsync", path: pairsDir, cut: "kernel-entry-pair-renamed" },
    );
    written = true;
  }
  // home before any link names them: else GRUB could read a new link's home block before the pair's
  if (written) steps.push({ op: "flush", path: dir });

  const link = (name: string, target: string, cut?: KernelSwitchCutPoint): BootEntryStep[] => {
    const entry = state.entries.get(name);
    if (entry?.type === "symlink" && entry.target === target) return [];
    const temp = `${dir}/.${name}${TEMP_SUFFIX}`;
    return [
      { op: "symlink", target, path: temp },
      { op: "rename", from: temp, to: `${dir}/${name}`, ...(cut === undefined ? {} : { cut }) },
    ];
  };
  // AnthillaOS's four names go through active/ and recovery/, so they are made before those
  // links exist or change: until then they dangle, and GRUB finds neither file of the pair,
  // never the kernel of one pair beside the initrd of another.
  const fixed = [
    ...link("active-kernel", `active/${KERNEL_FILE}`),
    ...link("active-initrd", `active/${INITRD_FILE}`),
    ...(recoveryId === undefined ? [] : [...link("recovery-kernel", `recovery/${KERNEL_FILE}`), ...link("recovery-initrd", `recovery/${INITRD_FILE}`)]),
  ];
  const made = fixed.flatMap((step) => (step.op === "rename" ? [step.to.slice(dir.length + 1)] : []));
  if (made.length > 0) reasons.push(`AnthillaOS's ${made.join(", ")} made`);
  steps.push(...fixed);
  const activeLink = link("active", `${PAIRS_DIR}/${activeId}`, "kernel-entry-active-switched");
  const recoveryLink = recoveryId === undefined ? [] : link("recovery", `${PAIRS_DIR}/${recoveryId}`, "kernel-entry-recovery-switched");
  // Cut between the two renames, BOOTEXT must still hold a pair that boots. An update
  // demotes the active pair: recovery first, so the old pair stays active until the new
  // one takes over. A rollback promotes the recovery pair: active first, so the good
  // pair is never named by neither link.
  const activeFirst = wasRecovery !== undefined && wasRecovery === activeId;
  steps.push(...(activeFirst ? [...activeLink, ...recoveryLink] : [...recoveryLink, ...activeLink]));
  if (activeLink.length > 0) reasons.push(`active: ${wasActive ?? "none"} → ${activeId}`);
  if (recoveryLink.length > 0) reasons.push(`recovery: ${wasRecovery ?? "none"} → ${recoveryId}`);

  // home before an old pair's blocks are freed: else GRUB could follow an old link into blocks written since
  if (activeLink.length + recoveryLink.length + fixed.length > 0) steps.push({ op: "fsync", path: dir }, { op: "flush", path: dir, cut: "kernel-entry-links-flushed" });

  // only now, with the links on the disk, may a pair no link names go
  let removed = false;
  for (const [id] of state.pairs) {
    if (id === activeId || id === recoveryId || id.startsWith(".")) continue;
    steps.push({ op: "remove", path: `${pairsDir}/${id}`, why: "no link names it any more" });
    removed = true;
  }
  if (removed) steps.push({ op: "fsync", path: pairsDir });
  if (steps.length === 0) reasons.push(`BOOTEXT's entries already are active ${activeId}${recoveryId === undefined ? "" : `, recovery ${recoveryId}`}`);
  return { steps, active: activeId, ...(recoveryId === undefined ? {} : { recovery: recoveryId }), reasons };
}
