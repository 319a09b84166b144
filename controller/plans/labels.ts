// Label changes: the one way a slot moves between the roles SYSFS, BACKUPFS and
// DEPRIVED. The slot repair, the rollback and the switch each plan their
// changes as plain data; boot/relabel.ts carries any of them out, and the
// stages learn the labels that result from what was written, never by asking
// udev again or by working it out a second time.

import type { Config } from "../config/schema.ts";
import type { BlockDevice } from "../system/system.ts";
import { type InspectedSlot, newerVersionFirst, roleOf, versionOf } from "./slot.ts";

export interface LabelChange {
  readonly device: BlockDevice;
  readonly to: string;
  /** why, for the console and the report */
  readonly why: string;
}

/** What writeLabels wrote: device path → its new label. */
export type WrittenLabels = ReadonlyMap<string, string>;

/** Pure: the devices with the labels written. */
export function withWrittenLabels<T extends BlockDevice>(devices: readonly T[], written: WrittenLabels): T[] {
  return devices.map((device) => {
    const label = written.get(device.device);
    return label === undefined ? device : { ...device, label };
  });
}

/** Pure: the slots with the labels written and the roles those labels give. */
export function slotsWithWrittenLabels(slots: readonly InspectedSlot[], written: WrittenLabels, config: Config): InspectedSlot[] {
  return slots.map((slot) => {
    const label = written.get(slot.device.device);
    return label === undefined ? slot : { ...slot, device: { ...slot.device, label }, role: roleOf(label, config) ?? slot.role };
  });
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

/** Pure: the label writes that make `installed` the system and `running` its backup, in the order that is safe to cut. */
export function planSwitch(installed: BlockDevice, running: BlockDevice | undefined, config: Config): LabelChange[] {
  const steps: LabelChange[] = [{ device: installed, to: config.labels.system, why: "the verified new system boots" }];
  if (running !== undefined && running.label !== config.labels.backup) {
    steps.push({ device: running, to: config.labels.backup, why: "the system that ran is the one to fall back to" });
  }
  return steps;
}
