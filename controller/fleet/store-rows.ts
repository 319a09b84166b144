// What both stores (sqlite-store.ts, postgres-store.ts) share: the values a
// report is stored as, derived once from its envelope, and the rows read back
// made into the store's records. Each store keeps its own SQL: the two
// dialects differ in their types and parameters, and each statement is
// clearer in its own database's words than behind a layer that hides both.

import { type BootSummary, summarizeBootReport } from "./boot-summary.ts";
import type { Envelope, EnvelopeKind } from "./envelope.ts";
import type { MachineRecord, StoredReport } from "./store.ts";

/**
 * The version of both stores' schema; a database of another version is
 * refused, not guessed at. 2: the machine's row keeps the count of its
 * reports (1 counted them on every listing).
 */
export const SCHEMA_VERSION = 2;

/**
 * A machine's columns, as both stores select them. Its `reports` is kept as
 * reports come and go, not counted on every listing: with 1000 machines and
 * 100 000 reports, counting made the listing's query three to seven times
 * slower in both databases (bench/fleet.ts times both side by side;
 * bench/RESULTS.md).
 */
export const MACHINE_COLUMNS = "machine_id, hostname, macs, first_seen_at, last_seen_at, last_kind, last_boot, last_boot_at, last_mark_good_at, rollbacks, reports";

/** A machine's row, as both stores select it. JSON is kept as text. */
export interface MachineRow {
  machine_id: string;
  hostname: string;
  macs: string;
  first_seen_at: string;
  last_seen_at: string;
  last_kind: string;
  last_boot: string | null;
  last_boot_at: string | null;
  last_mark_good_at: string | null;
  rollbacks: number;
  reports: number;
}

/** A report's row; Postgres gives its bigint id as a string. */
export interface ReportRow {
  id: number | string;
  machine_id: string;
  kind: string;
  received_at: string;
  sent_at: string;
  hostname: string;
  macs: string;
  report: string | null;
}

/** What one report writes: its machine's latest fields and the report itself. */
export interface ReportValues {
  readonly machineId: string;
  readonly hostname: string;
  /** the MAC addresses as JSON */
  readonly macs: string;
  readonly kind: EnvelopeKind;
  readonly receivedAt: string;
  readonly sentAt: string;
  /** the boot summary as JSON, for a boot report; null keeps the machine's last one */
  readonly lastBoot: string | null;
  /** receivedAt for a boot report; null keeps the machine's last one */
  readonly bootAt: string | null;
  /** receivedAt for a mark-good; null keeps the machine's last one */
  readonly markGoodAt: string | null;
  /** 1 when a boot report says the boot rolled back, added to the machine's count of rollbacks */
  readonly rollback: number;
  /** the boot report as JSON, as the machine sent it */
  readonly report: string | null;
}

export function reportValues(envelope: Envelope, receivedAt: string): ReportValues {
  const summary = envelope.report === undefined ? undefined : summarizeBootReport(envelope.report);
  return {
    machineId: envelope.machine.machineId,
    hostname: envelope.machine.hostname,
    macs: JSON.stringify(envelope.machine.macs),
    kind: envelope.kind,
    receivedAt,
    sentAt: envelope.sentAt,
    lastBoot: summary === undefined ? null : JSON.stringify(summary),
    bootAt: envelope.kind === "boot" ? receivedAt : null,
    markGoodAt: envelope.kind === "mark-good" ? receivedAt : null,
    rollback: summary?.rollback === undefined ? 0 : 1,
    report: envelope.report === undefined ? null : JSON.stringify(envelope.report),
  };
}

export function machineRecord(row: MachineRow): MachineRecord {
  return {
    machineId: row.machine_id,
    hostname: row.hostname,
    macs: JSON.parse(row.macs) as string[],
    firstSeenAt: row.first_seen_at,
    lastSeenAt: row.last_seen_at,
    lastKind: row.last_kind as EnvelopeKind,
    ...(row.last_boot === null ? {} : { lastBoot: JSON.parse(row.last_boot) as BootSummary }),
    ...(row.last_boot_at === null ? {} : { lastBootAt: row.last_boot_at }),
    ...(row.last_mark_good_at === null ? {} : { lastMarkGoodAt: row.last_mark_good_at }),
    rollbacks: row.rollbacks,
    reports: row.reports,
  };
}

export function storedReport(row: ReportRow): StoredReport {
  return {
    id: Number(row.id),
    machineId: row.machine_id,
    kind: row.kind as EnvelopeKind,
    receivedAt: row.received_at,
    sentAt: row.sent_at,
    hostname: row.hostname,
    macs: JSON.parse(row.macs) as string[],
    ...(row.report === null ? {} : { report: JSON.parse(row.report) as Record<string, unknown> }),
  };
}

/** Why a database of schema version `found` is refused. */
export function otherSchemaVersion(found: number): string {
  return `its schema is version ${found}, expected ${SCHEMA_VERSION} (this controller's); it was made by another controller`;
}
