// How far each version has reached, counted from the machines' latest boots:
// per booted version, how many machines run it, how many of those are good
// and how many rolled back; per version the update servers offer, how many
// machines run it already and how many wait (outside its rollout's share, or
// outside their download window). 1000 machines are counted in well under a
// millisecond, so the page counts them on every request.

import type { MachineRecord } from "../store.ts";
import { healthWord } from "./health.ts";

export interface VersionCount {
  /** undefined: machines whose last boot named no version (nothing booted, or no boot report yet) */
  readonly version: string | undefined;
  readonly machines: number;
  readonly good: number;
  readonly rolledBack: number;
}

export interface RolloutCount {
  readonly version: string;
  /** the share of machines the manifest offers it to, as the latest machine that saw it says; undefined when none said (100 %, or only up-to-date machines saw it) */
  readonly percent?: number;
  /** machines whose last boot ran it */
  readonly running: number;
  /** machines whose last check decided "install" yet booted another version (the install failed) */
  readonly installing: number;
  /** machines outside its share: "not-in-rollout" */
  readonly notInRollout: number;
  /** machines in its share waiting for their download window: "outside-window" */
  readonly outsideWindow: number;
}

/** Versions as numbers part by part where they are, text otherwise; newest first. */
function newestFirst(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return 1;
  if (b === undefined) return -1;
  return b.localeCompare(a, "en", { numeric: true });
}

/** Pure: machines per booted version, newest first, machines without a version last. */
export function countVersions(machines: readonly MachineRecord[], now: Date): VersionCount[] {
  const counts = new Map<string | undefined, { machines: number; good: number; rolledBack: number }>();
  for (const machine of machines) {
    const version = machine.lastBoot?.version;
    const count = counts.get(version) ?? { machines: 0, good: 0, rolledBack: 0 };
    count.machines += 1;
    if (healthWord(machine, now) === "good") count.good += 1;
    if (machine.lastBoot?.rollback !== undefined) count.rolledBack += 1;
    counts.set(version, count);
  }
  return [...counts].sort(([a], [b]) => newestFirst(a, b)).map(([version, count]) => ({ version, ...count }));
}

/** Pure: each version a machine's last update check was offered, with how many machines run it and how many wait; newest first. */
export function countRollouts(machines: readonly MachineRecord[]): RolloutCount[] {
  const versions = new Set<string>();
  const percents = new Map<string, { readonly percent: number; readonly seenAt: string }>();
  for (const machine of machines) {
    const offer = machine.lastBoot?.update?.offered;
    if (offer === undefined) continue;
    versions.add(offer.version);
    const known = percents.get(offer.version);
    // the share can be raised between boots: the machine heard from last saw the latest manifest
    if (offer.rolloutPercent !== undefined && (known === undefined || machine.lastSeenAt > known.seenAt)) {
      percents.set(offer.version, { percent: offer.rolloutPercent, seenAt: machine.lastSeenAt });
    }
  }
  return [...versions]
    .sort(newestFirst)
    .map((version) => {
      const percent = percents.get(version)?.percent;
      const count = { running: 0, installing: 0, notInRollout: 0, outsideWindow: 0 };
      for (const machine of machines) {
        const boot = machine.lastBoot;
        if (boot?.version === version) count.running += 1;
        else if (boot?.update?.offered?.version !== version) continue;
        else if (boot.update.decision === "install") count.installing += 1;
        else if (boot.update.decision === "not-in-rollout") count.notInRollout += 1;
        else if (boot.update.decision === "outside-window") count.outsideWindow += 1;
      }
      return { version, ...(percent === undefined ? {} : { percent }), ...count };
    });
}
