// What grub-bios-setup does to a disk, done on bytes so a disk image can get
// a bootloader without loop devices (see disk.ts): GRUB's boot.img goes into
// the MBR's code area, told where core.img starts, and core.img goes into the
// GPT "BIOS boot" partition, its first sector (diskboot.img) told where the
// rest of it is. Offsets are GRUB 2's include/grub/i386/pc/boot.h.

export const SECTOR_BYTES = 512;
/** The GPT partition type GRUB embeds core.img into on a GPT disk. */
export const BIOS_BOOT_PARTITION_TYPE = "21686148-6449-6E6F-744E-656564454649";

/** boot.img: the BIOS parameter block a floppy or FAT volume keeps here; the disk's own bytes stay. */
const BPB_START = 0x3;
const BPB_END = 0x5a;
/** boot.img: the LBA (64-bit) of core.img's first sector. */
const KERNEL_SECTOR = 0x5c;
/** boot.img: a 2-byte jump over the "is the BIOS drive a hard disk" workaround. */
const DRIVE_CHECK = 0x66;
/** From here to the signature: the disk signature and the (protective) partition table, which must stay. */
const WINDOWS_NT_MAGIC = 0x1b8;
const SIGNATURE = 0x1fe;
/** diskboot.img (core.img's first sector) ends with a block list entry: start LBA (64-bit), sectors (16-bit), segment. */
const BLOCKLIST_START = SECTOR_BYTES - 12;
const BLOCKLIST_SECTORS = SECTOR_BYTES - 4;

/**
 * Pure: the disk's new first sector. boot.img's code with the disk's own BPB,
 * disk signature and partition table, pointing at core.img at `coreLba`.
 * Like grub-install on a hard disk, the jump over the drive check becomes two
 * NOPs, for BIOSes that pass a wrong boot drive number.
 */
export function mbrWithBootCode(bootImage: Uint8Array, currentSector: Uint8Array, coreLba: number): Uint8Array {
  if (bootImage.length !== SECTOR_BYTES) throw new Error(`Cannot install boot.img: it must be ${SECTOR_BYTES} bytes, got ${bootImage.length}`);
  if (currentSector.length !== SECTOR_BYTES) throw new Error(`Cannot install boot.img: the disk's first sector must be ${SECTOR_BYTES} bytes, got ${currentSector.length}`);
  if (bootImage[SIGNATURE] !== 0x55 || bootImage[SIGNATURE + 1] !== 0xaa) throw new Error("Cannot install boot.img: it has no 55 AA boot signature; is it GRUB's i386-pc boot.img?");
  checkLba(coreLba);
  const sector = Uint8Array.from(bootImage);
  sector.set(currentSector.subarray(BPB_START, BPB_END), BPB_START);
  sector.set(currentSector.subarray(WINDOWS_NT_MAGIC, SIGNATURE), WINDOWS_NT_MAGIC);
  new DataView(sector.buffer).setBigUint64(KERNEL_SECTOR, BigInt(coreLba), true);
  sector[DRIVE_CHECK] = 0x90;
  sector[DRIVE_CHECK + 1] = 0x90;
  return sector;
}

/**
 * Pure: core.img as it is written at `coreLba`, padded to whole sectors, its
 * block list naming the sectors after the first. grub-mkimage already wrote
 * how many there are; it checks that count against the image's size.
 */
export function coreImageAt(coreImage: Uint8Array, coreLba: number): Uint8Array {
  checkLba(coreLba);
  const sectors = Math.ceil(coreImage.length / SECTOR_BYTES);
  if (sectors < 2) throw new Error(`Cannot place core.img: it must be at least 2 sectors, got ${coreImage.length} bytes`);
  const core = new Uint8Array(sectors * SECTOR_BYTES);
  core.set(coreImage);
  const view = new DataView(core.buffer);
  const listed = view.getUint16(BLOCKLIST_SECTORS, true);
  if (listed !== sectors - 1) {
    throw new Error(`Cannot place core.img: its block list says ${listed} sectors follow the first, its size says ${sectors - 1}; is it grub-mkimage -O i386-pc output?`);
  }
  view.setBigUint64(BLOCKLIST_START, BigInt(coreLba + 1), true);
  return core;
}

function checkLba(lba: number): void {
  if (!Number.isSafeInteger(lba) || lba < 1) throw new Error(`Cannot point at core.img: its LBA must be a whole number of at least 1, got ${lba}`);
}
