// Raw GPT disk images for boot tests, built without loop devices or mounts (CI
// runners often forbid both): each partition is an ext4 filesystem made in its
// own file by `mkfs.ext4 -d`, then copied into a sparse disk file at its offset.

import { open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { writeAtomically } from "./atomic-output.ts";
import { BIOS_BOOT_PARTITION_TYPE, coreImageAt, mbrWithBootCode, SECTOR_BYTES } from "./bios-boot.ts";
import { runCommand } from "./command.ts";

const MIB = 1024 * 1024;
const SECTOR = SECTOR_BYTES;
/** Partitions start on MiB boundaries, as partitioning tools do; the first MiB holds the GPT. */
const FIRST_PARTITION_MIB = 1;
/** Room for the backup GPT at the end of the disk (it needs 33 sectors). */
const TRAILING_MIB = 1;
/** ext4 stores at most 16 bytes of label; mkfs.ext4 would silently cut a longer one. */
const EXT4_LABEL_MAX_BYTES = 16;
/** "Linux filesystem data", what a Linux installer would use. */
const LINUX_FILESYSTEM_TYPE = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
/** The EFI System Partition, where UEFI firmware looks for EFI/BOOT/BOOTX64.EFI. */
const EFI_SYSTEM_TYPE = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
/** A FAT label holds at most 11 bytes. */
const FAT_LABEL_MAX_BYTES = 11;

export interface PartitionSpec {
  /** The ext4 filesystem label (what blkid reports as LABEL); omit for a filesystem without one. */
  readonly label?: string;
  readonly sizeMiB: number;
  /** A host folder whose contents become the filesystem's root; omit for an empty filesystem. */
  readonly content?: string;
  /** The GPT partition name (blkid's PARTLABEL), to test that it is not confused with the label; omit for none. */
  readonly partitionName?: string;
  /**
   * A FAT EFI System Partition instead of ext4 (mkfs.vfat, content copied in
   * with mtools: still no mounts), for a disk UEFI firmware boots.
   */
  readonly efiSystem?: boolean;
}

export interface DiskSpec {
  /** The raw image to write; replaced atomically if it exists. */
  readonly path: string;
  /** In disk order: the first becomes /dev/vda1 in the guest. An empty list gives a GPT disk with no partitions. */
  readonly partitions: readonly PartitionSpec[];
  /**
   * Make the disk boot on a BIOS through GRUB: a "BIOS boot" partition comes
   * first (so the ext4 partitions are /dev/vda2 on), holding core.img, and the
   * MBR gets boot.img, as grub-install would do (see bios-boot.ts, grub-disk.ts).
   */
  readonly biosBoot?: BiosBootCode;
}

/** GRUB's i386-pc images: boot.img (one sector) and a core.img from grub-mkimage. */
export interface BiosBootCode {
  readonly bootImage: Uint8Array;
  readonly coreImage: Uint8Array;
}

export interface PartitionLayout {
  readonly offsetBytes: number;
  readonly sizeBytes: number;
}

export interface DiskLayout {
  readonly path: string;
  readonly sizeBytes: number;
  readonly partitions: readonly PartitionLayout[];
  /** The BIOS boot partition holding core.img, when the spec asked for one. */
  readonly biosBoot?: PartitionLayout;
}

export async function buildDisk(spec: DiskSpec): Promise<DiskLayout> {
  spec.partitions.forEach(checkPartition);
  const placed: { readonly spec: PartitionSpec; readonly layout: PartitionLayout }[] = [];
  let nextMiB = FIRST_PARTITION_MIB;
  let biosBoot: PartitionLayout | undefined;
  if (spec.biosBoot !== undefined) {
    const sizeMiB = Math.max(1, Math.ceil(spec.biosBoot.coreImage.length / MIB));
    biosBoot = { offsetBytes: nextMiB * MIB, sizeBytes: sizeMiB * MIB };
    nextMiB += sizeMiB;
  }
  for (const partition of spec.partitions) {
    placed.push({ spec: partition, layout: { offsetBytes: nextMiB * MIB, sizeBytes: partition.sizeMiB * MIB } });
    nextMiB += partition.sizeMiB;
  }
  const sizeBytes = (nextMiB + TRAILING_MIB) * MIB;

  await writeAtomically(spec.path, async (workDir) => {
    const disk = join(workDir, "disk.img");
    // A sparse file: only the blocks the filesystems use ever take space.
    const handle = await open(disk, "w");
    await handle.truncate(sizeBytes);
    await handle.close();
    await runCommand(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk], {
      stdin: partitionTableScript(placed, biosBoot),
    });
    for (const [index, { spec: partition, layout }] of placed.entries()) {
      const image = join(workDir, `partition-${index + 1}.img`);
      if (partition.efiSystem === true) await makeFat(partition, image);
      else await runCommand(mkfsArgv(partition, image));
      await runCommand([
        "dd",
        `if=${image}`,
        `of=${disk}`,
        "bs=1M",
        `seek=${layout.offsetBytes / MIB}`,
        "conv=notrunc,sparse",
        "status=none",
      ]);
    }
    if (spec.biosBoot !== undefined && biosBoot !== undefined) await writeBootCode(disk, spec.biosBoot, biosBoot);
    return disk;
  });
  return { path: spec.path, sizeBytes, partitions: placed.map((p) => p.layout), ...(biosBoot === undefined ? {} : { biosBoot }) };
}

