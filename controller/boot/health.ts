// Stage "health": decide which slot partitions may boot, in the order to try
// them. GSE's rule by label comes first (planBoot): SYSFS boots; without a
// usable SYSFS, BACKUPFS, the last healthy system, boots instead, loudly. Then
// the health conditions of config.d [health] (health-checks.ts): a SYSFS that
// fails one is taken out of service on this boot, relabelled DEPRIVED, and the
// healthy BACKUPFS becomes SYSFS and boots (decideHealth plans it, the stage
// carries it out on unmounted partitions). When no slot is healthy,
// health.both_unhealthy says what boots, or that nothing does. The decisions
// are in plans/boot-order.ts.

import type { Config } from "../config/schema.ts";
import { decideHealth, type HealthPlan, planBoot, type SlotVerdict } from "../plans/boot-order.ts";
import { type LabelChange, slotsWithWrittenLabels, withWrittenLabels } from "../plans/labels.ts";
import { afterDeprived, healthOf } from "../plans/slot-health.ts";
import type { InspectedSlot } from "../plans/slot.ts";
import type { Logger } from "../system/log.ts";
import { INSPECT_MOUNT } from "../system/paths.ts";
import type { BlockDevice, System } from "../system/system.ts";
import { checkSlot } from "./health-checks.ts";
import type { KeptSlotMount } from "./kept-slot-mount.ts";
import { writeLabels } from "./relabel.ts";
import { readHealth, writeHealth } from "./slot-health.ts";

export interface HealthResult {
  readonly plan: HealthPlan;
  readonly verdicts: readonly SlotVerdict[];
  /** the slots and block devices with the labels they have after the plan's relabels */
  readonly slots: readonly InspectedSlot[];
  readonly devices: readonly BlockDevice[];
}

/** Writes why the slot was taken out of service into its health.json, for `controller status` on later boots. */
async function recordDeprived(system: System, relabel: LabelChange, config: Config): Promise<void> {
  const dir = `${INSPECT_MOUNT}/deprived`;
  await system.mkdir(dir);
  await system.mount({ kind: "filesystem", source: relabel.device.device, target: dir, fsType: config.slot.fs_type, options: [] });
  try {
    const health = healthOf(await readHealth(system, dir, relabel.device.device));
    await writeHealth(system, dir, afterDeprived(health, relabel.why, system.wallClock()));
  } finally {
    await system.unmount(dir);
  }
}

/** `countedEarly`: the device whose attempt the controller before this boot counted (kernel-switch.ts slotCountedEarly). */
export async function runHealthStage(
  system: System,
  log: Logger,
  kept: KeptSlotMount,
  slots: readonly InspectedSlot[],
  devices: readonly BlockDevice[],
  config: Config,
  countedEarly?: string,
): Promise<HealthResult> {
  const base = planBoot(devices, config);
  const verdicts = new Map<string, SlotVerdict>();
  for (const candidate of base.candidates) {
    const slot = slots.find((entry) => entry.device.device === candidate.device);
    if (slot === undefined) {
      // the slots stage could not look at it: nothing is known against it, and a boot is better than none
      log.warn(`${candidate.label} on ${candidate.device} was not inspected: booting it without its health checks`);
      verdicts.set(candidate.device, { device: candidate.device, conditions: [], healthy: true });
      break;
    }
    const conditions = await checkSlot(system, kept, slot, config, slot.device.device === countedEarly);
    const healthy = !conditions.some((result) => result.result === "fail");
    verdicts.set(candidate.device, { device: candidate.device, conditions, healthy });
    for (const result of conditions) log.debug(`${candidate.label} on ${candidate.device}: ${result.condition} ${result.result}: ${result.detail}`);
    if (healthy) {
      log.info(`${candidate.label} on ${candidate.device} is healthy`);
      break;
    }
  }
  const plan = decideHealth(base, verdicts, slots, config);
  for (const warning of plan.warnings) log.warn(warning);
  for (const decision of plan.decisions) log.info(decision);

  const { written, failure } = await writeLabels(system, log, kept, plan.relabels, async (relabel) => {
    if (relabel.to !== config.labels.deprived) return;
    try {
      await recordDeprived(system, relabel, config);
    } catch (error) {
      log.warn(`Cannot record on ${relabel.device.device} why it was taken out of service: ${(error as Error).message}`);
    }
  });
  if (failure !== undefined) throw new Error(failure);
  if (plan.relabels.length > 0) {
    log.warn("*************************************************************");
    log.warn(`ROLLBACK: ${plan.decisions.at(-1) ?? ""}`);
    log.warn("*************************************************************");
  }
  return {
    plan,
    verdicts: [...verdicts.values()],
    slots: slotsWithWrittenLabels(slots, written, config),
    devices: withWrittenLabels(devices, written),
  };
}
