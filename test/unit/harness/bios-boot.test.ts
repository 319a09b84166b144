import { describe, expect, test } from "bun:test";
import { coreImageAt, mbrWithBootCode, SECTOR_BYTES } from "../../../qemu-harness/bios-boot.ts";

/** A stand-in for GRUB's boot.img: code bytes 0xB0, its default kernel sector 1, the jump at 0x66, the signature. */
function bootImage(): Uint8Array {
  const image = new Uint8Array(SECTOR_BYTES).fill(0xb0);
  new DataView(image.buffer).setBigUint64(0x5c, 1n, true);
  image.set([0xeb, 0x05], 0x66);
  image.set([0x55, 0xaa], 0x1fe);
  return image;
}

/** A disk's first sector as sfdisk leaves it for GPT: BPB bytes, a disk signature and the protective partition entry. */
function protectiveMbr(): Uint8Array {
  const sector = new Uint8Array(SECTOR_BYTES);
  sector.fill(0x11, 0x3, 0x5a);
  sector.fill(0x22, 0x1b8, 0x1fe);
  sector.set([0x55, 0xaa], 0x1fe);
  return sector;
}

/** A stand-in for grub-mkimage's core.img: `sectors` sectors, diskboot's block list saying sectors-1 follow. */
function coreImage(bytes: number): Uint8Array {
  const image = new Uint8Array(bytes).fill(0xc0);
  const view = new DataView(image.buffer);
  view.setBigUint64(0x1f4, 2n, true);
  view.setUint16(0x1fc, Math.ceil(bytes / SECTOR_BYTES) - 1, true);
  view.setUint16(0x1fe, 0x820, true);
  return image;
}

describe("mbrWithBootCode", () => {
  test("boot.img's code, the disk's BPB and partition table, pointing at core.img, drive check jumped over", () => {
    const sector = mbrWithBootCode(bootImage(), protectiveMbr(), 2048);
    const view = new DataView(sector.buffer);
    expect(sector.length).toBe(SECTOR_BYTES);
    expect([sector[0], sector[0x2]]).toEqual([0xb0, 0xb0]);
    expect(sector.subarray(0x3, 0x5a).every((b) => b === 0x11)).toBe(true);
    expect(view.getBigUint64(0x5c, true)).toBe(2048n);
    expect([sector[0x66], sector[0x67]]).toEqual([0x90, 0x90]);
    expect(sector[0x68]).toBe(0xb0);
    expect(sector.subarray(0x1b8, 0x1fe).every((b) => b === 0x22)).toBe(true);
    expect([sector[0x1fe], sector[0x1ff]]).toEqual([0x55, 0xaa]);
  });

  test("leaves its inputs alone", () => {
    const boot = bootImage();
    mbrWithBootCode(boot, protectiveMbr(), 2048);
    expect(boot).toEqual(bootImage());
  });

  test("refuses what is not a boot sector, or a core.img at LBA 0", () => {
    const unsigned = bootImage();
    unsigned[0x1ff] = 0;
    expect(() => mbrWithBootCode(unsigned, protectiveMbr(), 2048)).toThrow("it has no 55 AA boot signature");
    expect(() => mbrWithBootCode(bootImage().subarray(0, 440), protectiveMbr(), 2048)).toThrow("it must be 512 bytes, got 440");
    expect(() => mbrWithBootCode(bootImage(), protectiveMbr(), 0)).toThrow("got 0");
  });
});

describe("coreImageAt", () => {
  test("pads to whole sectors and points the block list at the sector after the first", () => {
    const core = coreImageAt(coreImage(3 * SECTOR_BYTES + 100), 2048);
    const view = new DataView(core.buffer);
    expect(core.length).toBe(4 * SECTOR_BYTES);
    expect(view.getBigUint64(0x1f4, true)).toBe(2049n);
    expect(view.getUint16(0x1fc, true)).toBe(3);
    expect(view.getUint16(0x1fe, true)).toBe(0x820);
    expect(core[3 * SECTOR_BYTES + 100]).toBe(0);
  });

  test("refuses a core.img whose block list does not match its size", () => {
    const wrong = coreImage(4 * SECTOR_BYTES);
    new DataView(wrong.buffer).setUint16(0x1fc, 7, true);
    expect(() => coreImageAt(wrong, 2048)).toThrow("its block list says 7 sectors follow the first, its size says 3");
    expect(() => coreImageAt(new Uint8Array(100), 2048)).toThrow("it must be at least 2 sectors");
  });
});
