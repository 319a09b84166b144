// Stage "slots": before anything is decided, read what each slot partition
// records (slot-records.ts) and finish a label switch that a power cut
// interrupted. An update's switch labels the new slot SYSFS first and the old
// one BACKUPFS second (slot-switch.ts), so two partitions labelled SYSFS mean
// the cut came between the two: the newer verified system keeps SYSFS and the
// other becomes what the switch would have made it.

import type { Config } from "../config/schema.ts";
import type { ConfigLayer } from "../config/layers.ts";
import type { Logger } from "../system/log.ts";
import { compareVersions } from "../update/manifest.ts";
import { INSPECT_MOUNT } from "../system/paths.ts";
import { type LabelChange, withWrittenLabels, type WrittenLabels, writeLabels } from "./relabel.ts";
import { type HealthRead, type HealthRecord, readHealth } from "./slot-health.ts";
import { loadSlotConfig, readSlotRecord, type SlotRecord } from "./slot-records.ts";
import type { BlockDevice, System } from "../system/system.ts";

export type SlotRole = "system" | "backup" | "deprived";

export interface InspectedSlot {
  readonly device: BlockDevice & { readonly label: string };
  readonly role: SlotRole;
  readonly record: SlotRecord;
  /** health.json, the slot's life cycle */
  readonly health: HealthRead;
  /** the filesystem check before the slot was first mounted on this boot (health.fsck) */
  readonly fsck: ConditionResult;
}

/** One health condition of a slot, checked at boot (health.ts). */
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

export interface SlotsResult {
  readonly slots: readonly InspectedSlot[];
  /** the block devices with the labels they have after any repair */
  readonly devices: readonly BlockDevice[];
  readonly repairs: readonly string[];
  /** the config.d kept on the SYSFS that will boot, when its record verifies */
  readonly configLayers: readonly ConfigLayer[];
}

export function roleOf(label: string | undefined, config: Config): SlotRole | undefined {
  if (label === config.labels.system) return "system";
  if (label === config.labels.backup) return "backup";
  if (label === config.labels.deprived) return "deprived";
  return undefined;
}

/** Pure: the slots with the labels written and the roles those labels give. */
export function slotsWithWrittenLabels(slots: readonly InspectedSlot[], written: WrittenLabels, config: Config): InspectedSlot[] {
  return slots.map((slot) => {
    const label = written.get(slot.device.device);
    return label === undefined ? slot : { ...slot, device: { ...slot.device, label }, role: roleOf(label, config) ?? slot.role };
  });
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

function newestFirst(a: InspectedSlot, b: InspectedSlot): number {
  return newerVersionFirst(versionOf(a), versionOf(b));
}

/** Pure: the label changes that leave exactly one SYSFS when a switch was cut short. */
export function planLabelRepair(slots: readonly InspectedSlot[], config: Config): LabelChange[] {
  const systems = slots.filter((slot) => slot.role === "system").sort(newestFirst);
  const [keep, ...others] = systems;
  if (keep === undefined || others.length === 0) return [];
  let backupFree = !slots.some((slot) => slot.role === "backup");
  const kept = `${keep.device.device} (${versionOf(keep) === undefined ? "no verified version" : `version ${versionOf(keep)}`})`;
  return others.map((slot) => {
    const to = backupFree ? config.labels.backup : config.labels.deprived;
    backupFree = false;
    const version = versionOf(slot);
    return {
      device: slot.device,
      to,
      why:
        `${systems.length} partitions are labelled ${config.labels.system}: an update's label switch was cut short. ` +
        `${kept} stays ${config.labels.system}; ${slot.device.device} (${version === undefined ? "no verified version" : `version ${version}`}) becomes ${to}`,
    };
  });
}

/** The filesystem check, before anything on this boot mounts the slot. */
async function checkFilesystem(system: System, device: BlockDevice, config: Config): Promise<ConditionResult> {
  if (!config.health.fsck) return { condition: "fsck", result: "skipped", detail: "health.fsck is off" };
  try {
    const check = await system.checkFilesystem(device);
    return { condition: "fsck", result: check.clean ? "pass" : "fail", detail: check.detail };
  } catch (error) {
    return { condition: "fsck", result: "fail", detail: (error as Error).message };
  }
}

async function inspect(
  system: System,
  device: BlockDevice & { label: string },
  role: SlotRole,
  index: number,
  config: Config,
  fsck: ConditionResult,
): Promise<{ slot: InspectedSlot; config: ConfigLayer[] }> {
  const dir = `${INSPECT_MOUNT}/${index}`;
  const name = `${device.label} on ${device.device}`;
  await system.mkdir(dir);
  try {
    await system.mount({ kind: "filesystem", source: device.device, target: dir, fsType: config.slot.fs_type, options: ["ro"] });
  } catch (error) {
    const problem = `Cannot read the record of ${name}: ${(error as Error).message}`;
    const unreadable = { status: "invalid", problem } as const;
    return { slot: { device, role, record: unreadable, health: unreadable, fsck }, config: [] };
  }
  try {
    const record = await readSlotRecord(system, dir, name, config.update.trusted_keys);
    const health = await readHealth(system, dir, name);
    const layers = role === "system" && record.status === "valid" ? await loadSlotConfig(system, dir, device.label, record.manifest) : [];
    return { slot: { device, role, record, health, fsck }, config: layers };
  } finally {
    await system.unmount(dir);
  }
}

/**
 * The slot's record and health as they are on its disk now, after this boot
 * wrote to it (an install), for the report; its filesystem check stays the
 * one from the start of the boot. Never throws: what cannot be read is said.
 */
export async function reinspectSlot(system: System, slot: InspectedSlot, config: Config): Promise<InspectedSlot> {
  try {
    return (await inspect(system, slot.device, slot.role, 0, config, slot.fsck)).slot;
  } catch (error) {
    const unreadable = { status: "invalid", problem: `Cannot read the record of ${slot.device.label} on ${slot.device.device}: ${(error as Error).message}` } as const;
    return { ...slot, record: unreadable, health: unreadable };
  }
}

/** `config` is the local one (initramfs, BOOTEXT, command line): trust is never taken from what a slot says. */
export async function runSlotsStage(system: System, log: Logger, devices: readonly BlockDevice[], config: Config): Promise<SlotsResult> {
  const inspected: { slot: InspectedSlot; config: ConfigLayer[] }[] = [];
  for (const [index, device] of devices.entries()) {
    const role = roleOf(device.label, config);
    if (role === undefined || device.label === undefined || device.fsType !== config.slot.fs_type) continue;
    const labelled = { ...device, label: device.label };
    const result = await inspect(system, labelled, role, index, config, await checkFilesystem(system, labelled, config));
    inspected.push(result);
    const summary = summarizeSlot(result.slot);
    const what = summary.version !== undefined ? `version ${summary.version}` : summary.record === "none" ? "no signed record" : "a record that does not verify";
    log.info(`${summary.label} on ${summary.device}: ${what}`);
    if (summary.problem !== undefined) log.warn(summary.problem);
  }

  const slots = inspected.map((entry) => entry.slot);
  const repair = planLabelRepair(slots, config);
  const { written, failure } = await writeLabels(system, log, repair);
  if (failure !== undefined) throw new Error(failure);
  const booting = inspected.find((entry) => written.get(entry.slot.device.device) === undefined && entry.slot.role === "system");
  return {
    slots: slotsWithWrittenLabels(slots, written, config),
    devices: withWrittenLabels(devices, written),
    repairs: repair.map((change) => change.why),
    configLayers: booting?.config ?? [],
  };
}
