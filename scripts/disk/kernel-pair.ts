// BOOTEXT's Kernel/ for the first boot, written by the controller's own plan
// (controller/plans/boot-entries.ts: pairs/ID/, the active and recovery links,
// AnthillaOS's four names), so the controller's later writes find the layout
// they expect and continue from it. The pair is the image's own kernel when
// its signed manifest names one (format 2), extracted with unsquashfs -cat and
// checked against the signed size and sha512 while it is copied; otherwise
// the kernel and initramfs the admin gave. Both entries name the one pair:
// there is no earlier kernel to recover to yet.

import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { type BootEntryStep, KERNEL_DIR, type KernelPair, planBootEntries } from "../../controller/plans/boot-entries.ts";
import type { BootFile } from "../../controller/plans/kernel-switch.ts";
import { readBzImage } from "../../controller/update/kernel-release.ts";
import type { Manifest } from "../../controller/update/manifest.ts";
import { sha512Hex } from "../../controller/update/signing.ts";
import { runCommand } from "../../qemu-harness/command.ts";

/** Where the first pair comes from, said in the command's output. */
export interface ChosenPair {
  readonly pair: KernelPair;
  readonly source: string;
}

/** A file on this machine as a pair names it: its path, size and sha512. */
export async function hostFile(path: string, what: string): Promise<BootFile> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (error) {
    throw new Error(`Cannot read the ${what} ${path}: ${(error as Error).message}`);
  }
  return { path, size: bytes.length, sha512: sha512Hex(bytes) };
}

/** Pure: why no first kernel can be chosen (the manifest names none and none was given), checked before the image is fetched. */
export function kernelSourceProblem(manifest: Manifest, given: { kernel: string; initrd: string } | undefined): string | undefined {
  if (manifest.kernel !== undefined || given !== undefined) return undefined;
  return `Cannot choose the first kernel: version ${manifest.version}'s manifest names no kernel (format ${manifest.format}); expected --kernel FILE --initrd FILE (the controller's dracut initramfs)`;
}

/**
 * The pair for BOOTEXT: the image's kernel (extracted into `work`) when the
 * manifest names one, else `given`; undefined `given` and no kernel in the
 * image is an error that says what to pass.
 */
export async function choosePair(manifest: Manifest, image: string, given: { kernel: string; initrd: string } | undefined, work: string): Promise<ChosenPair> {
  if (manifest.kernel !== undefined) {
    const { release, vmlinuz, initrd } = manifest.kernel;
    for (const file of [vmlinuz, initrd]) {
      const out = join(work, file.path);
      await mkdir(join(out, ".."), { recursive: true });
      await runCommand(["unsquashfs", "-cat", image, file.path], { stdoutFile: out });
    }
    // the copy into Kernel/ checks each file against the signed size and sha512
    return { pair: { release, kernel: vmlinuz, initrd, from: work }, source: `version ${manifest.version}'s own kernel ${release} (${vmlinuz.path}, ${initrd.path})` };
  }
  const problem = kernelSourceProblem(manifest, given);
  if (problem !== undefined || given === undefined) throw new Error(problem);
  const kernel = await hostFile(given.kernel, "kernel");
  const initrd = await hostFile(given.initrd, "initramfs");
  const header = readBzImage(new Uint8Array(await readFile(given.kernel)));
  if (!header.ok) throw new Error(`Cannot use --kernel ${given.kernel}: ${header.problem}`);
  return { pair: { release: header.identity.release, kernel, initrd, from: "" }, source: `--kernel ${given.kernel} (${header.identity.release}) and --initrd ${given.initrd}` };
}

/** A copy that checks the size and sha512 the plan carries while it writes. */
async function copyVerified(step: Extract<BootEntryStep, { op: "copy-verified" }>): Promise<void> {
  const hash = new Bun.CryptoHasher("sha512");
  let size = 0;
  await pipeline(
    createReadStream(step.from),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(step.to),
  );
  const sha512 = hash.digest("hex");
  if (size !== step.size || sha512 !== step.sha512) {
    throw new Error(`Cannot copy ${step.from} to BOOTEXT: it has ${size} bytes, sha512 ${sha512.slice(0, 16)}…; expected ${step.size} bytes, sha512 ${step.sha512.slice(0, 16)}… (what the signed manifest or the given file says)`);
  }
}

/**
 * Carries out planBootEntries on BOOTEXT's folder before it becomes a
 * filesystem: `pair` the active entry, `recovery` (the same pair unless
 * given) the recovery entry. fsync steps do nothing: the folder is copied into the disk by
 * mkfs.ext4 -d afterwards, and no power cut can leave half of it.
 */
export async function writeKernelDir(bootext: string, pair: KernelPair, recovery: KernelPair = pair): Promise<string> {
  const dir = join(bootext, KERNEL_DIR);
  await mkdir(dir, { recursive: true });
  const plan = planBootEntries(dir, { entries: new Map(), pairs: new Map() }, pair, recovery);
  for (const step of plan.steps) {
    if (step.op === "mkdir") await mkdir(step.path);
    else if (step.op === "copy-verified") await copyVerified(step);
    else if (step.op === "rename") await rename(step.from, step.to);
    else if (step.op === "symlink") await symlink(step.target, step.path);
    else if (step.op === "remove") await rm(step.path, { recursive: true, force: true });
  }
  return plan.active;
}
