// The fleet's reports in a Postgres database, through Bun's own SQL client,
// for a fleet that outgrows one server's SQLite file: the same tables and
// the same semantics as sqlite-store.ts. Each report is one transaction, and
// its first statement, the machine's upsert, locks the machine's row until
// it commits: two reports of one machine at once take turns (upsert, insert,
// trim, count), reports of different machines lock different rows and never wait
// on each other, so no order of reports can deadlock. Values only ever go in
// as parameters (the tagged template sends each ${} as one).
//
// JSON (MACs, the boot summary, the report) is kept as text, not jsonb: the
// server only stores and returns it, never queries inside it, and text gives
// back the report as it came (jsonb reorders keys) without parsing 256 KiB
// again on every insert. Times are the ISO text the SQLite store keeps too.

import { SQL } from "bun";
import { withoutPassword } from "./database-url.ts";
import type { FleetStore } from "./store.ts";
import { REPORTS_KEPT_PER_MACHINE } from "./store.ts";
import { MACHINE_COLUMNS, type MachineRow, machineRecord, otherSchemaVersion, type ReportRow, reportValues, SCHEMA_VERSION, storedReport } from "./store-rows.ts";

/**
 * Connections the server keeps: reports beyond this many at once wait for
 * one in Bun's queue rather than open more, so 1000 machines reporting at
 * once do not pass Postgres's default max_connections (100) and several
 * servers can share one database.
 */
export const POOL_SIZE = 10;

/** Taken while the schema is checked and made, so two servers started at once do not both make it. */
const SCHEMA_LOCK = 0x666c656574; // "fleet"

// machine_id in the "C" collation: listed in byte order, as SQLite lists it, whatever the database's locale
const SCHEMA = `
CREATE TABLE fleet_schema (version integer NOT NULL);
CREATE TABLE machines (
  machine_id text COLLATE "C" PRIMARY KEY,
  hostname text NOT NULL,
  macs text NOT NULL,
  first_seen_at text NOT NULL,
  last_seen_at text NOT NULL,
  last_kind text NOT NULL,
  last_boot text,
  last_boot_at text,
  last_mark_good_at text,
  rollbacks integer NOT NULL,
  reports integer NOT NULL
);
CREATE TABLE reports (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  machine_id text COLLATE "C" NOT NULL REFERENCES machines (machine_id),
  kind text NOT NULL,
  received_at text NOT NULL,
  sent_at text NOT NULL,
  hostname text NOT NULL,
  macs text NOT NULL,
  report text
);
CREATE INDEX reports_by_machine ON reports (machine_id, id);
`;

type Sql = InstanceType<typeof SQL>;

/** Checks the schema, or makes it in an empty database, in one transaction. */
async function prepareSchema(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`;
    const [{ made }] = await tx`SELECT to_regclass('fleet_schema') IS NOT NULL AS made`;
    if (made === true) {
      const rows = await tx`SELECT version FROM fleet_schema`;
      const version = rows.length === 1 ? Number(rows[0].version) : 0;
      if (version !== SCHEMA_VERSION) throw new Error(otherSchemaVersion(version));
      return;
    }
    // a database holding other tables of these names fails here rather than be written into
    await tx.unsafe(SCHEMA);
    await tx`INSERT INTO fleet_schema (version) VALUES (${SCHEMA_VERSION})`;
  });
}

/**
 * Connects to the database at `url` and, on first start, makes its tables.
 * The password comes from the URL or, as libpq takes it, from PGPASSWORD
 * (Bun's client reads it), which `ps` does not show. Errors name the URL
 * without its password.
 */
export async function openPostgresStore(url: string): Promise<FleetStore> {
  const shown = withoutPassword(url);
  let sql: Sql;
  try {
    sql = new SQL(url, { max: POOL_SIZE });
  } catch (error) {
    throw new Error(`Cannot open the fleet database ${shown}: expected a postgres:// URL Bun's SQL client takes, got: ${(error as Error).message}`);
  }
  try {
    await sql`SELECT 1`;
  } catch (error) {
    await sql.close();
    throw new Error(`Cannot connect to the fleet database ${shown}: expected a Postgres server there that lets its user into its database, got: ${(error as Error).message}`);
  }
  try {
    await prepareSchema(sql);
  } catch (error) {
    await sql.close();
    throw new Error(`Cannot open the fleet database ${shown}: ${(error as Error).message}`);
  }

  return {
    add: async (envelope, receivedAt) => {
      const { machineId, hostname, macs, kind, sentAt, lastBoot, bootAt, markGoodAt, rollback, report } = reportValues(envelope, receivedAt);
      return sql.begin(async (tx) => {
        await tx`
          INSERT INTO machines (machine_id, hostname, macs, first_seen_at, last_seen_at, last_kind, last_boot, last_boot_at, last_mark_good_at, rollbacks, reports)
          VALUES (${machineId}, ${hostname}, ${macs}, ${receivedAt}, ${receivedAt}, ${kind}, ${lastBoot}, ${bootAt}, ${markGoodAt}, ${rollback}, 1)
          ON CONFLICT (machine_id) DO UPDATE SET
            hostname = excluded.hostname, macs = excluded.macs, last_seen_at = excluded.last_seen_at,
            last_kind = excluded.last_kind, last_boot = COALESCE(excluded.last_boot, machines.last_boot),
            last_boot_at = COALESCE(excluded.last_boot_at, machines.last_boot_at),
            last_mark_good_at = COALESCE(excluded.last_mark_good_at, machines.last_mark_good_at),
            rollbacks = machines.rollbacks + excluded.rollbacks, reports = machines.reports + 1`;
        const [{ id }] = await tx`
          INSERT INTO reports (machine_id, kind, received_at, sent_at, hostname, macs, report)
          VALUES (${machineId}, ${kind}, ${receivedAt}, ${sentAt}, ${hostname}, ${macs}, ${report})
          RETURNING id`;
        const trimmed = await tx`
          DELETE FROM reports WHERE machine_id = ${machineId} AND id NOT IN
            (SELECT id FROM reports WHERE machine_id = ${machineId} ORDER BY id DESC LIMIT ${REPORTS_KEPT_PER_MACHINE})`;
        if (trimmed.count > 0) await tx`UPDATE machines SET reports = reports - ${trimmed.count} WHERE machine_id = ${machineId}`;
        return Number(id);
      });
    },
    machines: async () => {
      const rows: MachineRow[] = await sql.unsafe(`SELECT ${MACHINE_COLUMNS} FROM machines ORDER BY machine_id`);
      return rows.map(machineRecord);
    },
    // one snapshot (repeatable read), so the machine's row and its reports are of the same moment
    machine: async (machineId) =>
      sql.begin("isolation level repeatable read read only", async (tx) => {
        const [row]: (MachineRow | undefined)[] = await tx.unsafe(`SELECT ${MACHINE_COLUMNS} FROM machines WHERE machine_id = $1`, [machineId]);
        if (row === undefined) return undefined;
        const reports: ReportRow[] = await tx`SELECT * FROM reports WHERE machine_id = ${machineId} ORDER BY id DESC`;
        return { machine: machineRecord(row), reports: reports.map(storedReport) };
      }),
    close: async () => sql.close(),
  };
}
