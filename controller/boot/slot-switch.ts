// Stage "switch": after the install verified the new system, the labels change
// so that it is SYSFS and the system that ran becomes BACKUPFS, the last
// healthy system to fall back to. Two label writes, in this order:
//
//   before       SYSFS (old)   DEPRIVED (new, verified)
//   after 1st    SYSFS (old)   SYSFS (new)        two SYSFS: slots.ts keeps the newer verified one
//   after 2nd    BACKUPFS (old) SYSFS (new)
//
// A power cut at any point leaves at least one verified system labelled SYSFS.

import type { Config } from "../config/schema.ts";
import { type CutPoints, NO_CUTS } from "../system/cut-points.ts";
import type { Logger } from "../system/log.ts";
import { type LabelChange, withWrittenLabels, writeLabels } from "./relabel.ts";
import type { BlockDevice, System } from "../system/system.ts";

/** Pure: the label writes that make `installed` the system and `running` its backup, in the order that is safe to cut. */
export function planSwitch(installed: BlockDevice, running: BlockDevice | undefined, config: Config): LabelChange[] {
  const steps: LabelChange[] = [{ device: installed, to: config.labels.system, why: "the verified new system boots" }];
  if (running !== undefined && running.label !== config.labels.backup) {
    steps.push({ device: running, to: config.labels.backup, why: "the system that ran is the one to fall back to" });
  }
  return steps;
}

/**
 * Carries the plan out and returns the block devices with the labels written,
 * also when a write failed half-way: the boot goes on from what is there.
 */
export async function runSwitchStage(
  system: System,
  log: Logger,
  steps: readonly LabelChange[],
  devices: readonly BlockDevice[],
  cuts: CutPoints = NO_CUTS,
): Promise<BlockDevice[]> {
  const points = ["switch-first-label", "switch-second-label"] as const;
  const { written, failure } = await writeLabels(system, log, steps, async (_step, index) => {
    const point = points[index];
    if (point !== undefined) await cuts.reach(point);
  });
  if (failure !== undefined) log.error(`${failure}; the boot goes on with the labels as they are, and the next boot finishes the switch`);
  return withWrittenLabels(devices, written);
}
