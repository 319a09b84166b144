// Images are built in a scratch folder beside the output and renamed into place,
// so a crash or a failed step never leaves a half-written image that a later
// test could boot by mistake. Beside, not in /tmp: rename(2) needs one filesystem.

import { mkdtemp, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/**
 * Run `produce` in a fresh scratch folder next to `outPath`; it returns the path of
 * the finished file, which is then renamed to `outPath`. The scratch folder is
 * always removed.
 */
export async function writeAtomically(outPath: string, produce: (workDir: string) => Promise<string>): Promise<void> {
  const workDir = await mkdtemp(join(dirname(outPath), `.${basename(outPath)}.tmp-`));
  try {
    await rename(await produce(workDir), outPath);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
