// `controller fleet-report` (cli/fleet-report.ts) on the in-memory machine,
// sending to a real fleet server (SQLite in a temporary file, 127.0.0.1, a
// free port) with the real fetch: the boot's report and mark-good's and
// mark-shutdown's arrive, a wrong token is dropped, a server away at first
// gets the report once it is up; the waits run on the fake clock.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXIT_CANNOT_SEND, type FleetReportWorld, runFleetReport } from "../../../controller/cli/fleet-report.ts";
import { reportLifecycle } from "../../../controller/fleet/report-sender.ts";
import { type FleetServer, startFleetServer } from "../../../controller/fleet/server.ts";
import { openSqliteStore } from "../../../controller/fleet/sqlite-store.ts";
import type { FleetStore } from "../../../controller/fleet/store.ts";
import type { FakeSystem } from "../../fake-system.ts";
import { MACHINE_ID, READ_TOKEN, REPORT_TOKEN } from "../../fleet-envelopes.ts";
import { reportingMachine, reportWithFleet, TOKEN_FILE } from "../../fleet-machine.ts";

let dir: string;
let store: FleetStore;
let server: FleetServer;
const TOKENS = { report: REPORT_TOKEN, read: READ_TOKEN };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-report-"));
  store = openSqliteStore(join(dir, "fleet.sqlite"));
  server = startFleetServer({ store, tokens: TOKENS, port: 0, hostname: "127.0.0.1" });
});

