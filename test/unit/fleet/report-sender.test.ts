// The booted system's sender (fleet/report-sender.ts) over the in-memory
// machine and a fake fetch: its settings and token, the outbox, what each
// answer does, the waits on the fake clock, and the lines it logs.

import { describe, expect, test } from "bun:test";
import { REPORTS_PATH } from "../../../controller/fleet/server.ts";
import { OUTBOX_MAX_FILES, outboxName } from "../../../controller/fleet/outbox.ts";
import {
  enqueue,
  fleetSettingsOf,
  postEnvelope,
  queueBootReportOnce,
  readFleetToken,
  reportLifecycle,
  reportsUrl,
  REPORTS_URL_PATH,
  runSender,
  type SenderPorts,
  sendNowOrQueue,
} from "../../../controller/fleet/report-sender.ts";
import { FakeSystem } from "../../fake-system.ts";
import { BOOT_REPORT, MACHINE_ID, REPORT_TOKEN } from "../../fleet-envelopes.ts";
import { type FakeAnswer, FakeFleet, FLEET_SERVER, OUTBOX, refusal, REPORTS_URL, reportingMachine, reportWithFleet, TOKEN_FILE } from "../../fleet-machine.ts";

const MACHINE = { machineId: MACHINE_ID, macs: ["52:54:00:12:34:56"], hostname: "lab-01" };
const TARGET = { url: REPORTS_URL, token: REPORT_TOKEN };

function world(answers?: FakeAnswer[], fake = reportingMachine()) {
  const fleet = new FakeFleet(answers);
  const lines: string[] = [];
  const ports: SenderPorts = { system: fake, fetch: fleet.fetch, random: () => 0.5, log: (line) => lines.push(line) };
  return { fake, fleet, lines, ports };
}

async function outbox(fake: FakeSystem): Promise<string[]> {
  return (await fake.readdir(OUTBOX).catch(() => [])).sort();
}

/** Runs the sender until `count` envelopes were sent or dropped, or an hour of fake time passed. */
async function sendAll(ports: SenderPorts, fake: FakeSystem, lines: readonly string[], count: number): Promise<void> {
  const done = () => lines.filter((line) => /^(sent|dropped) /.test(line)).length;
  await runSender(ports, TARGET, () => done() < count && fake.now() < 3_600_000);
}

describe("fleetSettingsOf", () => {
  test("the [fleet] of this boot's config", () => {
    expect(fleetSettingsOf(reportWithFleet({ server: FLEET_SERVER, token_file: TOKEN_FILE, ca_bundle: "" }))).toEqual({ server: FLEET_SERVER, tokenFile: TOKEN_FILE, caBundle: "" });
    // a report of a controller before fleet.ca_bundle: its default
    expect(fleetSettingsOf(reportWithFleet())).toEqual({ server: FLEET_SERVER, tokenFile: TOKEN_FILE, caBundle: "/etc/ssl/certs/ca-certificates.crt" });
  });

  test("reports are off: fleet.server empty, a report from a controller before [fleet], a report of another shape", () => {
    for (const report of [reportWithFleet({ server: "", token_file: TOKEN_FILE }), BOOT_REPORT, {}, [], "text", null, { config: { values: [] } }]) {
      expect(fleetSettingsOf(report)).toBeUndefined();
    }
  });

  test("settings that do not check out: the problem, naming the key", () => {
    const cases: [unknown, string][] = [
      [{ server: "ftp://fleet.test/", token_file: TOKEN_FILE }, 'key fleet.server: expected an http:// or https:// base URL such as "https://fleet.example.org/" (no user, query or fragment), or "" for none, got "ftp://fleet.test/"'],
      [{ server: FLEET_SERVER, token_file: "token" }, 'key fleet.token_file: expected a normalised absolute path such as "/etc/controller/fleet-token" (no //, no trailing /, no "." or ".." parts), got "token"'],
      [{ server: FLEET_SERVER }, `key config.values.fleet: expected server and token_file, got {"server":"${FLEET_SERVER}"}`],
      [{ server: FLEET_SERVER, token_file: TOKEN_FILE, token: "x" }, "key fleet.token: unknown key; [fleet] has server, token_file, ca_bundle"],
      [{ server: FLEET_SERVER, token_file: TOKEN_FILE, ca_bundle: "certs.pem" }, 'key fleet.ca_bundle: expected a normalised absolute path such as "/etc/ssl/certs/ca-certificates.crt", or "" for the controller\'s built-in certificate authorities, got "certs.pem"'],
      ["on", "key fleet: expected a table, got \"on\""],
    ];
    for (const [fleet, problem] of cases) expect(() => fleetSettingsOf(reportWithFleet(fleet as Record<string, unknown>))).toThrow(`Cannot send reports: /run/controller/report.json: ${problem}`);
  });
});

