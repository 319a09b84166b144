// `controller fleet-server`: takes the fleet's reports over HTTP and keeps
// them in SQLite, or in Postgres when --db is a postgres:// URL
// (fleet/server.ts, fleet/sqlite-store.ts, fleet/postgres-store.ts), with the
// same options' style and access log as `controller serve`. The tokens come
// from files, never from the command line, where `ps` shows them to every
// user; so can the database's password (PGPASSWORD).

import { resolve } from "node:path";
import { isPostgresUrl, withoutPassword } from "../fleet/database-url.ts";
import type { FleetServer } from "../fleet/server.ts";
import type { FleetStore } from "../fleet/store.ts";
import { readTokenFile } from "../fleet/tokens.ts";
import { lineBuffer } from "./serve.ts";
import { parseOptions, parsePort, untilStopSignal } from "./server-options.ts";

export const FLEET_SERVER_USAGE =
  "Usage: controller fleet-server --db FILE|URL --port N --report-token-file FILE --read-token-file FILE [--host ADDRESS]\n" +
  "  (--db: a SQLite file, made on first start, or a postgres:// URL, its password best in PGPASSWORD;\n" +
  "   default address 127.0.0.1; port 0 picks a free one; docs/fleet.md)\n";

const OPTIONS = ["--db", "--port", "--host", "--report-token-file", "--read-token-file"];

type FleetServerArgs = { db: string; port: number; hostname: string; reportTokenFile: string; readTokenFile: string };

function parseFleetServerArgs(args: readonly string[]): FleetServerArgs | string {
  const values = parseOptions(args, OPTIONS);
  if (typeof values === "string") return values;
  const db = values.get("--db");
  const reportTokenFile = values.get("--report-token-file");
  const readTokenFile = values.get("--read-token-file");
  if (db === undefined) return "--db FILE|URL is missing";
  if (db === "") return "--db needs a file or a postgres:// URL, got an empty one";
  if (reportTokenFile === undefined) return "--report-token-file FILE is missing";
  if (readTokenFile === undefined) return "--read-token-file FILE is missing";
  const port = parsePort(values.get("--port"));
  if (typeof port === "string") return port;
  const hostname = values.get("--host") ?? "127.0.0.1";
  if (hostname === "") return "--host needs an address, got an empty one";
  return { db: isPostgresUrl(db) ? db : resolve(db), port, hostname, reportTokenFile, readTokenFile };
}

/**
 * The store --db names. Loaded here, not at the top: main.ts imports every
 * command, and `controller boot` should not pay for loading a database
 * client and building the envelope's schemas (2 to 7 ms natively here, more
 * under TCG).
 */
async function openStore(db: string): Promise<FleetStore> {
  if (isPostgresUrl(db)) {
    const { openPostgresStore } = await import("../fleet/postgres-store.ts");
    return openPostgresStore(db);
  }
  const { openSqliteStore } = await import("../fleet/sqlite-store.ts");
  return openSqliteStore(db);
}

/** `controller fleet-server`: serves until SIGINT or SIGTERM; one access log line per request on stdout. */
export async function fleetServerCommand(args: readonly string[]): Promise<number> {
  const parsed = parseFleetServerArgs(args);
  if (typeof parsed === "string") {
    process.stderr.write(`Cannot start the fleet server: ${parsed}\n${FLEET_SERVER_USAGE}`);
    return 2;
  }
  const accessLog = lineBuffer((text) => process.stdout.write(text));
  let store: FleetStore | undefined;
  let server: FleetServer;
  try {
    const report = await readTokenFile(parsed.reportTokenFile, "--report-token-file");
    const read = await readTokenFile(parsed.readTokenFile, "--read-token-file");
    for (const { warning } of [report, read]) if (warning !== undefined) process.stderr.write(`${warning}\n`);
    store = await openStore(parsed.db);
    const { startFleetServer } = await import("../fleet/server.ts");
    server = startFleetServer({ store, tokens: { report: report.token, read: read.token }, port: parsed.port, hostname: parsed.hostname, accessLog: accessLog.add });
  } catch (error) {
    await store?.close();
    process.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  const shown = isPostgresUrl(parsed.db) ? withoutPassword(parsed.db) : parsed.db;
  const signal = await untilStopSignal(() => process.stdout.write(`fleet server at ${server.url}, reports in ${shown}\n`));
  await server.stop();
  await store.close();
  accessLog.flush();
  process.stdout.write(`stopped by ${signal}\n`);
  return 0;
}
