// Label changes carried out: the slot repair, the rollback and the switch each
// plan theirs as plain data (plans/labels.ts), and writeLabels writes any of them.

import type { LabelChange, WrittenLabels } from "../plans/labels.ts";
import type { Logger } from "../system/log.ts";
import type { System } from "../system/system.ts";
import type { KeptSlotMount } from "./kept-slot-mount.ts";

export interface LabelWrites {
  readonly written: WrittenLabels;
  /** why the write that stopped the plan failed; the changes after it were not tried */
  readonly failure?: string;
}

/**
 * Writes the changes in order, each a single superblock write, and calls
 * `afterEach` with the index of each one written (power-cut points, records).
 * A slot kept mounted is unmounted before its label changes (kept-slot-mount.ts).
 * Stops at the first write that fails: the plans are ordered so that every
 * prefix of them leaves a machine that boots.
 */
export async function writeLabels(
  system: System,
  log: Logger,
  kept: KeptSlotMount,
  changes: readonly LabelChange[],
  afterEach: (change: LabelChange, index: number) => Promise<void> = async () => {},
): Promise<LabelWrites> {
  const written = new Map<string, string>();
  for (const [index, change] of changes.entries()) {
    log.warn(`${change.device.device}: ${change.device.label ?? "(no label)"} -> ${change.to}: ${change.why}`);
    try {
      await kept.release(change.device.device);
      await system.setLabel(change.device, change.to);
    } catch (error) {
      return { written, failure: `Cannot label ${change.device.device} ${change.to}: ${(error as Error).message}` };
    }
    written.set(change.device.device, change.to);
    await afterEach(change, index);
  }
  return { written };
}