describe("reportsUrl", () => {
  test("api/reports under the server's own path, with or without its trailing slash", () => {
    expect(reportsUrl("http://fleet.test")).toBe("http://fleet.test/api/reports");
    expect(reportsUrl("http://fleet.test:8080/")).toBe("http://fleet.test:8080/api/reports");
    expect(reportsUrl("https://example.org/lab")).toBe("https://example.org/lab/api/reports");
    expect(reportsUrl("https://example.org/lab/")).toBe("https://example.org/lab/api/reports");
  });

  test("is the path the server takes reports at", () => {
    expect(`/${REPORTS_URL_PATH}`).toBe(REPORTS_PATH);
  });
});

describe("readFleetToken", () => {
  test("the token of a file only root may read", async () => {
    expect(await readFleetToken(reportingMachine(), TOKEN_FILE)).toBe(REPORT_TOKEN);
  });

  test("refused: a file others may read, none, a folder, a symlink, an empty file, a short token", async () => {
    const withToken = (entry: Parameters<FakeSystem["addTree"]>[1][string]) => reportingMachine().addTree("/etc/controller", { "fleet-token": entry });
    const cases: [FakeSystem, string][] = [
      [withToken({ text: REPORT_TOKEN, mode: 0o644 }), `fleet.token_file ${TOKEN_FILE} has mode 0644: others on this machine may read the token; run chmod 600 ${TOKEN_FILE}`],
      [withToken({ text: REPORT_TOKEN, mode: 0o640 }), `fleet.token_file ${TOKEN_FILE} has mode 0640`],
      [new FakeSystem(), `fleet.token_file ${TOKEN_FILE}: expected a regular file holding the fleet's report token, got nothing`],
      [new FakeSystem().addTree(TOKEN_FILE, { x: "" }), "got a directory"],
      [withToken({ symlink: "/etc/elsewhere" }), "got a symlink"],
      [withToken({ text: "", mode: 0o600 }), `Cannot use fleet.token_file ${TOKEN_FILE}: expected 32 to 512 printable ASCII characters without spaces`],
      [withToken({ text: "short\n", mode: 0o600 }), "got 5 characters"],
    ];
    for (const [fake, problem] of cases) {
      const read = readFleetToken(fake, TOKEN_FILE);
      await expect(read).rejects.toThrow("Cannot send reports: ");
      await expect(read).rejects.toThrow(problem);
    }
  });
});

describe("enqueue", () => {
  test("one file an envelope, named for the order it goes in", async () => {
    const { fake, ports } = world();
    const name = await enqueue(ports, "mark-good", '{"kind":"mark-good"}');
    expect(name).toBe(outboxName("mark-good", fake.wallClock(), 0.5));
    expect(fake.peek(`${OUTBOX}/${name}`)).toBe('{"kind":"mark-good"}');
  });

  test("a full outbox loses its oldest, with a line each", async () => {
    const { fake, ports, lines } = world();
    for (let index = 0; index < OUTBOX_MAX_FILES + 2; index++) {
      await enqueue(ports, "mark-good", `${index}`);
      await fake.sleep(1);
    }
    const names = await outbox(fake);
    expect(names.length).toBe(OUTBOX_MAX_FILES);
    expect(fake.peek(`${OUTBOX}/${names[0]}`)).toBe("2");
    expect(lines).toEqual([expect.stringMatching(/^dropped 1-0+1767225600000-mark-good-80000000\.json unsent: the outbox holds at most 50 reports$/), expect.stringMatching(/^dropped .* unsent/)]);
  });
});

