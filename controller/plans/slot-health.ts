// A slot's life cycle as health.json on the slot records it (boot/slot-health.ts
// reads and writes the file), counted the way systemd's automatic boot
// assessment and RAUC's mark-good do it:
//
//   every boot of the slot       attempts + 1, cleanShutdown = false   (the controller, before the handoff)
//   `controller mark-good`       attempts = 0, markedGood = true       (the booted system, once it is up)
//   `controller mark-shutdown`   cleanShutdown = true                  (the booted system, as it shuts down)
//   an install into the slot     a fresh record: nothing known yet
//
// So `attempts` is the number of boots since the last mark-good, and a slot
// that never comes up far enough to say so runs out of them.

const HEALTH_FORMAT = 1;

export interface HealthRecord {
  /** boots since the last mark-good (or since the install) */
  readonly attempts: number;
  /** the system has said at least once that it came up healthy */
  readonly markedGood: boolean;
  /** the last boot ended with mark-shutdown; false while a boot runs */
  readonly cleanShutdown: boolean;
  readonly lastBootAt?: string;
  readonly lastGoodAt?: string;
  /** why and when the controller took the slot out of service (relabelled it DEPRIVED) */
  readonly deprivedAt?: string;
  readonly deprivedReason?: string;
}

/** What a slot that the controller never booted looks like. */
export const UNKNOWN_HEALTH: HealthRecord = { attempts: 0, markedGood: false, cleanShutdown: true };

export type HealthRead = { readonly status: "none" } | { readonly status: "read"; readonly health: HealthRecord } | { readonly status: "invalid"; readonly problem: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Pure: health.json's text as a record, or why it is not one. */
export function parseHealth(text: string, source: string): HealthRead {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { status: "invalid", problem: `${source}: Cannot read it as JSON: ${(error as Error).message}` };
  }
  if (!isRecord(value) || value["format"] !== HEALTH_FORMAT) {
    return { status: "invalid", problem: `${source}: expected a JSON object with "format": ${HEALTH_FORMAT}` };
  }
  const { attempts, markedGood, cleanShutdown, lastBootAt, lastGoodAt, deprivedAt, deprivedReason } = value;
  if (typeof attempts !== "number" || !Number.isInteger(attempts) || attempts < 0) {
    return { status: "invalid", problem: `${source}: key attempts: expected a whole number from 0, got ${JSON.stringify(attempts)}` };
  }
  if (typeof markedGood !== "boolean" || typeof cleanShutdown !== "boolean") {
    return { status: "invalid", problem: `${source}: keys markedGood and cleanShutdown: expected true or false` };
  }
  return {
    status: "read",
    health: {
      attempts,
      markedGood,
      cleanShutdown,
      ...(typeof lastBootAt === "string" ? { lastBootAt } : {}),
      ...(typeof lastGoodAt === "string" ? { lastGoodAt } : {}),
      ...(typeof deprivedAt === "string" ? { deprivedAt } : {}),
      ...(typeof deprivedReason === "string" ? { deprivedReason } : {}),
    },
  };
}

export function formatHealth(health: HealthRecord): string {
  return `${JSON.stringify({ format: HEALTH_FORMAT, ...health }, null, 2)}\n`;
}

/** Pure: the record after one more boot of the slot. */
export function afterBootAttempt(health: HealthRecord, now: Date): HealthRecord {
  return { ...health, attempts: health.attempts + 1, cleanShutdown: false, lastBootAt: now.toISOString() };
}

/** Pure: the record after the booted system said it is healthy. */
export function afterMarkGood(health: HealthRecord, now: Date): HealthRecord {
  return { ...health, attempts: 0, markedGood: true, lastGoodAt: now.toISOString() };
}

/** Pure: the record of a slot the controller takes out of service. */
export function afterDeprived(health: HealthRecord, reason: string, now: Date): HealthRecord {
  return { ...health, deprivedAt: now.toISOString(), deprivedReason: reason };
}

/** Pure: the record after a clean shutdown. */
export function afterMarkShutdown(health: HealthRecord): HealthRecord {
  return { ...health, cleanShutdown: true };
}

/** The record to go on from: an unreadable one counts as nothing known. */
export function healthOf(read: HealthRead): HealthRecord {
  return read.status === "read" ? read.health : UNKNOWN_HEALTH;
}
