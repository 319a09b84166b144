// Stage "slots": before anything is decided, read what each slot partition
// records (slot-records.ts) and finish a label switch that a power cut
// interrupted. An update's switch labels the new slot SYSFS first and the old
// one BACKUPFS second (slot-switch.ts), so two partitions labelled SYSFS mean
// the cut came between the two: the newer verified system keeps SYSFS and the
// other becomes what the switch would have made it (planLabelRepair in
// plans/labels.ts).

import type { ConfigLayer } from "../config/layers.ts";
import type { Config } from "../config/schema.ts";
import { planLabelRepair, slotsWithWrittenLabels, withWrittenLabels } from "../plans/labels.ts";
import { type ConditionResult, type InspectedSlot, roleOf, type SlotRole, summarizeSlot } from "../plans/slot.ts";
import type { Logger } from "../system/log.ts";
import { INSPECT_MOUNT } from "../system/paths.ts";
import type { BlockDevice, System } from "../system/system.ts";
import type { KeptSlotMount } from "./kept-slot-mount.ts";
import { writeLabels } from "./relabel.ts";
import { readHealth } from "./slot-health.ts";
import { loadSlotConfig, readSlotRecord } from "./slot-records.ts";

export interface SlotsResult {
  readonly slots: readonly InspectedSlot[];
  /** the block devices with the labels they have after any repair */
  readonly devices: readonly BlockDevice[];
  readonly repairs: readonly string[];
  /** the config.d kept on the SYSFS that will boot, when its record verifies */
  readonly configLayers: readonly ConfigLayer[];
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

/**
 * Reads the slot's record, health and config. `kept`: the slot expected to
 * boot stays mounted for the stages after this one (kept-slot-mount.ts);
 * any other is mounted at INSPECT_MOUNT/`index` and unmounted again.
 */
async function inspect(
  system: System,
  device: BlockDevice & { label: string },
  role: SlotRole,
  index: number,
  config: Config,
  fsck: ConditionResult,
  kept?: KeptSlotMount,
): Promise<{ slot: InspectedSlot; config: ConfigLayer[] }> {
  const name = `${device.label} on ${device.device}`;
  let dir = `${INSPECT_MOUNT}/${index}`;
  try {
    if (kept === undefined) {
      await system.mkdir(dir);
      await system.mount({ kind: "filesystem", source: device.device, target: dir, fsType: config.slot.fs_type, options: ["ro"] });
    } else {
      dir = await kept.mount({ device: device.device, label: device.label, fsType: config.slot.fs_type });
    }
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
    if (kept === undefined) await system.unmount(dir);
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
export async function runSlotsStage(system: System, log: Logger, kept: KeptSlotMount, devices: readonly BlockDevice[], config: Config): Promise<SlotsResult> {
  const inspected: { slot: InspectedSlot; config: ConfigLayer[] }[] = [];
  const slotDevices = devices.filter((device) => roleOf(device.label, config) !== undefined && device.fsType === config.slot.fs_type);
  // the one SYSFS is the slot expected to boot; two are a switch cut short, and the repair below picks one
  const systemSlots = slotDevices.filter((device) => roleOf(device.label, config) === "system");
  const toKeep = systemSlots.length === 1 ? systemSlots[0] : undefined;
  for (const [index, device] of devices.entries()) {
    const role = roleOf(device.label, config);
    // every slot device has a role and a label; checking them again narrows their types
    if (!slotDevices.includes(device) || role === undefined || device.label === undefined) continue;
    const labelled = { ...device, label: device.label };
    const fsck = await checkFilesystem(system, labelled, config);
    const result = await inspect(system, labelled, role, index, config, fsck, device === toKeep ? kept : undefined);
    inspected.push(result);
    const summary = summarizeSlot(result.slot);
    const what = summary.version !== undefined ? `version ${summary.version}` : summary.record === "none" ? "no signed record" : "a record that does not verify";
    log.info(`${summary.label} on ${summary.device}: ${what}`);
    log.info(`${summary.label} on ${summary.device}: fsck ${fsck.result}: ${fsck.detail}`);
    if (summary.problem !== undefined) log.warn(summary.problem);
  }

  const slots = inspected.map((entry) => entry.slot);
  const repair = planLabelRepair(slots, config);
  const { written, failure } = await writeLabels(system, log, kept, repair);
  if (failure !== undefined) throw new Error(failure);
  const booting = inspected.find((entry) => written.get(entry.slot.device.device) === undefined && entry.slot.role === "system");
  return {
    slots: slotsWithWrittenLabels(slots, written, config),
    devices: withWrittenLabels(devices, written),
    repairs: repair.map((change) => change.why),
    configLayers: booting?.config ?? [],
  };
}
