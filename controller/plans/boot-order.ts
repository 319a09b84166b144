// Which slot partitions may boot, in the order to try them. GSE's rule by
// label comes first (planBoot): SYSFS boots; without a usable SYSFS, BACKUPFS,
// the last healthy system, boots instead, loudly. Once the health conditions
// are known (boot/health.ts checks them), decideHealth plans what changes: a
// SYSFS that fails one is taken out of service, relabelled DEPRIVED, and the
// healthy BACKUPFS becomes SYSFS and boots. When no slot is healthy,
// health.both_unhealthy says what boots, or that nothing does.

import type { Config } from "../config/schema.ts";
import type { BlockDevice } from "../system/system.ts";
import { describeDevices } from "./devices.ts";
import type { LabelChange } from "./labels.ts";
import { type ConditionResult, type InspectedSlot, newerVersionFirst, type SlotRole, versionOf } from "./slot.ts";

/** The roles a slot may boot in: a DEPRIVED slot never does. */
type CandidateRole = Exclude<SlotRole, "deprived">;

export interface BootCandidate {
  readonly role: CandidateRole;
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

  const collect = (role: CandidateRole, label: string) => {
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

/** One candidate's health conditions, as checked on this boot. */
export interface SlotVerdict {
  readonly device: string;
  readonly conditions: readonly ConditionResult[];
  readonly healthy: boolean;
}

export interface HealthPlan extends BootPlan {
  /** label changes that take unhealthy systems out of service, carried out before anything is mounted */
  readonly relabels: readonly LabelChange[];
}

function failures(verdict: SlotVerdict): string {
  return verdict.conditions.filter((result) => result.result === "fail").map((result) => `${result.condition}: ${result.detail}`).join("; ");
}

/**
 * Pure: the plan once the candidates' health is known. `verdicts` holds the
 * candidates checked, in order, up to the first healthy one.
 */
export function decideHealth(base: BootPlan, verdicts: ReadonlyMap<string, SlotVerdict>, slots: readonly InspectedSlot[], config: Config): HealthPlan {
  const candidates = base.candidates;
  const healthyIndex = candidates.findIndex((candidate) => verdicts.get(candidate.device)?.healthy === true);
  // when health changes the plan, its decision replaces the one by label
  const decisions: string[] = [];
  const warnings = [...base.warnings];
  const unhealthy = candidates.filter((candidate) => verdicts.get(candidate.device)?.healthy === false);
  for (const candidate of unhealthy) {
    warnings.push(`${candidate.label} on ${candidate.device} is unhealthy: ${failures(verdicts.get(candidate.device) as SlotVerdict)}`);
  }
  if (healthyIndex === 0 || candidates.length === 0) return { ...base, warnings, relabels: [] };

  if (healthyIndex > 0) {
    const healthy = candidates[healthyIndex] as BootCandidate;
    const failedSystems = candidates.slice(0, healthyIndex).filter((candidate) => candidate.role === "system");
    if (healthy.role === "backup" && failedSystems.length > 0) {
      const rollback = `rollback: ${failedSystems.map((candidate) => `${candidate.label} on ${candidate.device}`).join(", ")} unhealthy; ${healthy.label} on ${healthy.device} becomes ${config.labels.system} and boots`;
      decisions.push(rollback);
      const promoted: BootCandidate = { ...healthy, role: "system", label: config.labels.system };
      const relabels: LabelChange[] = [
        ...failedSystems.map((candidate) => ({
          device: { device: candidate.device, label: candidate.label, fsType: candidate.fsType },
          to: config.labels.deprived,
          why: failures(verdicts.get(candidate.device) as SlotVerdict),
        })),
        { device: { device: healthy.device, label: healthy.label, fsType: healthy.fsType }, to: config.labels.system, why: "the last healthy system replaces the unhealthy one" },
      ];
      return { candidates: [promoted, ...candidates.slice(healthyIndex + 1)], decisions, warnings, relabels };
    }
    decisions.push(`boot ${healthy.label} on ${healthy.device}: the slots before it are unhealthy`);
    return { candidates: candidates.slice(healthyIndex), decisions, warnings, relabels: [] };
  }

  // nothing healthy: health.both_unhealthy decides
  const choice = config.health.both_unhealthy;
  if (choice === "shell") {
    decisions.push("every slot is unhealthy: stopping in the emergency shell (health.both_unhealthy = \"shell\")");
    return { candidates: [], decisions, warnings, relabels: [] };
  }
  const versionAt = (candidate: BootCandidate) => {
    const slot = slots.find((entry) => entry.device.device === candidate.device);
    return slot === undefined ? undefined : versionOf(slot);
  };
  const ordered =
    choice === "backup"
      ? [...candidates.filter((candidate) => candidate.role === "backup"), ...candidates.filter((candidate) => candidate.role !== "backup")]
      : [...candidates].sort((a, b) => newerVersionFirst(versionAt(a), versionAt(b)));
  const first = ordered[0] as BootCandidate;
  warnings.push(`every slot is unhealthy: booting ${first.label} on ${first.device} anyway (health.both_unhealthy = "${choice}")`);
  decisions.push(`every slot is unhealthy: boot ${first.label} on ${first.device} anyway, as health.both_unhealthy = "${choice}" says`);
  return { candidates: ordered, decisions, warnings, relabels: [] };
}
