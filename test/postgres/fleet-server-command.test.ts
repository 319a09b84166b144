// `controller fleet-server --db postgres://...` as a process (cli/fleet-server.ts)
// against a throw-away Postgres server (test/postgres-cluster.ts): the
// password from PGPASSWORD, not the command line; a report taken and read
// back; the URL it prints and its errors without the password.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { finishedCommand, spawnCommand, stdoutLines } from "../command-process.ts";
import { bootEnvelope, MACHINE_ID, READ_TOKEN, REPORT_TOKEN } from "../fleet-envelopes.ts";
import { CLUSTER_PASSWORD, type PostgresCluster, startPostgresCluster } from "../postgres-cluster.ts";

const FLEET_SERVER = resolve(import.meta.dir, "../../controller/cli/fleet-server.ts");
const PROCESS_TEST_TIMEOUT_MS = 30_000;

let cluster: PostgresCluster;
let dir: string;
let tokenOptions: string[];

beforeAll(async () => {
  cluster = await startPostgresCluster();
  dir = await mkdtemp(join(tmpdir(), "fleet-server-postgres-"));
  const reportTokenFile = join(dir, "report.token");
  const readTokenFile = join(dir, "read.token");
  await writeFile(reportTokenFile, `${REPORT_TOKEN}\n`, { mode: 0o600 });
  await writeFile(readTokenFile, `${READ_TOKEN}\n`, { mode: 0o600 });
  tokenOptions = ["--port", "0", "--report-token-file", reportTokenFile, "--read-token-file", readTokenFile];
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("fleetServerCommand with a postgres:// URL", () => {
  test("the password from PGPASSWORD: takes a report, lists it, prints the URL, stops on SIGTERM", async () => {
    await cluster.createDatabase("fleet_command");
    const url = cluster.url("fleet_command", "");
    const child = spawnCommand(FLEET_SERVER, "fleetServerCommand", ["--db", url, ...tokenOptions], { PGPASSWORD: CLUSTER_PASSWORD });
    const nextLine = stdoutLines(child);
    try {
      const first = await nextLine();
      expect(first).toMatch(new RegExp(`^fleet server at http://127\\.0\\.0\\.1:\\d+/, reports in ${url.replaceAll(".", "\\.")}$`));
      const server = first.slice(first.indexOf("http://"), first.indexOf("/, ") + 1);
      const sent = await fetch(`${server}api/reports`, {
        method: "POST",
        headers: { Authorization: `Bearer ${REPORT_TOKEN}`, "Content-Type": "application/json" },
        body: JSON.stringify(bootEnvelope()),
      });
      expect(sent.status).toBe(201);
      const listed = await fetch(`${server}api/machines`, { headers: { Authorization: `Bearer ${READ_TOKEN}` } });
      expect(await listed.json()).toMatchObject({ machines: [{ machineId: MACHINE_ID, hostname: "lab-01", reports: 1 }] });
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  }, PROCESS_TEST_TIMEOUT_MS);

  test("a password in the URL is never printed, neither when running nor in an error", async () => {
    await cluster.createDatabase("fleet_in_url");
    const running = spawnCommand(FLEET_SERVER, "fleetServerCommand", ["--db", cluster.url("fleet_in_url"), ...tokenOptions]);
    try {
      expect(await stdoutLines(running)()).toEndWith(`, reports in ${cluster.url("fleet_in_url", "")}`);
      running.kill("SIGTERM");
      expect(await running.exited).toBe(0);
    } finally {
      running.kill("SIGKILL");
    }
    const refused = await finishedCommand(spawnCommand(FLEET_SERVER, "fleetServerCommand", ["--db", cluster.url("fleet_in_url", "wrong-password"), ...tokenOptions]));
    expect(refused).toMatchObject({ code: 1, stdout: "" });
    expect(refused.stderr).toBe(
      `Cannot connect to the fleet database ${cluster.url("fleet_in_url", "")}: expected a Postgres server there that lets its user into its database, got: password authentication failed for user "fleet"\n`,
    );
  }, PROCESS_TEST_TIMEOUT_MS);
});
