// The harness boots a direct-kernel VM through the kernel's PVH entry: QEMU
// loads the uncompressed kernel ELF (vmlinux, unpacked here from the bzImage
// that Debian ships) and jumps straight into it. A bzImage boot first runs
// SeaBIOS's linuxboot ROM and the kernel's own decompressor, and Debian's
// kernel is xz-compressed: under TCG that took 4.6 s before "Linux version" and
// 12.2 s to "Run /init", against 0.4 s and 5.8 s through PVH (one pair of boots
// of build/kernel/vmlinuz with the shell initramfs). The kernel that runs is
// the same code; only the decompressor stub and real-mode setup are skipped.
// Boots through a bootloader (GRUB, iPXE) and kexec still take the bzImage, and
// bench/boot.ts keeps the bzImage entry, as a real machine boots.

import { createHash } from "node:crypto";
import { mkdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { writeAtomically } from "./atomic-output.ts";
import { runCommand } from "./command.ts";

/** Where the unpacked kernels are kept between runs, named by the bzImage's SHA-256. */
export const PVH_KERNEL_DIR = resolve(import.meta.dir, "../build/pvh-kernels");

const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
/** The ELF note QEMU looks for: owner "Xen", type XEN_ELFNOTE_PHYS32_ENTRY, the kernel's 32-bit PVH entry point. */
const XEN_ELFNOTE_PHYS32_ENTRY = 18;
const PT_NOTE = 4;

/**
 * Where the compressed kernel sits in a bzImage, from its setup header (the x86
 * boot protocol, version 2.08 or later): it starts payload_offset bytes into the
 * protected-mode part, which follows the setup_sects sectors of setup code and
 * the boot sector.
 */
export function bzImagePayload(bzImage: Uint8Array, name: string): Uint8Array {
  const view = new DataView(bzImage.buffer, bzImage.byteOffset, bzImage.byteLength);
  if (bzImage.byteLength < 0x250 || view.getUint32(0x202, true) !== 0x53726448) {
    throw new Error(`Cannot unpack ${name}: it is not a bzImage (no "HdrS" setup header at offset 0x202)`);
  }
  const protocol = view.getUint16(0x206, true);
  if (protocol < 0x208) {
    throw new Error(`Cannot unpack ${name}: its boot protocol is ${protocol.toString(16)}, the payload fields need 208 or later`);
  }
  const setupSectors = view.getUint8(0x1f1) || 4;
  const start = (setupSectors + 1) * 512 + view.getUint32(0x248, true);
  const end = start + view.getUint32(0x24c, true);
  if (end > bzImage.byteLength) {
    throw new Error(`Cannot unpack ${name}: its payload (bytes ${start} to ${end}) runs past the file's end (${bzImage.byteLength} bytes)`);
  }
  return bzImage.subarray(start, end);
}

/** Whether an ELF64 file has the PVH entry note, which QEMU needs to boot it with -kernel. */
export function hasPvhEntry(elf: Uint8Array): boolean {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (elf.byteLength < 64 || view.getUint32(0, false) !== 0x7f454c46 || elf[4] !== 2) return false;
  const headersAt = Number(view.getBigUint64(0x20, true));
  const headerSize = view.getUint16(0x36, true);
  const headerCount = view.getUint16(0x38, true);
  for (let index = 0; index < headerCount; index++) {
    const header = headersAt + index * headerSize;
    if (header + 0x28 > elf.byteLength || view.getUint32(header, true) !== PT_NOTE) continue;
    const notesAt = Number(view.getBigUint64(header + 0x08, true));
    const notesEnd = Math.min(notesAt + Number(view.getBigUint64(header + 0x20, true)), elf.byteLength);
    for (let note = notesAt; note + 12 <= notesEnd; ) {
      const nameSize = view.getUint32(note, true);
      const descSize = view.getUint32(note + 4, true);
      const type = view.getUint32(note + 8, true);
      const owner = new TextDecoder().decode(elf.subarray(note + 12, note + 12 + Math.max(0, nameSize - 1)));
      if (owner === "Xen" && type === XEN_ELFNOTE_PHYS32_ENTRY) return true;
      note += 12 + align4(nameSize) + align4(descSize);
    }
  }
  return false;
}

function align4(size: number): number {
  return (size + 3) & ~3;
}

/**
 * The uncompressed ELF of a bzImage, unpacked once into PVH_KERNEL_DIR and then
 * reused; two test processes that unpack the same kernel at once each rename a
 * whole file into place.
 */
export async function pvhKernel(bzImagePath: string): Promise<string> {
  const bzImage = await readFile(bzImagePath).catch((error: NodeJS.ErrnoException) => {
    throw new Error(`Cannot boot the kernel ${bzImagePath} through PVH: ${error.code === "ENOENT" ? "no such file" : error.message}`);
  });
  const out = join(PVH_KERNEL_DIR, `${createHash("sha256").update(bzImage).digest("hex").slice(0, 32)}.vmlinux`);
  if (await stat(out).then(() => true, () => false)) return out;
  const payload = bzImagePayload(bzImage, bzImagePath);
  if (!XZ_MAGIC.every((byte, at) => payload[at] === byte)) {
    throw new Error(`Cannot boot the kernel ${bzImagePath} through PVH: its payload is not xz-compressed (Debian's kernels are); boot it with kernelEntry "bzimage"`);
  }
  await mkdir(PVH_KERNEL_DIR, { recursive: true });
  await writeAtomically(out, async (workDir) => {
    const compressed = join(workDir, "payload.xz");
    const elf = join(workDir, "vmlinux");
    await Bun.write(compressed, payload);
    // the payload ends with the kernel's 4-byte uncompressed size, which --single-stream ignores
    await runCommand(["xz", "--decompress", "--stdout", "--single-stream", compressed], { stdoutFile: elf });
    if (!hasPvhEntry(new Uint8Array(await readFile(elf)))) {
      throw new Error(`Cannot boot the kernel ${bzImagePath} through PVH: it has no PVH entry note (a kernel built without CONFIG_PVH); boot it with kernelEntry "bzimage"`);
    }
    return elf;
  });
  return out;
}
