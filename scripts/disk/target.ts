// The disk scripts/blank-disk writes: an image file (made at --size, or kept
// at its size) or a block device (all of it). Either way the disk is first
// built as a sparse image file by qemu-harness/disk.ts (no loop devices, no
// mounts); a block device then gets the same bytes, every one of them: its
// old content must not show through the filesystems' unwritten blocks.

import { open, stat } from "node:fs/promises";
import { runCommand } from "../../qemu-harness/command.ts";
import { partitionTableOf } from "./layout.ts";

const MIB = 1024 * 1024;

export interface Target {
  readonly path: string;
  readonly kind: "file" | "block-device";
  /** what the disk is divided into, in MiB */
  readonly sizeMiB: number;
}

/** Partitions of a block device that are mounted now, from /proc/mounts (e.g. /dev/sdb1 for /dev/sdb). */
async function mountedParts(device: string): Promise<string[]> {
  const mounts = await Bun.file("/proc/mounts").text();
  return mounts
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((source) => source === device || (source.startsWith(device) && /^p?[0-9]+$/.test(source.slice(device.length))));
}

async function firstSectors(path: string): Promise<Uint8Array> {
  const handle = await open(path, "r");
  try {
    const bytes = new Uint8Array(1024);
    await handle.read(bytes, 0, bytes.length, 0);
    return bytes;
  } finally {
    await handle.close();
  }
}

/**
 * What `path` is, and whether it may be written: a disk with a partition
 * table only with `force`, a block device with a mounted partition never.
 */
export async function inspectTarget(path: string, sizeMiB: number | undefined, force: boolean): Promise<Target> {
  const info = await stat(path).catch(() => undefined);
  if (info?.isBlockDevice() === true) {
    if (sizeMiB !== undefined) throw new Error(`Cannot use --size with the block device ${path}: the whole device is used; expected no --size`);
    const mounted = await mountedParts(path);
    if (mounted.length > 0) throw new Error(`Cannot write ${path}: ${mounted.join(", ")} ${mounted.length === 1 ? "is" : "are"} mounted; expected a disk nothing uses (unmount first)`);
    const bytes = Number((await runCommand(["blockdev", "--getsize64", path])).stdout.trim());
    await refuseTable(path, force);
    return { path, kind: "block-device", sizeMiB: Math.floor(bytes / MIB) };
  }
  if (info !== undefined && !info.isFile()) throw new Error(`Cannot write ${path}: it is neither a regular file nor a block device`);
  if (info !== undefined) await refuseTable(path, force);
  const size = sizeMiB ?? (info === undefined ? undefined : Math.floor(info.size / MIB));
  if (size === undefined || size === 0) throw new Error(`Cannot make the image file ${path}: ${info === undefined ? "it does not exist" : "it is empty"}; expected --size, e.g. --size 8G`);
  return { path, kind: "file", sizeMiB: size };
}

async function refuseTable(path: string, force: boolean): Promise<void> {
  const table = partitionTableOf(await firstSectors(path));
  if (table !== undefined && !force) {
    throw new Error(`Cannot write ${path}: it has ${table === "gpt" ? "a GPT" : "an MBR"} partition table, and everything on it would be lost; expected a blank disk, or --force`);
  }
}

/**
 * The built image onto the block device, every byte, then the backup GPT
 * moved to the device's last sectors (the image is whole MiBs; the device
 * may be a few sectors longer) and the kernel told about the new partitions.
 */
export async function writeToDevice(image: string, device: string): Promise<void> {
  await runCommand(["dd", `if=${image}`, `of=${device}`, "bs=4M", "conv=fsync", "oflag=direct", "status=none"]);
  await runCommand(["sfdisk", "--quiet", "--relocate", "gpt-bak-std", device]);
  await runCommand(["blockdev", "--rereadpt", device]).catch((error: Error) => {
    console.error(`blank-disk: the kernel could not re-read ${device}'s partition table (${error.message.split("\n")[0]}); the disk is written, its partitions show after a reboot`);
  });
}
