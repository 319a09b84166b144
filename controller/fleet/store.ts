// Where the fleet server keeps reports: an interface, so the server does not
// care which database holds them. sqlite-store.ts is the one there is (one
// file, nothing to install); a database shared by several servers can be
// another implementation of the same interface.

import type { BootSummary } from "./boot-summary.ts";
import type { Envelope, EnvelopeKind } from "./envelope.ts";

/**
 * Reports kept per machine, the newest: older ones are deleted as new ones
 * come. With reports capped at REPORT_BODY_MAX_BYTES, a machine costs the
 * database at most this many times that (25 MiB).
 */
export const REPORTS_KEPT_PER_MACHINE = 100;

/** One machine as its latest report says, and its latest boot as its latest boot report says. */
export interface MachineRecord {
  readonly machineId: string;
  readonly hostname: string;
  readonly macs: readonly string[];
  readonly firstSeenAt: string;
  readonly lastSeenAt: string;
  readonly lastKind: EnvelopeKind;
  /** from the latest report of kind "boot"; absent until one came */
  readonly lastBoot?: BootSummary;
  /** when the server took the latest boot report; absent until one came */
  readonly lastBootAt?: string;
  /** when the server took the latest mark-good; absent until one came */
  readonly lastMarkGoodAt?: string;
  /** boot reports ever taken that say the boot rolled back (counted as they come, so older reports deleted do not lower it) */
  readonly rollbacks: number;
  /** the reports kept for it (at most REPORTS_KEPT_PER_MACHINE) */
  readonly reports: number;
}

export interface StoredReport {
  readonly id: number;
  readonly machineId: string;
  readonly kind: EnvelopeKind;
  /** when the server took it (its own clock) */
  readonly receivedAt: string;
  /** when the machine says it sent it (the machine's clock) */
  readonly sentAt: string;
  readonly hostname: string;
  readonly macs: readonly string[];
  /** the boot report as the machine sent it, for kind "boot" */
  readonly report?: Readonly<Record<string, unknown>>;
}

/** One machine with its kept reports, newest first: what GET /api/machines/ID answers and its page shows. */
export interface MachineHistory {
  readonly machine: MachineRecord;
  readonly reports: StoredReport[];
}

/**
 * Every call returns a promise: SQLite answers at once, but a database over
 * the network (Postgres) cannot, and the server should not care which it has.
 */
export interface FleetStore {
  /** Keeps a report that passed every check, and its machine's latest fields, all or nothing; returns its id. */
  add(envelope: Envelope, receivedAt: string): Promise<number>;
  /** Every machine, by machine-id. */
  machines(): Promise<MachineRecord[]>;
  /** One machine and its kept reports, newest first; undefined when it never reported. */
  machine(machineId: string): Promise<MachineHistory | undefined>;
  close(): Promise<void>;
}
