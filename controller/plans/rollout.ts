// Rollouts in waves: a manifest may say which share of its channel's machines
// take it. Each machine places itself in [0, 100) by a hash of its machine-id
// and the version, and takes the version when its place is below the share:
// raising the share for the same version only adds machines, and each version
// draws a new order, so the same machines are not always the first.

import { rolloutPlace } from "../update/rollout-place.ts";

/** A place or share as the console shows it: rounded down, so a place shown as 24.99 is below a share of 25. */
export function describeShare(value: number): string {
  return `${Math.floor(value * 100) / 100}`;
}

export type RolloutDecision =
  | { readonly placed: true; readonly place?: number; readonly reason?: string }
  | { readonly placed: false; readonly place?: number; readonly reason: string };

/**
 * Pure: whether this machine takes `version`, rolled out to `percent` % of the
 * channel's machines. A machine without a machine-id (its first boot: the id is
 * made after the check, in the mounts stage; or a read-only BOOTEXT that has
 * none) has no place: it takes only a version rolled out to every machine.
 */
export function decideRollout(options: { readonly version: string; readonly percent: number; readonly machineId: string | undefined; readonly noIdWhy?: string }): RolloutDecision {
  const { version, percent, machineId } = options;
  const share = `version ${version} is rolled out to ${describeShare(percent)} % of machines`;
  if (percent >= 100) return { placed: true };
  if (machineId === undefined) {
    return { placed: false, reason: `${share}; this machine has no machine-id to place itself by (${options.noIdWhy ?? "none is kept"}), so it waits for 100 %: booting the local system` };
  }
  const place = rolloutPlace(machineId, version);
  const where = `${share}; this machine's place is ${describeShare(place)}`;
  return place < percent ? { placed: true, place, reason: `${where}: it is in` } : { placed: false, place, reason: `${where}: booting the local system` };
}
