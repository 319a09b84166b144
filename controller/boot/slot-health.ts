// A slot's life cycle (plans/slot-health.ts says what it holds and how each
// event changes it), kept on the slot next to its record (slot-records.ts) in
// SLOT/controller/health.json: read, written, and counted at each boot.

import { afterBootAttempt, formatHealth, type HealthRead, type HealthRecord, healthOf, parseHealth } from "../plans/slot-health.ts";
import { type CutPoints, NO_CUTS } from "../system/cut-points.ts";
import type { System } from "../system/system.ts";
import { RECORD_DIR } from "./slot-records.ts";

export const HEALTH_FILE = `${RECORD_DIR}/health.json`;
const HEALTH_MAX_BYTES = 4096;

/** health.json of the booted slot as it is now, for `controller status`. */
export type LiveHealth = HealthRead | { readonly status: "unavailable"; readonly problem: string };

/** The health of the slot mounted at `slotDir`; `name` says which slot in messages. */
export async function readHealth(system: System, slotDir: string, name: string): Promise<HealthRead> {
  const path = `${slotDir}/${HEALTH_FILE}`;
  if ((await system.lstat(path)) === undefined) return { status: "none" };
  try {
    return parseHealth(new TextDecoder().decode(await system.readBytes(path, HEALTH_MAX_BYTES)), `${name}/${HEALTH_FILE}`);
  } catch (error) {
    return { status: "invalid", problem: `${name}/${HEALTH_FILE}: Cannot read it: ${(error as Error).message}` };
  }
}

/** Writes health.json atomically; the slot must be mounted read-write at `slotDir`. */
export async function writeHealth(system: System, slotDir: string, health: HealthRecord): Promise<void> {
  await system.mkdir(`${slotDir}/${RECORD_DIR}`);
  await system.writeText(`${slotDir}/${HEALTH_FILE}`, formatHealth(health));
}

/**
 * Counts this boot on the slot mounted read-only at `slotDir`, before the
 * handoff: remounted read-write for the one write, read-only again after,
 * also when the write fails.
 */
export async function countBootAttempt(system: System, slotDir: string, name: string, cuts: CutPoints = NO_CUTS): Promise<HealthRecord> {
  await system.remount(slotDir, false);
  try {
    await cuts.reach("attempt-remounted");
    const health = afterBootAttempt(healthOf(await readHealth(system, slotDir, name)), system.wallClock());
    await writeHealth(system, slotDir, health);
    await cuts.reach("attempt-written");
    return health;
  } finally {
    await system.remount(slotDir, true);
  }
}
