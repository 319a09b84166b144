// The health conditions of a slot (config.d [health]) that need no more than
// what the slots stage read: its boots without a mark-good and its last
// shutdown, beside the filesystem check. boot/health-checks.ts checks the rest.

import type { Config } from "../config/schema.ts";
import { healthOf } from "./slot-health.ts";
import type { ConditionResult, InspectedSlot } from "./slot.ts";

/** Pure: the conditions that need no more than what the slots stage read. */
export function cheapConditions(slot: InspectedSlot, config: Config): ConditionResult[] {
  const health = healthOf(slot.health);
  const limit = config.health.max_attempts;
  const attempts: ConditionResult =
    health.attempts >= limit
      ? { condition: "attempts", result: "fail", detail: `${health.attempts} boots without a mark-good, the limit is ${limit} (health.max_attempts)` }
      : { condition: "attempts", result: "pass", detail: `${health.attempts} of ${limit} boots without a mark-good` };
  let shutdown: ConditionResult;
  if (!config.health.require_clean_shutdown) shutdown = { condition: "clean-shutdown", result: "skipped", detail: "not required (health.require_clean_shutdown)" };
  else if (health.cleanShutdown) shutdown = { condition: "clean-shutdown", result: "pass", detail: "the last boot ended with mark-shutdown" };
  else shutdown = { condition: "clean-shutdown", result: "fail", detail: "the last boot did not end with mark-shutdown (health.require_clean_shutdown)" };
  return [slot.fsck, attempts, shutdown];
}
