// Stage "switch": after the install verified the new system, the labels change
// so that it is SYSFS and the system that ran becomes BACKUPFS, the last
// healthy system to fall back to. Two label writes (planSwitch, plans/labels.ts),
// in this order:
//
//   before       SYSFS (old)   DEPRIVED (new, verified)
//   after 1st    SYSFS (old)   SYSFS (new)        two SYSFS: slots.ts keeps the newer verified one
//   after 2nd    BACKUPFS (old) SYSFS (new)
//
// A power cut at any point leaves at least one verified system labelled SYSFS.

import { type LabelChange, withWrittenLabels } from "../plans/labels.ts";
import { type CutPoints, NO_CUTS } from "../system/cut-points.ts";
import type { Logger } from "../system/log.ts";
import type { BlockDevice, System } from "../system/system.ts";
import type { KeptSlotMount } from "./kept-slot-mount.ts";
import { writeLabels } from "./relabel.ts";

/**
 * Carries the plan out and returns the block devices with the labels written,
 * also when a write failed half-way: the boot goes on from what is there.
 */
export async function runSwitchStage(
  system: System,
  log: Logger,
  steps: readonly LabelChange[],
  devices: readonly BlockDevice[],
  kept: KeptSlotMount,
  cuts: CutPoints = NO_CUTS,
): Promise<BlockDevice[]> {
  const points = ["switch-first-label", "switch-second-label"] as const;
  const { written, failure } = await writeLabels(system, log, kept, steps, async (_step, index) => {
    const point = points[index];
    if (point !== undefined) await cuts.reach(point);
  });
  if (failure !== undefined) log.error(`${failure}; the boot goes on with the labels as they are, and the next boot finishes the switch`);
  return withWrittenLabels(devices, written);
}
