// The fleet's reports in one SQLite file (bun:sqlite), so `controller
// fleet-server` runs with nothing else installed. WAL mode, so the listing
// reads while a report is written; each report is written in one
// transaction, so a report is stored whole with its machine's row or not at
// all; every statement is prepared once, and values only ever go in as
// parameters.

import { Database } from "bun:sqlite";
import type { Envelope } from "./envelope.ts";
import { type FleetStore, REPORTS_KEPT_PER_MACHINE } from "./store.ts";
import { MACHINE_COLUMNS, type MachineRow, machineRecord, otherSchemaVersion, type ReportRow, reportValues, SCHEMA_VERSION, storedReport } from "./store-rows.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS machines (
  machine_id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL,
  macs TEXT NOT NULL,
  first_seen_at TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  last_kind TEXT NOT NULL,
  last_boot TEXT,
  last_boot_at TEXT,
  last_mark_good_at TEXT,
  rollbacks INTEGER NOT NULL,
  reports INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS reports (
  id INTEGER PRIMARY KEY,
  machine_id TEXT NOT NULL REFERENCES machines (machine_id),
  kind TEXT NOT NULL,
  received_at TEXT NOT NULL,
  sent_at TEXT NOT NULL,
  hostname TEXT NOT NULL,
  macs TEXT NOT NULL,
  report TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS reports_by_machine ON reports (machine_id, id);
`;

/** Opens (and on first start makes) the database at `path`; errors say which file and why. */
export function openSqliteStore(path: string): FleetStore {
  let db: Database;
  try {
    db = new Database(path, { create: true, strict: true });
    const version = (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
    if (version !== 0 && version !== SCHEMA_VERSION) {
      db.close();
      throw new Error(otherSchemaVersion(version));
    }
    db.exec("PRAGMA journal_mode = WAL");
    // a backup (sqlite3's .backup) or another reader holding a lock makes a write wait this long, not fail at once
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA foreign_keys = ON");
    db.transaction(() => {
      db.exec(SCHEMA);
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    })();
  } catch (error) {
    throw new Error(`Cannot open the fleet database ${path}: ${(error as Error).message}`);
  }

  const upsertMachine = db.prepare(`
    INSERT INTO machines (machine_id, hostname, macs, first_seen_at, last_seen_at, last_kind, last_boot, last_boot_at, last_mark_good_at, rollbacks, reports)
    VALUES ($machineId, $hostname, $macs, $receivedAt, $receivedAt, $kind, $lastBoot, $bootAt, $markGoodAt, $rollback, 1)
    ON CONFLICT (machine_id) DO UPDATE SET
      hostname = excluded.hostname, macs = excluded.macs, last_seen_at = excluded.last_seen_at,
      last_kind = excluded.last_kind, last_boot = COALESCE(excluded.last_boot, machines.last_boot),
      last_boot_at = COALESCE(excluded.last_boot_at, machines.last_boot_at),
      last_mark_good_at = COALESCE(excluded.last_mark_good_at, machines.last_mark_good_at),
      rollbacks = machines.rollbacks + excluded.rollbacks, reports = machines.reports + 1`);
  const insertReport = db.prepare(`
    INSERT INTO reports (machine_id, kind, received_at, sent_at, hostname, macs, report)
    VALUES ($machineId, $kind, $receivedAt, $sentAt, $hostname, $macs, $report)`);
  const trimReports = db.prepare(`
    DELETE FROM reports WHERE machine_id = $machineId AND id NOT IN
      (SELECT id FROM reports WHERE machine_id = $machineId ORDER BY id DESC LIMIT $kept)`);
  const uncountReports = db.prepare("UPDATE machines SET reports = reports - $trimmed WHERE machine_id = $machineId");
  const selectMachines = db.prepare<MachineRow, []>(`SELECT ${MACHINE_COLUMNS} FROM machines ORDER BY machine_id`);
  const selectMachine = db.prepare<MachineRow, { machineId: string }>(`SELECT ${MACHINE_COLUMNS} FROM machines WHERE machine_id = $machineId`);
  const selectReports = db.prepare<ReportRow, { machineId: string }>(`SELECT * FROM reports WHERE machine_id = $machineId ORDER BY id DESC`);

  const add = db.transaction((envelope: Envelope, receivedAt: string): number => {
    const { machineId, hostname, macs, kind, sentAt, lastBoot, bootAt, markGoodAt, rollback, report } = reportValues(envelope, receivedAt);
    upsertMachine.run({ machineId, hostname, macs, receivedAt, kind, lastBoot, bootAt, markGoodAt, rollback });
    const { lastInsertRowid } = insertReport.run({ machineId, kind, receivedAt, sentAt, hostname, macs, report });
    const trimmed = trimReports.run({ machineId, kept: REPORTS_KEPT_PER_MACHINE }).changes;
    if (trimmed > 0) uncountReports.run({ machineId, trimmed });
    return Number(lastInsertRowid);
  });

  // one read transaction, so the machine's row and its reports are of the same moment
  const machine = db.transaction((machineId: string) => {
    const row = selectMachine.get({ machineId });
    if (row === null) return undefined;
    return { machine: machineRecord(row), reports: selectReports.all({ machineId }).map(storedReport) };
  });

  return {
    add: async (envelope, receivedAt) => add(envelope, receivedAt),
    machines: async () => selectMachines.all().map(machineRecord),
    machine: async (machineId) => machine(machineId),
    close: async () => db.close(),
  };
}
