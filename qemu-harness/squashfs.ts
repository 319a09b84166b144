// Squashfs images for overmount fixtures (DIRS/DIR_x.squashfs and DIR_x.squashfs.xz).
// scripts/build-test-image uses the same mksquashfs options for the system images.

import { join } from "node:path";
import { writeAtomically } from "./atomic-output.ts";
import { runCommand } from "./command.ts";

/**
 * zstd at level 3 builds a 100 MB tree in well under a second (the default level,
 * 15, takes seconds) for images only about 10% larger. -all-root: the guest sees
 * root-owned files whoever built the image.
 */
export const MKSQUASHFS_OPTIONS = [
  "-comp",
  "zstd",
  "-Xcompression-level",
  "3",
  "-noappend",
  "-all-root",
  "-no-progress",
  "-quiet",
] as const;

/** Pack the contents of `srcDir` into a squashfs image at `outPath` (replaced atomically). */
export async function buildSquashfs(srcDir: string, outPath: string): Promise<void> {
  await writeAtomically(outPath, async (workDir) => {
    const image = join(workDir, "image.squashfs");
    await runCommand(["mksquashfs", srcDir, image, ...MKSQUASHFS_OPTIONS]);
    return image;
  });
}

/**
 * Like buildSquashfs, then xz-compressed (for `.squashfs.xz` fixtures). CRC32
 * rather than xz's default CRC64: every xz decoder, including the kernel's and
 * busybox's, can check it.
 */
export async function buildSquashfsXz(srcDir: string, outPath: string): Promise<void> {
  await writeAtomically(outPath, async (workDir) => {
    const image = join(workDir, "image.squashfs");
    await runCommand(["mksquashfs", srcDir, image, ...MKSQUASHFS_OPTIONS]);
    await runCommand(["xz", "--check=crc32", "-1", "--threads=1", image]);
    return `${image}.xz`;
  });
}
