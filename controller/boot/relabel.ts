// Label changes: the one way a slot moves between the roles SYSFS, BACKUPFS and
// DEPRIVED. The slot repair, the rollback and the switch each plan their
// changes as plain data; writeLabels carries any of them out, and the stages
// learn the labels that result from what was written, never by asking blkid
// again or by working it out a second time.

import type { Logger } from "../system/log.ts";
import type { BlockDevice, System } from "../system/system.ts";

export interface LabelChange {
  readonly device: BlockDevice;
  readonly to: string;
  /** why, for the console and the report */
  readonly why: string;
}

/** What writeLabels wrote: device path → its new label. */
export type WrittenLabels = ReadonlyMap<string, string>;

export interface LabelWrites {
  readonly written: WrittenLabels;
  /** why the write that stopped the plan failed; the changes after it were not tried */
  readonly failure?: string;
}

/**
 * Writes the changes in order, each a single superblock write, and calls
 * `afterEach` with the index of each one written (power-cut points, records).
 * Stops at the first write that fails: the plans are ordered so that every
 * prefix of them leaves a machine that boots.
 */
export async function writeLabels(
  system: System,
  log: Logger,
  changes: readonly LabelChange[],
  afterEach: (change: LabelChange, index: number) => Promise<void> = async () => {},
): Promise<LabelWrites> {
  const written = new Map<string, string>();
  for (const [index, change] of changes.entries()) {
    log.warn(`${change.device.device}: ${change.device.label ?? "(no label)"} -> ${change.to}: ${change.why}`);
    try {
      await system.setLabel(change.device, change.to);
    } catch (error) {
      return { written, failure: `Cannot label ${change.device.device} ${change.to}: ${(error as Error).message}` };
    }
    written.set(change.device.device, change.to);
    await afterEach(change, index);
  }
  return { written };
}

/** Pure: the devices with the labels written. */
export function withWrittenLabels<T extends BlockDevice>(devices: readonly T[], written: WrittenLabels): T[] {
  return devices.map((device) => {
    const label = written.get(device.device);
    return label === undefined ? device : { ...device, label };
  });
}
