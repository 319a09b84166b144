// Issue 14's Debian test images (scripts/build-debian-image, built by
// scripts/setup) as the QEMU scenarios use them: debian-1.0 carries kernel K1
// (bookworm's debootstrap kernel) with the shipped controller, debian-2.0
// kernel K2 (build/kernel's release) with a controller built with another
// commit string. Both are published with the controller's own keygen and
// `publish`, so their manifests sign the kernel (format 2).

import { join, resolve } from "node:path";
import { manifestPath } from "../../controller/update/manifest.ts";
import { runCommand } from "../../qemu-harness/command.ts";
import type { TestMarkers } from "../../qemu-harness/test-markers.ts";
import { ARTIFACTS } from "./fixtures.ts";

const IMAGES = resolve(import.meta.dir, "../../build/images");
export const DEBIAN = {
  v1: join(IMAGES, "debian-1.0.squashfs"),
  v2: join(IMAGES, "debian-2.0.squashfs"),
  /** K1 and debian-1.0's initrd, the same bytes as inside the image */
  v1Kernel: join(IMAGES, "debian-1.0.boot/vmlinuz"),
  v1Initrd: join(IMAGES, "debian-1.0.boot/initrd.img"),
  /** K2 and debian-2.0's initrd, the same bytes as inside the image */
  v2Kernel: join(IMAGES, "debian-2.0.boot/vmlinuz"),
  v2Initrd: join(IMAGES, "debian-2.0.boot/initrd.img"),
} as const;

export interface PublishedDebian {
  /** channel stable of its own repository, signed with the fleet key */
  readonly repo: string;
  /** the kernel release its manifest signs */
  readonly release: string;
}

export interface DebianRepos {
  /** keygen's output path: KEY.secret and KEY.pub */
  readonly key: string;
  /** the public key as config.d's update.trusted_keys takes it */
  readonly publicKey: string;
  readonly v1: PublishedDebian;
  readonly v2: PublishedDebian;
}

async function publishImage(work: string, name: string, version: string, image: string, key: string): Promise<PublishedDebian> {
  const repo = join(work, `repo-${name}`);
  await runCommand([ARTIFACTS.controller, "publish", "--repo", repo, "--channel", "stable", "--version", version, "--image", image, "--key", `${key}.secret`]);
  const manifest = JSON.parse(await Bun.file(join(repo, manifestPath("stable"))).text()) as { format: number; kernel?: { release: string } };
  if (manifest.format !== 2 || manifest.kernel === undefined) throw new Error(`Cannot run the Debian scenarios: publish signed no kernel for ${image} (manifest format ${manifest.format})`);
  return { repo, release: manifest.kernel.release };
}

/** A fleet key in `work`, and debian-1.0 and debian-2.0 published with it as version 1.0 and 2.0, each in a repository of its own. */
export async function publishDebianImages(work: string): Promise<DebianRepos> {
  for (const path of Object.values(DEBIAN)) {
    if (!(await Bun.file(path).exists())) throw new Error(`Cannot run the Debian scenarios: ${path} is missing; run scripts/setup`);
  }
  const key = join(work, "fleet");
  const publicKey = (await runCommand([ARTIFACTS.controller, "keygen", key])).stdout.split(/\s+/).find((word) => /^[A-Za-z0-9+/]{43}=$/.test(word));
  if (publicKey === undefined) throw new Error("keygen printed no public key");
  const v1 = await publishImage(work, "v1", "1.0", DEBIAN.v1, key);
  const v2 = await publishImage(work, "v2", "2.0", DEBIAN.v2, key);
  if (v1.release === v2.release) throw new Error(`Cannot run the Debian scenarios: debian-1.0 and debian-2.0 carry the same kernel ${v1.release}`);
  return { key, publicKey, v1, v2 };
}

/** The text after "@@TEST NAME " on the first such line the Debian test image printed, or undefined. */
export function marker(markers: TestMarkers, name: string): string | undefined {
  return markers.lines.find((line) => line.startsWith(`${name} `))?.slice(name.length + 1);
}
