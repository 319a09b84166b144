// The health conditions of a slot (config.d [health]) that need no more than
// what the slots stage read: its boots without a mark-good and its last
// shutdown, beside the filesystem check. boot/health-checks.ts checks the rest.

import type { Config } from "../config/schema.ts";
import { healthOf } from "./slot-health.ts";
import type { ConditionResult, InspectedSlot } from "./slot.ts";

/**
 * Pure: the conditions that need no more than what the slots stage read.
 * `countedEarly`: the controller before this boot counted it already (a kernel
 * switch counts the attempt before its kexec or reboot), so the boots used up
 * before this one are one fewer than the record says.
 */
export function cheapConditions(slot: InspectedSlot, config: Config, countedEarly = false): ConditionResult[] {
  const health = healthOf(slot.health);
  const limit = config.health.max_attempts;
  const used = countedEarly ? Math.max(0, health.attempts - 1) : health.attempts;
  const early = countedEarly ? " before this one, which the kernel switch counted" : "";
  const attempts: ConditionResult =
    used >= limit
      ? { condition: "attempts", result: "fail", detail: `${used} boots without a mark-good${early}, the limit is ${limit} (health.max_attempts)` }
      : { condition: "attempts", result: "pass", detail: `${used} of ${limit} boots without a mark-good${early}` };
  let shutdown: ConditionResult;
  if (!config.health.require_clean_shutdown) shutdown = { condition: "clean-shutdown", result: "skipped", detail: "not required (health.require_clean_shutdown)" };
  else if (health.cleanShutdown) shutdown = { condition: "clean-shutdown", result: "pass", detail: "the last boot ended with mark-shutdown" };
  else shutdown = { condition: "clean-shutdown", result: "fail", detail: "the last boot did not end with mark-shutdown (health.require_clean_shutdown)" };
  return [slot.fsck, attempts, shutdown];
}