describe("queueBootReportOnce", () => {
  test("queues this boot's report once, even when the sender starts again", async () => {
    const { fake, ports, lines } = world();
    await queueBootReportOnce(ports, MACHINE, reportWithFleet());
    await queueBootReportOnce(ports, MACHINE, reportWithFleet());
    const names = await outbox(fake);
    expect(names).toEqual([expect.stringMatching(/^0-\d{15}-boot-[0-9a-f]{8}\.json$/)]);
    expect(JSON.parse(fake.peek(`${OUTBOX}/${names[0]}`) ?? "")).toEqual({ format: 1, kind: "boot", machine: MACHINE, sentAt: fake.wallClock().toISOString(), report: reportWithFleet() });
    expect(lines).toEqual([`queued this boot's report as ${names[0]}`]);
    expect(fake.peek("/run/controller/fleet-boot-queued")).toBeString();
  });

  test("a report too large is queued cut, and the log says how", async () => {
    const { fake, ports, lines } = world();
    await queueBootReportOnce(ports, MACHINE, { ...reportWithFleet(), notices: ["x".repeat(300 * 1024)] });
    expect(await outbox(fake)).toHaveLength(1);
    expect(lines[0]).toMatch(/^the boot report \(\d+ bytes\) was cut to fit: config.provenance, config.layers, partitions, notices dropped$/);
  });
});

describe("postEnvelope", () => {
  test("a POST with the token, as JSON, not following redirects", async () => {
    const { fleet, ports } = world();
    expect(await postEnvelope(ports, TARGET, '{"a":1}', 1000)).toEqual({ kind: "answered", status: 201, error: "" });
    expect(fleet.requests).toEqual([
      { url: REPORTS_URL, method: "POST", headers: { authorization: `Bearer ${REPORT_TOKEN}`, "content-type": "application/json" }, redirect: "manual", body: '{"a":1}' },
    ]);
  });

  test("the server's error text: its JSON error, a body's start, control characters shown as ?", async () => {
    const answers: [Response, string][] = [
      [refusal(401, "Cannot take the report: expected a token"), "Cannot take the report: expected a token"],
      [new Response("<html>Bad gateway</html>\n", { status: 502 }), "<html>Bad gateway</html>"],
      [new Response("line one\nline two\u001b[31m", { status: 500 }), "line one?line two?[31m"],
      [new Response("x".repeat(100_000), { status: 500 }), "x".repeat(300)],
      [new Response(null, { status: 503 }), ""],
    ];
    for (const [answer, error] of answers) {
      const { ports } = world([answer]);
      expect(await postEnvelope(ports, TARGET, "{}", 1000)).toMatchObject({ status: answer.status, error });
    }
  });

  test("no answer: the network's reason, or the time it waited", async () => {
    const { ports } = world([new Error("Unable to connect. Is the computer able to access the url?")]);
    expect(await postEnvelope(ports, TARGET, "{}", 1000)).toEqual({ kind: "failed", problem: "Unable to connect. Is the computer able to access the url?" });
    const hanging: FakeAnswer = (_request, signal) => new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
    const slow = world([hanging]);
    expect(await postEnvelope(slow.ports, TARGET, "{}", 50)).toEqual({ kind: "failed", problem: "no answer within 0.05 s" });
  });
});

