// A slot partition as the boot decides about it: its role by label, what its
// record and health.json say (read by boot/slots.ts), and its version.

import type { Config } from "../config/schema.ts";
import type { BlockDevice } from "../system/system.ts";
import { compareVersions, type Manifest, type VersionFloor } from "../update/manifest.ts";
import type { HealthRead, HealthRecord } from "./slot-health.ts";

export type SlotRole = "system" | "backup" | "deprived";

/** What a slot records about the system it holds (boot/slot-records.ts reads it). */
export type SlotRecord =
  /** nothing recorded: a slot provisioned by hand, or one an install has started to overwrite */
  | { readonly status: "none" }
  | {
      readonly status: "valid";
      readonly manifest: Manifest;
      readonly manifestBytes: Uint8Array;
      readonly signature: string;
      /** the trusted key that signed it */
      readonly key: string;
    }
  | { readonly status: "invalid"; readonly problem: string };

export interface InspectedSlot {
  readonly device: BlockDevice & { readonly label: string };
  readonly role: SlotRole;
  readonly record: SlotRecord;
  /** health.json, the slot's life cycle */
  readonly health: HealthRead;
  /** the filesystem check before the slot was first mounted on this boot (health.fsck) */
  readonly fsck: ConditionResult;
}

/** One health condition of a slot, checked at boot (boot/health.ts). */
export interface ConditionResult {
  readonly condition: "fsck" | "attempts" | "clean-shutdown" | "image-hash" | "required-files";
  readonly result: "pass" | "fail" | "skipped";
  readonly detail: string;
}

/** A slot as the boot report shows it. */
export interface SlotSummary {
  readonly device: string;
  readonly label: string;
  readonly role: SlotRole;
  readonly record: SlotRecord["status"];
  readonly version?: string;
  readonly problem?: string;
  /** its life cycle as health.json on the slot says, when there is one */
  readonly health?: HealthRecord;
  /** the health conditions checked on this boot, when the slot was considered for booting */
  readonly conditions?: readonly ConditionResult[];
}

export function roleOf(label: string | undefined, config: Config): SlotRole | undefined {
  if (label === config.labels.system) return "system";
  if (label === config.labels.backup) return "backup";
  if (label === config.labels.deprived) return "deprived";
  return undefined;
}

export function versionOf(slot: InspectedSlot): string | undefined {
  return slot.record.status === "valid" ? slot.record.manifest.version : undefined;
}

export function summarizeSlot(slot: InspectedSlot, conditions?: readonly ConditionResult[]): SlotSummary {
  const version = versionOf(slot);
  const problems = [slot.record, slot.health].flatMap((read) => (read.status === "invalid" ? [read.problem] : []));
  return {
    device: slot.device.device,
    label: slot.device.label,
    role: slot.role,
    record: slot.record.status,
    ...(version === undefined ? {} : { version }),
    ...(problems.length === 0 ? {} : { problem: problems.join("; ") }),
    ...(slot.health.status === "read" ? { health: slot.health.health } : {}),
    ...(conditions === undefined ? {} : { conditions }),
  };
}

/** A sort order: the newer version first; no version after any, in the order given. */
export function newerVersionFirst(a: string | undefined, b: string | undefined): number {
  if (a !== undefined && b !== undefined) return compareVersions(b, a);
  return a !== undefined ? -1 : b !== undefined ? 1 : 0;
}


/**
 * The highest version any slot's record verifies, whatever the slot's label:
 * every one was installed from a manifest signed for this machine, so none
 * lower may install again. Undefined when no slot has a valid record.
 */
export function versionFloor(slots: readonly { readonly name: string; readonly record: SlotRecord }[]): VersionFloor | undefined {
  let floor: VersionFloor | undefined;
  for (const { name, record } of slots) {
    if (record.status !== "valid") continue;
    if (floor === undefined || compareVersions(record.manifest.version, floor.version) > 0) floor = { version: record.manifest.version, slot: name };
  }
  return floor;
}
