// Real squashfs images for tests, made with mksquashfs (squashfs-tools, as the
// project's own images are) from a list of entries: publish and verify look
// inside them with unsquashfs.

import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

export type ImageEntry = string | Uint8Array | { readonly symlink: string };
/** Paths inside the image ("boot/vmlinuz") → a file's content or a symlink's target; folders come with their files. */
export type ImageSpec = Readonly<Record<string, ImageEntry>>;

/**
 * Write IMAGE as a squashfs of `spec`, every file owned by root. `padTo`:
 * zeros after the filesystem up to that size, as mksquashfs pads to 4 KiB by
 * default (unsquashfs and the kernel read only what the superblock says is used).
 */
export async function makeSquashfs(image: string, spec: ImageSpec, options: { readonly padTo?: number } = {}): Promise<void> {
  const root = await mkdtemp(join(dirname(image), ".image-root-"));
  try {
    for (const [path, entry] of Object.entries(spec)) {
      const target = join(root, path);
      await mkdir(dirname(target), { recursive: true });
      if (typeof entry === "object" && "symlink" in entry) await symlink(entry.symlink, target);
      else await writeFile(target, entry);
    }
    const child = Bun.spawn(["mksquashfs", root, image, "-noappend", "-no-progress", "-quiet", "-all-root", "-nopad"], { stdout: "pipe", stderr: "pipe" });
    const [stderr, code] = await Promise.all([new Response(child.stderr).text(), child.exited]);
    if (code !== 0) throw new Error(`Cannot make the test image ${image}: mksquashfs exit status ${code}: ${stderr.trim()}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  if (options.padTo === undefined) return;
  const { size } = await stat(image);
  if (size > options.padTo) throw new Error(`Cannot pad the test image ${image} to ${options.padTo} bytes: it is ${size} already`);
  await truncate(image, options.padTo);
}

/** A new image of `spec` in `folder`, under a name of its own; returns its path. */
export async function newSquashfs(folder: string, spec: ImageSpec): Promise<string> {
  const image = join(folder, `image-${randomUUID()}.squashfs`);
  await makeSquashfs(image, spec);
  return image;
}

/**
 * What debootstrap and linux-image-amd64 leave: the versioned kernel and
 * initrd, the links at / that say which boots, merged /usr (/lib is a link).
 */
export function debianImage(release: string, kernel: Uint8Array, initrd: Uint8Array): ImageSpec {
  return {
    [`boot/vmlinuz-${release}`]: kernel,
    [`boot/initrd.img-${release}`]: initrd,
    vmlinuz: { symlink: `boot/vmlinuz-${release}` },
    "initrd.img": { symlink: `boot/initrd.img-${release}` },
    lib: { symlink: "usr/lib" },
    [`usr/lib/modules/${release}/modules.dep`]: "",
  };
}

/** `spec` without the entries at `paths`. */
export function without(spec: ImageSpec, ...paths: string[]): ImageSpec {
  return Object.fromEntries(Object.entries(spec).filter(([path]) => !paths.includes(path)));
}
