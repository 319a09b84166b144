// Stage "switch": after the install verified the new system, the labels change
// so that it is SYSFS and the system that ran becomes BACKUPFS, the last
// healthy system to fall back to. Two label writes, in this order:
//
//   before       SYSFS (old)   DEPRIVED (new, verified)
//   after 1st    SYSFS (old)   SYSFS (new)        two SYSFS: slots.ts keeps the newer verified one
//   after 2nd    BACKUPFS (old) SYSFS (new)
//
// A power cut at any point leaves at least one verified system labelled SYSFS.

import type { Config } from "./config-schema.ts";
import { type CutPoints, NO_CUTS } from "./cut-points.ts";
import type { Logger } from "./log.ts";
import type { BlockDevice, System } from "./system.ts";

export interface LabelStep {
  readonly device: BlockDevice;
  readonly to: string;
}

/** Pure: the label writes that make `installed` the system and `running` its backup, in the order that is safe to cut. */
export function planSwitch(installed: BlockDevice, running: BlockDevice | undefined, config: Config): LabelStep[] {
  const steps: LabelStep[] = [{ device: installed, to: config.labels.system }];
  if (running !== undefined && running.label !== config.labels.backup) steps.push({ device: running, to: config.labels.backup });
  return steps;
}

/**
 * Carries the plan out and returns the block devices as blkid sees them after
 * it, also when a write failed half-way: the boot goes on from what is there.
 */
export async function runSwitchStage(system: System, log: Logger, steps: readonly LabelStep[], cuts: CutPoints = NO_CUTS): Promise<BlockDevice[]> {
  const points = ["switch-first-label", "switch-second-label"] as const;
  try {
    for (const [index, step] of steps.entries()) {
      log.info(`${step.device.device}: ${step.device.label ?? "(no label)"} -> ${step.to}`);
      await system.setLabel(step.device, step.to);
      const point = points[index];
      if (point !== undefined) await cuts.reach(point);
    }
  } catch (error) {
    log.error(`Cannot finish the label switch: ${(error as Error).message}; the boot goes on with the labels as they are, and the next boot finishes it`);
  }
  return system.listBlockDevices();
}
