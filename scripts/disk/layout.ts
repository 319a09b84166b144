// Pure parts of scripts/blank-disk: how a disk of a given size is divided,
// BOOTEXT's config.d file, and whether a disk already has a partition table.

import { DEFAULT_CONFIG } from "../../controller/config/schema.ts";
import { ESP_MIB, type Firmware } from "../../qemu-harness/grub-disk.ts";

/** The GPT and the MiB alignment before the first partition, and the backup GPT after the last (qemu-harness/disk.ts). */
const GPT_MIB = 1;
const BACKUP_GPT_MIB = 1;
/** core.img is about 112 KiB; disk.ts gives the BIOS boot partition whole MiBs. */
const BIOS_BOOT_MIB = 1;
/** Below this a slot cannot hold even a small system image beside an update. */
export const MIN_SLOT_MIB = 64;

export interface SlotLayout {
  readonly label: string;
  readonly sizeMiB: number;
}

export type Layout = { readonly ok: true; readonly partitions: readonly SlotLayout[] } | { readonly ok: false; readonly problem: string };

/**
 * Pure: SYSFS, BACKUPFS and BOOTEXT in the MiBs the first stage (BIOS boot
 * partition or ESP) and the two GPTs leave; the slots share what BOOTEXT does
 * not take, equally, so either can hold what the other does; a MiB the halves
 * leave over goes to BOOTEXT. The sizes add up to the whole disk.
 */
export function planLayout(diskMiB: number, firmware: Firmware, bootextMiB: number): Layout {
  const { system, backup, bootext } = DEFAULT_CONFIG.labels;
  const fixed = GPT_MIB + (firmware === "efi" ? ESP_MIB : BIOS_BOOT_MIB) + BACKUP_GPT_MIB;
  const forSlots = diskMiB - fixed - bootextMiB;
  const slotMiB = Math.floor(forSlots / 2);
  if (slotMiB < MIN_SLOT_MIB) {
    return {
      ok: false,
      problem: `Cannot divide a disk of ${diskMiB} MiB: after ${fixed} MiB of GPT and ${firmware === "efi" ? "EFI System Partition" : "BIOS boot partition"} and ${bootextMiB} MiB of ${bootext}, each slot would get ${slotMiB} MiB; expected at least ${MIN_SLOT_MIB} MiB (a bigger disk or a smaller --bootext-size)`,
    };
  }
  return {
    ok: true,
    partitions: [
      { label: system, sizeMiB: slotMiB },
      { label: backup, sizeMiB: slotMiB },
      { label: bootext, sizeMiB: bootextMiB + (forSlots - 2 * slotMiB) },
    ],
  };
}

/** Pure: a slot's room for an image and an update beside it (the install writes the new image before it removes the old). */
export function slotRoomProblem(slotMiB: number, imageBytes: number): string | undefined {
  const imageMiB = Math.ceil(imageBytes / (1024 * 1024));
  // ext4 keeps about 5 % for its own structures and root's reserve
  const usable = Math.floor(slotMiB * 0.9);
  if (usable < imageMiB) return `Cannot put the image (${imageMiB} MiB) in a slot of ${slotMiB} MiB (about ${usable} MiB usable): expected a bigger disk or a smaller --bootext-size`;
  return undefined;
}

/** Pure: BOOTEXT's config.d file naming the update servers and the keys they must sign with. */
export function updateConfigText(options: { servers: readonly string[]; channel: string; keys: readonly string[] }): string {
  // TOML's basic strings take JSON's escapes; URLs and keys need none anyway
  const list = (values: readonly string[]) => `[${values.map((value) => JSON.stringify(value)).join(", ")}]`;
  return [
    "# Written by scripts/blank-disk: where this machine looks for updates, and whose signatures it trusts.",
    "[update]",
    `servers = ${list(options.servers)}`,
    `channel = ${JSON.stringify(options.channel)}`,
    `trusted_keys = ${list(options.keys)}`,
    "",
  ].join("\n");
}

/** The name BOOTEXT's config.d file gets: after the site's own 50-*.toml, as update-fixtures.ts names it. */
export const UPDATE_CONFIG_FILE = "60-update.toml";

/**
 * Pure: which partition table the first two sectors hold: "gpt" ("EFI PART"
 * at LBA 1), "mbr" (55 AA and a partition entry with a type), or undefined.
 */
export function partitionTableOf(firstSectors: Uint8Array): "gpt" | "mbr" | undefined {
  const text = (from: number, length: number) => new TextDecoder("latin1").decode(firstSectors.subarray(from, from + length));
  if (text(512, 8) === "EFI PART") return "gpt";
  if (firstSectors[510] !== 0x55 || firstSectors[511] !== 0xaa) return undefined;
  // four 16-byte entries from 0x1be; the type byte is the fifth of each
  for (let entry = 0; entry < 4; entry++) if ((firstSectors[0x1be + entry * 16 + 4] ?? 0) !== 0) return "mbr";
  return undefined;
}
