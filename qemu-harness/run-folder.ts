// Where a test run keeps the disks it builds: build/scenario-disks/run-OWNER/PID.
// OWNER is the process the run belongs to: scripts/run-qemu-tests, which starts
// one `bun test` per file, two at a time, or the `bun test` (or demo) started by
// hand. Each test process gets its own folder inside, so two processes never
// write the same file. A failed file's folder stays until the owner has ended,
// so the QEMU command line it printed still boots the same disks after the run;
// a passed file's disks go as soon as it ends (clearPassedFolder): a whole run
// kept them all, 22 GB, and filled a CI machine's disk.

import { lstat, mkdir, readdir, rename, rm, rmdir, unlink } from "node:fs/promises";
import { join } from "node:path";

/** Set by scripts/run-qemu-tests for the test processes it starts: its own pid. */
export const RUN_OWNER_ENV = "QEMU_TESTS_RUN_PID";

/** Set by scripts/run-qemu-tests for the test processes it starts: the folder the run folders go in (its --disks). */
export const DISKS_DIR_ENV = "QEMU_TESTS_DISKS_DIR";

/** What a passed file's folder keeps: what a person reads afterwards, the consoles and screenshots its log names. */
const KEPT_AFTER_PASS = /\.(txt|png)$/;

/** A folder being removed: renamed first, so that only one process ever removes it. */
const REMOVING_PREFIX = ".removing-by-";

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The run this process belongs to: RUN_OWNER_ENV if set (a whole number), else this process. */
export function runOwner(env: Readonly<Record<string, string | undefined>>, self: number): number {
  const value = env[RUN_OWNER_ENV];
  if (value === undefined || value === "") return self;
  if (!/^\d+$/.test(value)) throw new Error(`Cannot use ${RUN_OWNER_ENV}: expected a process id, got ${JSON.stringify(value)}`);
  return Number(value);
}

/**
 * Remove the folders in `base` of runs that have ended, then make this
 * process's folder, base/run-OWNER/PID. Several processes may do this at once
 * (two test files starting together, a demo beside a run): a folder is renamed
 * before it is removed, and a rename only one of them can win.
 */
export async function makeRunFolder(base: string, owner: number, self: number): Promise<string> {
  await mkdir(base, { recursive: true });
  for (const entry of await readdir(base)) {
    const pid = Number(new RegExp(`^(?:run-|${REMOVING_PREFIX})(\\d+)`).exec(entry)?.[1]);
    if (Number.isInteger(pid) && isRunning(pid)) continue;
    const doomed = join(base, `${REMOVING_PREFIX}${self}-${entry}`);
    try {
      await rename(join(base, entry), doomed);
    } catch {
      continue; // another process renamed it first and removes it
    }
    await rm(doomed, { recursive: true, force: true });
  }
  const folder = processFolder(base, owner, self);
  await mkdir(folder, { recursive: true });
  return folder;
}

/** The folder of test process `pid` of the run `owner`. */
export function processFolder(base: string, owner: number, pid: number): string {
  return join(base, `run-${owner}`, String(pid));
}

/**
 * Remove everything in the folder of a test file that passed but its consoles
 * and screenshots (KEPT_AFTER_PASS), and the folders left empty. Returns the
 * bytes the removed files took on disk (their blocks: most disks are sparse);
 * 0 when the file made no folder.
 */
export async function clearPassedFolder(folder: string): Promise<number> {
  let freed = 0;
  let entries: string[];
  try {
    entries = await readdir(folder);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
  for (const name of entries) {
    const path = join(folder, name);
    const info = await lstat(path);
    if (info.isDirectory()) {
      freed += await clearPassedFolder(path);
      // a folder that still holds a console stays
      await rmdir(path).catch(() => {});
    } else if (!KEPT_AFTER_PASS.test(name)) {
      await unlink(path);
      freed += info.blocks * 512;
    }
  }
  return freed;
}
