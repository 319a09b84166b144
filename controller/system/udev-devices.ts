// The filesystems udev has probed, read from its database instead of from a
// blkid run: udev runs libblkid on every block device as it appears (its
// blkid builtin, 60-persistent-storage.rules, in both dracut flavours) and
// records what it found in /run/udev/data/bMAJOR:MINOR. Under QEMU's TCG a
// blkid run cost about 250 ms; these reads cost a few. A device udev has not
// processed yet is not there, which is what the disks stage waits for anyway.

import type { BlockDevice } from "./system.ts";

/** udev's encoding of a value with unsafe characters (space, "/", "\", non-ASCII...): \xNN for each such byte. */
function decodeUdev(encoded: string): string {
  const bytes: number[] = [];
  for (let index = 0; index < encoded.length; ) {
    const escape = /^\\x([0-9a-fA-F]{2})/.exec(encoded.slice(index, index + 4));
    if (escape !== null) {
      bytes.push(Number.parseInt(escape[1] ?? "", 16));
      index += 4;
    } else {
      bytes.push(...new TextEncoder().encode(encoded[index]));
      index += 1;
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/**
 * The filesystem of `device` as a udev database entry (`db`, the text of
 * /run/udev/data/bMAJOR:MINOR) records it; undefined when udev found none.
 */
export function filesystemFromUdev(device: string, db: string): BlockDevice | undefined {
  const properties = new Map<string, string>();
  for (const line of db.split("\n")) {
    if (!line.startsWith("E:")) continue;
    const eq = line.indexOf("=");
    if (eq > 2) properties.set(line.slice(2, eq), line.slice(eq + 1));
  }
  const fsType = properties.get("ID_FS_TYPE");
  if (fsType === undefined || fsType === "") return undefined;
  // ID_FS_LABEL has unsafe characters replaced by "_"; ID_FS_LABEL_ENC keeps them, encoded
  const encoded = properties.get("ID_FS_LABEL_ENC");
  const label = encoded === undefined || encoded === "" ? undefined : decodeUdev(encoded);
  return { device, fsType, ...(label === undefined ? {} : { label }) };
}

/** /dev path of a /sys/class/block entry: sysfs writes "/" in a device's name as "!" (cciss!c0d0 is /dev/cciss/c0d0). */
export function devicePath(sysName: string): string {
  return `/dev/${sysName.replaceAll("!", "/")}`;
}
