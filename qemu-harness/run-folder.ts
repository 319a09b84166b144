// Where a test run keeps the disks it builds: build/scenario-disks/run-OWNER/PID.
// OWNER is the process the run belongs to: scripts/run-qemu-tests, which starts
// one `bun test` per file, two at a time, or the `bun test` (or demo) started by
// hand. Each test process gets its own folder inside, so two processes never
// write the same file; all of them stay until the owner has ended, so the QEMU
// command line a failed file printed still boots the same disks after the run.

import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";

/** Set by scripts/run-qemu-tests for the test processes it starts: its own pid. */
export const RUN_OWNER_ENV = "QEMU_TESTS_RUN_PID";

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
  const folder = join(base, `run-${owner}`, String(self));
  await mkdir(folder, { recursive: true });
  return folder;
}