afterAll(async () => {
  await server.stop();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

function output() {
  const lines = { out: "", err: "" };
  return { lines, sink: { out: (text: string) => (lines.out += text), err: (text: string) => (lines.err += text) } };
}

/** Runs the command on `fake` until its output has `stopAfter` lines starting "controller: sent" or "controller: dropped", or an hour of fake time passed. */
async function fleetReport(fake: FakeSystem, stopAfter = 1, args: string[] = []) {
  const { lines, sink } = output();
  const done = () => lines.out.split("\n").filter((line) => /^controller: (sent|dropped) /.test(line)).length;
  const world: FleetReportWorld = { system: fake, output: sink, fetch: (url, init) => fetch(url, init), random: () => 0, keepGoing: () => done() < stopAfter && fake.now() < 3_600_000 };
  const code = await runFleetReport(args, world);
  return { code, ...lines };
}

async function kindsStored(machineId = MACHINE_ID): Promise<string[]> {
  return ((await store.machine(machineId))?.reports ?? []).map((report) => report.kind).sort();
}

describe("controller fleet-report with a fleet server", () => {
  test("the boot's report arrives; mark-good's, queued, goes with the next run; mark-shutdown's at once; the boot's is not sent twice", async () => {
    const fake = reportingMachine(reportWithFleet({ server: server.url, token_file: TOKEN_FILE }));
    const first = await fleetReport(fake);
    expect(first.code).toBe(0);
    expect(first.err).toBe("");
    const url = `${server.url}api/reports`;
    expect(first.out).toMatch(new RegExp(`^controller: queued this boot's report as (0-\\d{15}-boot-[0-9a-f]{8}\\.json)\ncontroller: sending reports from /run/controller/fleet-outbox to ${url}\ncontroller: sent \\1 to ${url}\n$`));
    expect(await kindsStored()).toEqual(["boot"]);
    const stored = await store.machine(MACHINE_ID);
    expect(stored?.machine).toMatchObject({ hostname: "lab-01", macs: ["52:54:00:12:34:56"], lastBoot: { version: "2.0", slot: { label: "SYSFS" } } });

    const logged: string[] = [];
    const ports = { system: fake, fetch: (target: string, init: RequestInit) => fetch(target, init), random: () => 0, log: (line: string) => logged.push(line) };
    await reportLifecycle(ports, "mark-good", reportWithFleet({ server: server.url, token_file: TOKEN_FILE }));
    expect(logged).toEqual([expect.stringMatching(/^queued the mark-good report as 1-\d{15}-mark-good-00000000\.json$/)]);
    const second = await fleetReport(fake);
    expect(second.out).not.toContain("queued this boot's report");
    expect(second.out).toMatch(/controller: sent 1-\d{15}-mark-good-00000000\.json to /);
    expect(await kindsStored()).toEqual(["boot", "mark-good"]);

    await reportLifecycle(ports, "mark-shutdown", reportWithFleet({ server: server.url, token_file: TOKEN_FILE }));
    expect(await kindsStored()).toEqual(["boot", "mark-good", "mark-shutdown"]);
    expect(logged[1]).toBe(`sent the mark-shutdown report to ${url}`);
  });

  test("a token the server does not know: the report is dropped with the server's words, the command goes on", async () => {
    const machineId = "1".repeat(32);
    const fake = reportingMachine(reportWithFleet({ server: server.url, token_file: TOKEN_FILE }))
      .addTree("/etc", { "machine-id": `${machineId}\n`, "controller/fleet-token": { text: `${"w".repeat(40)}\n`, mode: 0o600 } });
    const { code, out } = await fleetReport(fake);
    expect(code).toBe(0);
    expect(out).toMatch(/controller: dropped 0-\d{15}-boot-00000000\.json: the server answered 401: Cannot take the report: expected Authorization: Bearer with the fleet's report token, got none or another\n$/);
    expect(await kindsStored(machineId)).toEqual([]);
  });

  test("a server away at first gets the report once it is up", async () => {
    // a port that was free a moment ago: nothing listens there until the first wait
    const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    const port = probe.port;
    await probe.stop(true);
    const machineId = "2".repeat(32);
    const fake = reportingMachine(reportWithFleet({ server: `http://127.0.0.1:${port}`, token_file: TOKEN_FILE })).addTree("/etc", { "machine-id": `${machineId}\n` });
    let late: FleetServer | undefined;
    const fakeSleep = fake.sleep.bind(fake);
    fake.sleep = async (ms) => {
      late ??= startFleetServer({ store, tokens: TOKENS, port: port ?? 0, hostname: "127.0.0.1" });
      await fakeSleep(ms);
    };
    try {
      const { code, out } = await fleetReport(fake);
      expect(code).toBe(0);
      const lines = out.split("\n");
      expect(lines[2]).toMatch(new RegExp(`^controller: cannot send 0-\\d{15}-boot-00000000\\.json to http://127\\.0\\.0\\.1:${port}/api/reports yet: .+; 1 failed in a row, next try in 3 s$`));
      expect(lines[3]).toMatch(/^controller: sent 0-\d{15}-boot-00000000\.json to .* after 1 failed try$/);
      expect(await kindsStored(machineId)).toEqual(["boot"]);
      expect(fake.now()).toBe(2500);
    } finally {
      await late?.stop();
    }
  });
});

describe("controller fleet-report without a fleet to report to", () => {
  test("not booted by the controller, or fleet.server not set: nothing to do, exit status 0", async () => {
    const noReport = reportingMachine();
    await noReport.remove("/run/controller/report.json");
    expect(await fleetReport(noReport)).toMatchObject({ code: 0, out: expect.stringMatching(/^controller: nothing to report: no boot report to read at \/run\/controller\/report\.json \(.+\)\n$/) });
    for (const report of [reportWithFleet({ server: "", token_file: TOKEN_FILE }), { outcome: "handed-off" }]) {
      expect(await fleetReport(reportingMachine(report))).toEqual({ code: 0, out: "controller: nothing to report: fleet.server is not set in this boot's config\n", err: "" });
    }
  });

  test("settings that keep it from sending: EXIT_CANNOT_SEND and why, nothing queued", async () => {
    const report = reportWithFleet({ server: server.url, token_file: TOKEN_FILE });
    const cases: [FakeSystem, string][] = [
      [reportingMachine(report).addTree("/etc/controller", { "fleet-token": { text: REPORT_TOKEN, mode: 0o644 } }), `controller: Cannot send reports: fleet.token_file ${TOKEN_FILE} has mode 0644`],
      [reportingMachine(report).addTree("/etc", { "machine-id": "uninitialized\n" }), 'controller: Cannot send reports: Cannot name this machine: expected a machine-id (32 lowercase hex digits) in /etc/machine-id, got "uninitialized"'],
      [reportingMachine(reportWithFleet({ server: "ftp://x/", token_file: TOKEN_FILE })), "controller: Cannot send reports: /run/controller/report.json: key fleet.server: expected an http:// or https:// base URL"],
    ];
    for (const [fake, problem] of cases) {
      const { code, err } = await fleetReport(fake);
      expect(code).toBe(EXIT_CANNOT_SEND);
      expect(err).toStartWith(problem);
      expect(await fake.readdir("/run/controller/fleet-outbox").catch(() => [])).toEqual([]);
    }
  });

  test("arguments: exit status 2", async () => {
    expect(await fleetReport(reportingMachine(), 1, ["--now"])).toEqual({ code: 2, out: "", err: 'fleet-report takes no arguments, got "--now"\n' });
  });
});