describe("runSender", () => {
  test("sends the boot's report first, then the rest in order; each file goes once sent, with a line", async () => {
    const { fake, fleet, ports, lines } = world();
    const good = await enqueue(ports, "mark-good", '{"kind":"mark-good"}');
    await fake.sleep(1000);
    const shutdown = await enqueue(ports, "mark-shutdown", '{"kind":"mark-shutdown"}');
    const boot = await enqueue(ports, "boot", '{"kind":"boot"}');
    await sendAll(ports, fake, lines, 3);
    expect(fleet.kinds()).toEqual(["boot", "mark-good", "mark-shutdown"]);
    expect(await outbox(fake)).toEqual([]);
    expect(lines).toEqual([boot, good, shutdown].map((name) => `sent ${name} to ${REPORTS_URL}`));
  });

  test("a refusal for good drops the envelope with the status and the server's words, and the next one goes", async () => {
    const { fake, fleet, ports, lines } = world([refusal(401, "Cannot take the report: expected Authorization: Bearer with the fleet's report token, got none or another"), new Response(null, { status: 201 })]);
    const first = await enqueue(ports, "boot", '{"kind":"boot"}');
    const second = await enqueue(ports, "mark-good", '{"kind":"mark-good"}');
    await sendAll(ports, fake, lines, 2);
    expect(fleet.requests).toHaveLength(2);
    expect(lines).toEqual([
      `dropped ${first}: the server answered 401: Cannot take the report: expected Authorization: Bearer with the fleet's report token, got none or another`,
      `sent ${second} to ${REPORTS_URL}`,
    ]);
    expect(fake.now()).toBe(0);
  });

  test("a server away or busy: the same envelope again after waits that double, then sent, and a line saying after how many", async () => {
    const down = new Error("Unable to connect");
    const { fake, fleet, ports, lines } = world([down, down, refusal(503, "busy"), new Error("no route"), new Response(null, { status: 201 })]);
    const name = await enqueue(ports, "boot", '{"kind":"boot"}');
    await sendAll(ports, fake, lines, 1);
    expect(fleet.requests.map((request) => request.body)).toEqual(Array(5).fill('{"kind":"boot"}'));
    // random 0.5: three quarters of 5, 10, 20 and 40 s
    expect(fake.now()).toBe(3750 + 7500 + 15_000 + 30_000);
    expect(lines).toEqual([
      `cannot send ${name} to ${REPORTS_URL} yet: Unable to connect; 1 failed in a row, next try in 4 s`,
      `cannot send ${name} to ${REPORTS_URL} yet: Unable to connect; 2 failed in a row, next try in 8 s`,
      `cannot send ${name} to ${REPORTS_URL} yet: the server answered 503: busy; 3 failed in a row, next try in 15 s`,
      `cannot send ${name} to ${REPORTS_URL} yet: no route; 4 failed in a row, next try in 30 s`,
      `sent ${name} to ${REPORTS_URL} after 4 failed tries`,
    ]);
    expect(await outbox(fake)).toEqual([]);
  });

  test("a day without the server: tries go on every 10 minutes at most, and the log stays short", async () => {
    const { fake, fleet, ports, lines } = world([new Error("Unable to connect")]);
    await enqueue(ports, "boot", "{}");
    await runSender(ports, TARGET, () => fake.now() < 24 * 3_600_000);
    expect(fleet.requests.length).toBeGreaterThan(24 * 6);
    expect(lines.length).toBeLessThanOrEqual(12);
    expect(await outbox(fake)).toHaveLength(1);
  });

  test("an empty outbox is looked at again, so what a command queues later goes too", async () => {
    const { fake, fleet, ports } = world();
    let queued = false;
    await runSender(ports, TARGET, () => {
      if (fake.now() >= 60_000 && !queued) {
        queued = true;
        void enqueue(ports, "mark-good", '{"kind":"mark-good"}');
      }
      return fake.now() < 120_000;
    });
    expect(fleet.kinds()).toEqual(["mark-good"]);
  });

  test("files in the outbox that are not envelopes stay there unsent", async () => {
    const fake = reportingMachine().addTree(OUTBOX, { ".1-x.json.123.tmp": "{}", README: "x" });
    const { fleet, ports } = world(undefined, fake);
    await runSender(ports, TARGET, () => fake.now() < 60_000);
    expect(fleet.requests).toEqual([]);
    expect(await outbox(fake)).toEqual([".1-x.json.123.tmp", "README"]);
  });
});