/** boot.img into the MBR sfdisk wrote (its protective partition table kept), core.img into its partition. */
async function writeBootCode(disk: string, code: BiosBootCode, partition: PartitionLayout): Promise<void> {
  const coreLba = partition.offsetBytes / SECTOR;
  const handle = await open(disk, "r+");
  try {
    const current = new Uint8Array(SECTOR);
    await handle.read(current, 0, SECTOR, 0);
    await handle.write(mbrWithBootCode(code.bootImage, current, coreLba), 0, SECTOR, 0);
    const core = coreImageAt(code.coreImage, coreLba);
    await handle.write(core, 0, core.length, partition.offsetBytes);
  } finally {
    await handle.close();
  }
}

function checkPartition(partition: PartitionSpec, index: number): void {
  const name = `partition ${index + 1}`;
  if (!Number.isInteger(partition.sizeMiB) || partition.sizeMiB < 1) {
    throw new Error(`${name}: sizeMiB must be a whole number of at least 1, got ${partition.sizeMiB}`);
  }
  const labelBytes = partition.label === undefined ? 0 : Buffer.byteLength(partition.label);
  const [kind, max] = partition.efiSystem === true ? ["a FAT", FAT_LABEL_MAX_BYTES] : ["an ext4", EXT4_LABEL_MAX_BYTES];
  if (labelBytes > max) {
    throw new Error(`${name}: ${kind} label holds at most ${max} bytes, got ${labelBytes}: ${JSON.stringify(partition.label)}`);
  }
  if (partition.partitionName?.includes('"')) {
    throw new Error(`${name}: sfdisk cannot write a partition name containing '"': ${partition.partitionName}`);
  }
}

function mkfsArgv(partition: PartitionSpec, image: string): string[] {
  return [
    "mkfs.ext4",
    "-q",
    ...(partition.label === undefined ? [] : ["-L", partition.label]),
    ...(partition.content === undefined ? [] : ["-d", partition.content]),
    // The copied files keep the host's owners; the root folder is made root's explicitly.
    "-E",
    "root_owner=0:0",
    image,
    `${partition.sizeMiB}M`,
  ];
}

/** A FAT filesystem in its own file, the content folder's tree copied in by mtools' mcopy. */
async function makeFat(partition: PartitionSpec, image: string): Promise<void> {
  await runCommand(["mkfs.vfat", ...(partition.label === undefined ? [] : ["-n", partition.label]), "-C", image, String(partition.sizeMiB * 1024)]);
  if (partition.content === undefined) return;
  const entries = (await readdir(partition.content)).map((entry) => join(partition.content ?? "", entry));
  if (entries.length > 0) await runCommand(["mcopy", "-s", "-i", image, ...entries, "::/"]);
}

/** An sfdisk script (see sfdisk(8), "Input format") with explicit sectors, so the layout is exactly ours. */
function partitionTableScript(placed: readonly { spec: PartitionSpec; layout: PartitionLayout }[], biosBoot: PartitionLayout | undefined): string {
  const lines = ["label: gpt", "unit: sectors", `first-lba: ${(FIRST_PARTITION_MIB * MIB) / SECTOR}`, ""];
  if (biosBoot !== undefined) {
    lines.push(`start=${biosBoot.offsetBytes / SECTOR}, size=${biosBoot.sizeBytes / SECTOR}, type=${BIOS_BOOT_PARTITION_TYPE}, name="BIOS boot"`);
  }
  for (const { spec, layout } of placed) {
    const name = spec.partitionName === undefined ? "" : `, name="${spec.partitionName}"`;
    lines.push(
      `start=${layout.offsetBytes / SECTOR}, size=${layout.sizeBytes / SECTOR}, type=${spec.efiSystem === true ? EFI_SYSTEM_TYPE : LINUX_FILESYSTEM_TYPE}${name}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
