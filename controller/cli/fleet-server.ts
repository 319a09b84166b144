// `controller fleet-server`: takes the fleet's reports over HTTP and keeps
// them in SQLite (fleet/server.ts, fleet/sqlite-store.ts), with the same
// options' style and access log as `controller serve`. The tokens come from
// files, never from the command line, where `ps` shows them to every user.

import { resolve } from "node:path";
import type { FleetServer } from "../fleet/server.ts";
import type { FleetStore } from "../fleet/store.ts";
import { readTokenFile } from "../fleet/tokens.ts";
import { lineBuffer } from "./serve.ts";
import { parseOptions, parsePort, untilStopSignal } from "./server-options.ts";

export const FLEET_SERVER_USAGE =
  "Usage: controller fleet-server --db FILE --port N --report-token-file FILE --read-token-file FILE [--host ADDRESS]\n" +
  "  (default address 127.0.0.1; port 0 picks a free one; docs/fleet.md)\n";

const OPTIONS = ["--db", "--port", "--host", "--report-token-file", "--read-token-file"];

type FleetServerArgs = { db: string; port: number; hostname: string; reportTokenFile: string; readTokenFile: string };

function parseFleetServerArgs(args: readonly string[]): FleetServerArgs | string {
  const values = parseOptions(args, OPTIONS);
  if (typeof values === "string") return values;
  const db = values.get("--db");
  const reportTokenFile = values.get("--report-token-file");
  const readTokenFile = values.get("--read-token-file");
  if (db === undefined) return "--db FILE is missing";
  if (reportTokenFile === undefined) return "--report-token-file FILE is missing";
  if (readTokenFile === undefined) return "--read-token-file FILE is missing";
  const port = parsePort(values.get("--port"));
  if (typeof port === "string") return port;
  const hostname = values.get("--host") ?? "127.0.0.1";
  if (hostname === "") return "--host needs an address, got an empty one";
  return { db: resolve(db), port, hostname, reportTokenFile, readTokenFile };
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
    // loaded here, not at the top: main.ts imports every command, and `controller boot` should not
    // pay for loading bun:sqlite and building the envelope's schemas (2 to 7 ms natively here, more under TCG)
    const { openSqliteStore } = await import("../fleet/sqlite-store.ts");
    const { startFleetServer } = await import("../fleet/server.ts");
    store = openSqliteStore(parsed.db);
    server = startFleetServer({ store, tokens: { report: report.token, read: read.token }, port: parsed.port, hostname: parsed.hostname, accessLog: accessLog.add });
  } catch (error) {
    await store?.close();
    process.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  const signal = await untilStopSignal(() => process.stdout.write(`fleet server at ${server.url}, reports in ${parsed.db}\n`));
  await server.stop();
  await store.close();
  accessLog.flush();
  process.stdout.write(`stopped by ${signal}\n`);
  return 0;
}