describe("sendNowOrQueue", () => {
  test("taken at once: nothing queued", async () => {
    const { fake, fleet, lines, ports } = world();
    await sendNowOrQueue(ports, TARGET, "mark-shutdown", '{"kind":"mark-shutdown"}');
    expect(fleet.kinds()).toEqual(["mark-shutdown"]);
    expect(lines).toEqual([`sent the mark-shutdown report to ${REPORTS_URL}`]);
    expect(await outbox(fake)).toEqual([]);
  });

  test("refused for good: dropped, not queued", async () => {
    const { fake, lines, ports } = world([refusal(400, "Cannot read the report: no")]);
    await sendNowOrQueue(ports, TARGET, "mark-shutdown", "{}");
    expect(lines).toEqual(["dropped the mark-shutdown report: the server answered 400: Cannot read the report: no"]);
    expect(await outbox(fake)).toEqual([]);
  });

  test("no answer: queued for a sender still running, and the line says it is lost at power-off otherwise", async () => {
    const { fake, lines, ports } = world([new Error("Unable to connect")]);
    await sendNowOrQueue(ports, TARGET, "mark-shutdown", "{}");
    const names = await outbox(fake);
    expect(names).toEqual([expect.stringContaining("-mark-shutdown-")]);
    expect(lines).toEqual([`cannot send the mark-shutdown report to ${REPORTS_URL} now: Unable to connect; queued as ${names[0]} (lost at power-off unless sent before)`]);
  });
});

describe("reportLifecycle", () => {
  test("mark-good: queued for the running sender, nothing sent", async () => {
    const { fake, fleet, lines, ports } = world();
    await reportLifecycle(ports, "mark-good", reportWithFleet());
    const names = await outbox(fake);
    expect(JSON.parse(fake.peek(`${OUTBOX}/${names[0]}`) ?? "")).toEqual({ format: 1, kind: "mark-good", machine: MACHINE, sentAt: fake.wallClock().toISOString() });
    expect(lines).toEqual([`queued the mark-good report as ${names[0]}`]);
    expect(fleet.requests).toEqual([]);
  });

  test("mark-shutdown: sent at once with the token from fleet.token_file", async () => {
    const { fleet, ports } = world();
    await reportLifecycle(ports, "mark-shutdown", reportWithFleet());
    expect(fleet.kinds()).toEqual(["mark-shutdown"]);
    expect(fleet.requests[0]?.headers["authorization"]).toBe(`Bearer ${REPORT_TOKEN}`);
  });

  test("reports off: nothing queued, nothing said", async () => {
    const { fake, lines, ports } = world();
    for (const report of [BOOT_REPORT, undefined, reportWithFleet({ server: "", token_file: TOKEN_FILE })]) await reportLifecycle(ports, "mark-good", report);
    expect(await outbox(fake)).toEqual([]);
    expect(lines).toEqual([]);
  });

  test("what keeps it from sending is a line, never a throw: no machine-id, a token others may read, settings that do not check out", async () => {
    const noId = world(undefined, reportingMachine().addTree("/etc", { "machine-id": "" }));
    await reportLifecycle(noId.ports, "mark-good", reportWithFleet());
    expect(noId.lines).toEqual(["Cannot send the mark-good report: Cannot name this machine: expected a machine-id (32 lowercase hex digits) in /etc/machine-id, got an empty file"]);

    const openToken = world(undefined, reportingMachine().addTree("/etc/controller", { "fleet-token": { text: REPORT_TOKEN, mode: 0o644 } }));
    await reportLifecycle(openToken.ports, "mark-shutdown", reportWithFleet());
    expect(openToken.lines).toEqual([expect.stringContaining("Cannot send reports: fleet.token_file /etc/controller/fleet-token has mode 0644")]);
    expect(openToken.fleet.requests).toEqual([]);

    const bad = world();
    await reportLifecycle(bad.ports, "mark-good", reportWithFleet({ server: "nope", token_file: TOKEN_FILE }));
    expect(bad.lines).toEqual([expect.stringContaining("Cannot send reports: /run/controller/report.json: key fleet.server:")]);
  });

  test("a host name that is not one: sent mended, and said", async () => {
    const { fake, lines, ports } = world(undefined, reportingMachine().addTree("/proc/sys/kernel", { hostname: "lab_01\n" }));
    await reportLifecycle(ports, "mark-good", reportWithFleet());
    const names = await outbox(fake);
    expect(JSON.parse(fake.peek(`${OUTBOX}/${names[0]}`) ?? "").machine.hostname).toBe("lab-01");
    expect(lines[0]).toBe('the host name "lab_01" is not a valid host name: sent as "lab-01"');
  });
});
