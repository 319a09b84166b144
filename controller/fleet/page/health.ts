// A machine's health as one word on the fleet's page, from its latest
// report: what a person scanning 40 rows needs first. The words, first that
// applies wins (docs/fleet.md, "The page"):
//
//   not seen          nothing heard from it for the "not seen" hours (the filter's, or 24)
//   nothing booted    its last boot found nothing bootable
//   rolled back       its last boot took an unhealthy system out of service and booted the backup
//   good              a mark-good came after its last boot report: the booted system said it came up
//                     (whether it has shut down cleanly since or still runs)
//   shut down         its latest report is a mark-shutdown, with no mark-good since its last boot:
//                     it went down cleanly without ever saying it came up
//   booting           no mark-good since its last boot report, which is less than BOOTING_MINUTES old
//   not marked good   no mark-good since its last boot report, which is older: the system never said it came up

import type { MachineRecord } from "../store.ts";
import { olderThan } from "./time.ts";

export const HEALTH_WORDS = ["not seen", "nothing booted", "rolled back", "good", "shut down", "booting", "not marked good"] as const;
export type HealthWord = (typeof HEALTH_WORDS)[number];

/** Hours without a report after which a machine is "not seen", when the page's filter does not say. */
export const NOT_SEEN_HOURS = 24;

/** How long a booted system has to mark itself good before the page says it did not. */
export const BOOTING_MINUTES = 10;

/** Pure: the word for `machine` at `now`. */
export function healthWord(machine: MachineRecord, now: Date, notSeenHours: number = NOT_SEEN_HOURS): HealthWord {
  if (olderThan(machine.lastSeenAt, notSeenHours, now)) return "not seen";
  if (machine.lastBoot?.outcome === "nothing-bootable") return "nothing booted";
  if (machine.lastBoot?.rollback !== undefined) return "rolled back";
  if (markedGoodSinceBoot(machine)) return "good";
  if (machine.lastKind === "mark-shutdown") return "shut down";
  return olderThan(machine.lastBootAt ?? machine.lastSeenAt, BOOTING_MINUTES / 60, now) ? "not marked good" : "booting";
}

/**
 * Whether the system of its last boot said it came up: a mark-good the server
 * took after that boot's report (both times the server's own clock). A
 * machine that reported no boot yet counts its latest report.
 */
function markedGoodSinceBoot(machine: MachineRecord): boolean {
  if (machine.lastMarkGoodAt === undefined) return false;
  if (machine.lastBootAt === undefined) return machine.lastKind === "mark-good";
  return machine.lastMarkGoodAt >= machine.lastBootAt;
}
