// `controller fleet-server` (cli/fleet-server.ts) as a process: its options,
// its token files, and a run that takes a report, is stopped by SIGTERM, and
// finds the report again after a restart.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type CommandProcess, finishedCommand, spawnCommand, stdoutLines } from "../../command-process.ts";
import { bootEnvelope, MACHINE_ID, READ_TOKEN, REPORT_TOKEN } from "../../fleet-envelopes.ts";

const FLEET_SERVER = resolve(import.meta.dir, "../../../controller/cli/fleet-server.ts");

/** Each test starts bun processes, which take a second or more each on a loaded 2-core machine. */
const PROCESS_TEST_TIMEOUT_MS = 30_000;

let dir: string;
let reportTokenFile: string;
let readTokenFile: string;
let db: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-server-command-"));
  reportTokenFile = join(dir, "report.token");
  readTokenFile = join(dir, "read.token");
  db = join(dir, "fleet.sqlite");
  await writeFile(reportTokenFile, `${REPORT_TOKEN}\n`, { mode: 0o600 });
  await writeFile(readTokenFile, `${READ_TOKEN}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function fleetServer(args: string[]): CommandProcess {
  return spawnCommand(FLEET_SERVER, "fleetServerCommand", args);
}

function finished(args: string[]): ReturnType<typeof finishedCommand> {
  return finishedCommand(fleetServer(args));
}

function allOptions(changes: Record<string, string | undefined> = {}): string[] {
  const options: Record<string, string | undefined> = { "--db": db, "--port": "0", "--report-token-file": reportTokenFile, "--read-token-file": readTokenFile, ...changes };
  return Object.entries(options).flatMap(([option, value]) => (value === undefined ? [] : [option, value]));
}

describe("fleetServerCommand", () => {
  test("missing or invalid options are usage errors that say which", async () => {
    const cases: [string[], string][] = [
      [allOptions({ "--db": undefined }), "Cannot start the fleet server: --db FILE|URL is missing"],
      [allOptions({ "--db": "" }), "Cannot start the fleet server: --db needs a file or a postgres:// URL, got an empty one"],
      [allOptions({ "--report-token-file": undefined }), "Cannot start the fleet server: --report-token-file FILE is missing"],
      [allOptions({ "--read-token-file": undefined }), "Cannot start the fleet server: --read-token-file FILE is missing"],
      [allOptions({ "--port": undefined }), "Cannot start the fleet server: --port N is missing"],
      [allOptions({ "--port": "http" }), '--port needs a port number from 0 to 65535, got "http"'],
      [[...allOptions(), "--token", REPORT_TOKEN], 'Unknown option "--token"'],
      [[...allOptions(), "--db", db], "--db is given twice"],
      [allOptions({ "--host": "" }), "--host needs an address, got an empty one"],
    ];
    // at once: each is a process of its own, and one after another they take seconds on a busy machine
    const results = await Promise.all(cases.map(([args]) => finished(args)));
    for (const [index, [args, message]] of cases.entries()) {
      const result = results[index];
      expect([args, result?.code, result?.stderr]).toEqual([args, 2, expect.stringContaining(message)]);
      expect(result?.stderr).toContain("Usage: controller fleet-server --db FILE|URL --port N --report-token-file FILE --read-token-file FILE");
    }
  }, PROCESS_TEST_TIMEOUT_MS);

  test("a token file that is missing or no token, or one token for both: refused, naming the option", async () => {
    const missing = join(dir, "missing.token");
    expect(await finished(allOptions({ "--read-token-file": missing }))).toMatchObject({ code: 1, stderr: expect.stringContaining(`Cannot read --read-token-file ${missing}: `) });
    const short = join(dir, "short.token");
    await writeFile(short, "secret\n", { mode: 0o600 });
    expect(await finished(allOptions({ "--report-token-file": short }))).toMatchObject({ code: 1, stderr: expect.stringContaining(`Cannot use --report-token-file ${short}: expected 32 to 512 printable ASCII characters`) });
    const same = await finished(allOptions({ "--read-token-file": reportTokenFile }));
    expect(same).toMatchObject({ code: 1, stderr: expect.stringContaining("the report token and the read token are the same") });
  }, PROCESS_TEST_TIMEOUT_MS);

  test("a port in use and a database that cannot be made: refused, naming them", async () => {
    const busy = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
    try {
      const result = await finished(allOptions({ "--port": String(busy.port), "--db": join(dir, "busy.sqlite") }));
      expect(result).toMatchObject({ code: 1, stderr: expect.stringContaining(`Cannot start the fleet server at 127.0.0.1 port ${busy.port}: `) });
    } finally {
      await busy.stop(true);
    }
    const nowhere = join(dir, "no-such-folder", "fleet.sqlite");
    expect(await finished(allOptions({ "--db": nowhere }))).toMatchObject({ code: 1, stderr: expect.stringContaining(`Cannot open the fleet database ${nowhere}: `) });
  }, PROCESS_TEST_TIMEOUT_MS);

  test("a token file others may read: a warning that says how to mend it, and the server runs", async () => {
    const open = join(dir, "open.token");
    await writeFile(open, `${READ_TOKEN}\n`);
    await chmod(open, 0o644);
    const child = fleetServer(allOptions({ "--read-token-file": open, "--db": join(dir, "warned.sqlite") }));
    try {
      expect(await stdoutLines(child)()).toStartWith("fleet server at http://127.0.0.1:");
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
      expect(await new Response(child.stderr).text()).toBe(`Warning: --read-token-file ${open} has mode 0644: others on this machine may read the token; run chmod 600 ${open}\n`);
    } finally {
      child.kill("SIGKILL");
    }
  }, PROCESS_TEST_TIMEOUT_MS);

  test("takes a report, logs one line per request, stops on SIGTERM, and has the report after a restart", async () => {
    const run = async (work: (url: string, nextLine: () => Promise<string>) => Promise<void>): Promise<void> => {
      const child = fleetServer(allOptions());
      const nextLine = stdoutLines(child);
      try {
        const first = await nextLine();
        expect(first).toMatch(new RegExp(`^fleet server at http://127\\.0\\.0\\.1:\\d+/, reports in ${db}$`));
        await work(first.slice(first.indexOf("http://"), first.indexOf("/, ") + 1), nextLine);
        child.kill("SIGTERM");
        expect(await child.exited).toBe(0);
        expect(await nextLine()).toBe("stopped by SIGTERM");
      } finally {
        child.kill("SIGKILL");
      }
    };
    await run(async (url, nextLine) => {
      const sent = await fetch(`${url}api/reports`, {
        method: "POST",
        headers: { Authorization: `Bearer ${REPORT_TOKEN}`, "Content-Type": "application/json" },
        body: JSON.stringify(bootEnvelope()),
      });
      expect(sent.status).toBe(201);
      expect(await nextLine()).toMatch(/"POST \/api\/reports" 201 /);
    });
    await run(async (url, nextLine) => {
      const listed = await fetch(`${url}api/machines/${MACHINE_ID}`, { headers: { Authorization: `Bearer ${READ_TOKEN}` } });
      expect(listed.status).toBe(200);
      expect(await listed.json()).toMatchObject({ machine: { machineId: MACHINE_ID, reports: 1 } });
      expect(await nextLine()).toMatch(new RegExp(`"GET /api/machines/${MACHINE_ID}" 200 `));
    });
  }, PROCESS_TEST_TIMEOUT_MS);
});
