// Stage "health": decide which slot partitions may boot, in the order to try
// them. Today that is GSE's rule by label alone: SYSFS boots; without a usable
// SYSFS, BACKUPFS, the last healthy system, boots instead, loudly.

import type { Config } from "./config-schema.ts";
import { describeDevices } from "./disks.ts";
import type { Logger } from "./log.ts";
import type { BlockDevice } from "./system.ts";

export type SlotRole = "system" | "backup";

export interface BootCandidate {
  readonly role: SlotRole;
  readonly label: string;
  readonly device: string;
  readonly fsType: string;
}

export interface BootPlan {
  /** in the order to try them */
  readonly candidates: readonly BootCandidate[];
  readonly decisions: readonly string[];
  readonly warnings: readonly string[];
}

/** Pure: which partitions to try, in which order, and why. */
export function planBoot(devices: readonly BlockDevice[], config: Config): BootPlan {
  const decisions: string[] = [];
  const warnings: string[] = [];
  const candidates: BootCandidate[] = [];

  const collect = (role: SlotRole, label: string) => {
    const labelled = devices.filter((d) => d.label === label);
    if (labelled.length > 1)
      warnings.push(`${labelled.length} partitions are labelled ${label} (${labelled.map((d) => d.device).join(", ")}): trying them in that order`);
    for (const device of labelled) {
      if (device.fsType !== config.slot.fs_type) {
        warnings.push(`Cannot use ${label} on ${device.device}: its filesystem is ${device.fsType ?? "unknown"}, expected ${config.slot.fs_type} (slot.fs_type)`);
        continue;
      }
      candidates.push({ role, label, device: device.device, fsType: device.fsType });
    }
    return labelled.length;
  };

  const systems = collect("system", config.labels.system);
  collect("backup", config.labels.backup);

  const first = candidates[0];
  if (first === undefined) {
    decisions.push(
      `nothing bootable: no usable partition labelled ${config.labels.system} or ${config.labels.backup}; filesystems seen: ${describeDevices(devices)}`,
    );
  } else if (first.role === "system") {
    decisions.push(`boot ${first.label} on ${first.device}`);
  } else {
    const why = systems === 0 ? `no partition is labelled ${config.labels.system}` : `no ${config.labels.system} partition is usable`;
    warnings.push(`${why}: booting the backup system ${first.label} on ${first.device}, read-only`);
    decisions.push(`boot the backup ${first.label} on ${first.device} because ${why}`);
  }
  return { candidates, decisions, warnings };
}

export function runHealthStage(log: Logger, devices: readonly BlockDevice[], config: Config): BootPlan {
  const plan = planBoot(devices, config);
  for (const warning of plan.warnings) log.warn(warning);
  for (const decision of plan.decisions) log.info(decision);
  return plan;
}
