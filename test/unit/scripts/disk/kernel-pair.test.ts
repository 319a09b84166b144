// The first kernel pair on BOOTEXT: the controller's boot-entries plan carried
// out on a folder, and the image's own kernel taken out of a real squashfs
// (mksquashfs, unsquashfs) and checked against what the manifest signs.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pairId } from "../../../../controller/plans/boot-entries.ts";
import type { Manifest } from "../../../../controller/update/manifest.ts";
import { sha512Hex } from "../../../../controller/update/signing.ts";
import { runCommand } from "../../../../qemu-harness/command.ts";
import { choosePair, writeKernelDir } from "../../../../scripts/disk/kernel-pair.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "blank-disk-kernel-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const KERNEL = new TextEncoder().encode("kernel bytes");
const INITRD = new TextEncoder().encode("initrd bytes");
const file = (path: string, bytes: Uint8Array) => ({ path, size: bytes.length, sha512: sha512Hex(bytes) });

/** A format 2 manifest naming the image's kernel, or format 1 without. */
function manifest(kernel?: Manifest["kernel"]): Manifest {
  return { format: kernel === undefined ? 1 : 2, channel: "stable", version: "1.0", ...(kernel === undefined ? {} : { kernel }) } as unknown as Manifest;
}

async function imageWithKernel(name: string, kernel: Uint8Array): Promise<string> {
  const root = join(dir, `${name}-root`);
  await mkdir(join(root, "boot"), { recursive: true });
  await writeFile(join(root, "boot/vmlinuz-6.1.0-28-amd64"), kernel);
  await writeFile(join(root, "boot/initrd.img-6.1.0-28-amd64"), INITRD);
  const image = join(dir, `${name}.squashfs`);
  await runCommand(["mksquashfs", root, image, "-quiet", "-noappend", "-all-root"]);
  return image;
}

describe("writeKernelDir", () => {
  test("pairs/ID with both files, active and recovery naming it, AnthillaOS's four names through them", async () => {
    await writeFile(join(dir, "vmlinuz"), KERNEL);
    await writeFile(join(dir, "initrd.img"), INITRD);
    const pair = { release: "6.1.0-28-amd64", kernel: file(join(dir, "vmlinuz"), KERNEL), initrd: file(join(dir, "initrd.img"), INITRD), from: "" };
    const bootext = join(dir, "bootext");
    const id = await writeKernelDir(bootext, pair);
    expect(id).toBe(pairId(pair));
    const kernelDir = join(bootext, "Kernel");
    expect(await readlink(join(kernelDir, "active"))).toBe(`pairs/${id}`);
    expect(await readlink(join(kernelDir, "recovery"))).toBe(`pairs/${id}`);
    expect(await readlink(join(kernelDir, "active-kernel"))).toBe("active/vmlinuz");
    expect(await readlink(join(kernelDir, "active-initrd"))).toBe("active/initrd.img");
    expect(await readlink(join(kernelDir, "recovery-kernel"))).toBe("recovery/vmlinuz");
    expect(await readlink(join(kernelDir, "recovery-initrd"))).toBe("recovery/initrd.img");
    // what GRUB reads through the links
    expect(await readFile(join(kernelDir, "active-kernel"), "utf8")).toBe("kernel bytes");
    expect(await readFile(join(kernelDir, "recovery-initrd"), "utf8")).toBe("initrd bytes");
  });
});

describe("choosePair", () => {
  test("the image's own kernel when the manifest names one, extracted and verified on the copy", async () => {
    const image = await imageWithKernel("good", KERNEL);
    const kernel = { release: "6.1.0-28-amd64", vmlinuz: file("/boot/vmlinuz-6.1.0-28-amd64", KERNEL), initrd: file("/boot/initrd.img-6.1.0-28-amd64", INITRD) };
    const chosen = await choosePair(manifest(kernel), image, { kernel: "/not/used", initrd: "/not/used" }, join(dir, "extract-good"));
    expect(chosen.source).toBe("version 1.0's own kernel 6.1.0-28-amd64 (/boot/vmlinuz-6.1.0-28-amd64, /boot/initrd.img-6.1.0-28-amd64)");
    const id = await writeKernelDir(join(dir, "bootext-image"), chosen.pair);
    expect(await readFile(join(dir, "bootext-image/Kernel/pairs", id, "vmlinuz"), "utf8")).toBe("kernel bytes");
  });

  test("an image kernel that is not what the manifest signs stops the copy", async () => {
    const image = await imageWithKernel("bad", new TextEncoder().encode("kernel BYTES"));
    const kernel = { release: "6.1.0-28-amd64", vmlinuz: file("/boot/vmlinuz-6.1.0-28-amd64", KERNEL), initrd: file("/boot/initrd.img-6.1.0-28-amd64", INITRD) };
    const chosen = await choosePair(manifest(kernel), image, undefined, join(dir, "extract-bad"));
    await expect(writeKernelDir(join(dir, "bootext-bad"), chosen.pair)).rejects.toThrow(`/boot/vmlinuz-6.1.0-28-amd64 to BOOTEXT: it has 12 bytes, sha512 ${sha512Hex(new TextEncoder().encode("kernel BYTES")).slice(0, 16)}…; expected 12 bytes, sha512 ${sha512Hex(KERNEL).slice(0, 16)}…`);
  });

  test("no kernel in the manifest and none given says what to pass", async () => {
    await expect(choosePair(manifest(), "/no/image", undefined, dir)).rejects.toThrow(
      "Cannot choose the first kernel: version 1.0's manifest names no kernel (format 1); expected --kernel FILE --initrd FILE (the controller's dracut initramfs)",
    );
  });

  test("a given kernel that is no bzImage is refused, naming the file", async () => {
    await writeFile(join(dir, "not-a-kernel"), KERNEL);
    await expect(choosePair(manifest(), "/no/image", { kernel: join(dir, "not-a-kernel"), initrd: join(dir, "not-a-kernel") }, dir)).rejects.toThrow(`Cannot use --kernel ${join(dir, "not-a-kernel")}: Cannot read the kernel release`);
  });
});
