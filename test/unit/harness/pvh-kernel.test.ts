import { describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bzImagePayload, hasPvhEntry, pvhKernel } from "../../../qemu-harness/pvh-kernel.ts";

/** A bzImage's first bytes: the setup header fields bzImagePayload reads, then the payload. */
function bzImage(options: { setupSectors?: number; protocol?: number; payload: Uint8Array; payloadOffset?: number; lengthExtra?: number; magic?: string }): Uint8Array {
  const setupSectors = options.setupSectors ?? 2;
  const payloadOffset = options.payloadOffset ?? 16;
  const start = ((setupSectors || 4) + 1) * 512 + payloadOffset;
  const bytes = new Uint8Array(start + options.payload.length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0x1f1, setupSectors);
  bytes.set(new TextEncoder().encode(options.magic ?? "HdrS"), 0x202);
  view.setUint16(0x206, options.protocol ?? 0x20f, true);
  view.setUint32(0x248, payloadOffset, true);
  view.setUint32(0x24c, options.payload.length + (options.lengthExtra ?? 0), true);
  bytes.set(options.payload, start);
  return bytes;
}

/** An ELF64 header with one PT_NOTE program header over the given notes. */
function elf(notes: { owner: string; type: number; desc?: number[] }[], elfClass = 2): Uint8Array {
  const encoded = notes.map(({ owner, type, desc = [0, 0, 0, 0] }) => {
    const name = new TextEncoder().encode(`${owner}\0`);
    const nameSize = (name.length + 3) & ~3;
    const descSize = (desc.length + 3) & ~3;
    const note = new Uint8Array(12 + nameSize + descSize);
    const view = new DataView(note.buffer);
    view.setUint32(0, name.length, true);
    view.setUint32(4, desc.length, true);
    view.setUint32(8, type, true);
    note.set(name, 12);
    note.set(desc, 12 + nameSize);
    return note;
  });
  const notesSize = encoded.reduce((sum, note) => sum + note.length, 0);
  const bytes = new Uint8Array(64 + 56 + notesSize);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, 0x7f454c46, false);
  bytes[4] = elfClass;
  view.setBigUint64(0x20, 64n, true);
  view.setUint16(0x36, 56, true);
  view.setUint16(0x38, 1, true);
  view.setUint32(64, 4, true); // PT_NOTE
  view.setBigUint64(64 + 0x08, 120n, true);
  view.setBigUint64(64 + 0x20, BigInt(notesSize), true);
  let at = 120;
  for (const note of encoded) {
    bytes.set(note, at);
    at += note.length;
  }
  return bytes;
}

describe("bzImagePayload", () => {
  const payload = new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3]);

  test("finds the payload after the setup sectors and payload_offset", () => {
    expect([...bzImagePayload(bzImage({ payload }), "k")]).toEqual([...payload]);
    expect([...bzImagePayload(bzImage({ payload, setupSectors: 30, payloadOffset: 0x3f0 }), "k")]).toEqual([...payload]);
  });

  test("reads setup_sects 0 as 4, as the boot protocol says", () => {
    expect([...bzImagePayload(bzImage({ payload, setupSectors: 0 }), "k")]).toEqual([...payload]);
  });

  test("refuses a file without the setup header, naming the file", () => {
    expect(() => bzImagePayload(bzImage({ payload, magic: "ELF!" }), "/boot/vmlinuz")).toThrow(
      'Cannot unpack /boot/vmlinuz: it is not a bzImage (no "HdrS" setup header at offset 0x202)',
    );
    expect(() => bzImagePayload(new Uint8Array(100), "tiny")).toThrow("Cannot unpack tiny: it is not a bzImage");
  });

  test("refuses a boot protocol older than 2.08, which has no payload fields", () => {
    expect(() => bzImagePayload(bzImage({ payload, protocol: 0x207 }), "old")).toThrow("Cannot unpack old: its boot protocol is 207, the payload fields need 208 or later");
  });

  test("refuses a payload that runs past the end of the file", () => {
    expect(() => bzImagePayload(bzImage({ payload, lengthExtra: 1 }), "cut")).toThrow(/^Cannot unpack cut: its payload \(bytes 1552 to 1562\) runs past the file's end \(1561 bytes\)$/);
  });
});

describe("hasPvhEntry", () => {
  test("finds Xen's PHYS32_ENTRY note among others", () => {
    expect(hasPvhEntry(elf([{ owner: "GNU", type: 3 }, { owner: "Xen", type: 6, desc: [0x6c, 0x69, 0x6e, 0x75, 0x78, 0] }, { owner: "Xen", type: 18 }]))).toBe(true);
  });

  test("is false without it, for another owner's type 18, and for what is not an ELF64 file", () => {
    expect(hasPvhEntry(elf([{ owner: "Xen", type: 6 }]))).toBe(false);
    expect(hasPvhEntry(elf([{ owner: "GNU", type: 18 }]))).toBe(false);
    expect(hasPvhEntry(elf([{ owner: "Xen", type: 18 }], 1))).toBe(false);
    expect(hasPvhEntry(new TextEncoder().encode("not an ELF file at all, but long enough to have a header of 64 bytes"))).toBe(false);
  });

  test("stops at the file's end when a note size is too large", () => {
    const bytes = elf([{ owner: "Xen", type: 6 }]);
    new DataView(bytes.buffer).setBigUint64(64 + 0x20, 1n << 40n, true);
    expect(hasPvhEntry(bytes)).toBe(false);
  });
});

describe("pvhKernel", () => {
  test("names the file it cannot read, and a payload that is not xz", async () => {
    const dir = await mkdtemp(join(tmpdir(), "pvh-kernel-"));
    try {
      await expect(pvhKernel(join(dir, "missing"))).rejects.toThrow(`Cannot boot the kernel ${join(dir, "missing")} through PVH: no such file`);
      const gzipped = join(dir, "vmlinuz-gzip");
      await writeFile(gzipped, bzImage({ payload: new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0]) }));
      await expect(pvhKernel(gzipped)).rejects.toThrow(
        `Cannot boot the kernel ${gzipped} through PVH: its payload is not xz-compressed (Debian's kernels are); boot it with kernelEntry "bzimage"`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
