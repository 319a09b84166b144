// The fleet server over HTTP (fleet/server.ts), started on 127.0.0.1 with a
// temporary database: reports taken with the report token and refused
// without it, refused for size and shape with nothing stored, read only with
// the read token, one access log line per request.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPORT_BODY_MAX_BYTES } from "../../../controller/fleet/envelope.ts";
import { type FleetServer, MACHINES_PATH, REPORTS_PATH, startFleetServer } from "../../../controller/fleet/server.ts";
import { openSqliteStore } from "../../../controller/fleet/sqlite-store.ts";
import type { FleetStore } from "../../../controller/fleet/store.ts";
import { bootEnvelope, HOSTILE, hostileReport, MACHINE_ID, PAGE_NOW, READ_TOKEN, REPORT_TOKEN } from "../../fleet-envelopes.ts";

let dir: string;
let store: FleetStore;
let server: FleetServer;
const log: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-server-"));
  store = openSqliteStore(join(dir, "fleet.sqlite"));
  server = startFleetServer({ store, tokens: { report: REPORT_TOKEN, read: READ_TOKEN }, port: 0, hostname: "127.0.0.1", accessLog: (line) => log.push(line), now: () => PAGE_NOW });
});

afterAll(async () => {
  await server.stop();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  log.length = 0;
});

function url(path: string): string {
  return new URL(path.slice(1), server.url).href;
}

function send(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url(REPORTS_PATH), {
    method: "POST",
    headers: { Authorization: `Bearer ${REPORT_TOKEN}`, "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** A GET with the read token, another token, or (null) none. */
function read(path: string, token: string | null = READ_TOKEN): Promise<Response> {
  return fetch(url(path), { headers: token === null ? {} : { Authorization: `Bearer ${token}` } });
}

async function machineCount(): Promise<number> {
  return (await store.machines()).length;
}

describe("POST /api/reports", () => {
  test("a report with the report token: 201 with its id, stored, and one access log line", async () => {
    const response = await send(bootEnvelope());
    expect(response.status).toBe(201);
    const { id } = (await response.json()) as { id: number };
    expect((await store.machine(MACHINE_ID))?.reports.map((report) => report.id)).toContain(id);
    expect(log).toEqual([expect.stringMatching(/^127\.0\.0\.1 \[\d{4}-\d{2}-\d{2}T[^\]]+\] "POST \/api\/reports" 201 \d+ \d+ms$/)]);
  });

  test("no token, another scheme, the read token, a wrong one: 401 with WWW-Authenticate, nothing stored, the body not read", async () => {
    const other = "f".repeat(32);
    const envelope = bootEnvelope({ machine: { machineId: other, macs: [], hostname: "intruder" } });
    for (const authorization of ["", `Basic ${REPORT_TOKEN}`, `Bearer ${READ_TOKEN}`, `Bearer ${REPORT_TOKEN}x`]) {
      const response = await send(envelope, { Authorization: authorization });
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toBe('Bearer realm="fleet"');
      expect(await response.json()).toMatchObject({ error: "Cannot take the report: expected Authorization: Bearer with the fleet's report token, got none or another" });
    }
    expect(await store.machine(other)).toBeUndefined();
    expect(log.every((line) => line.includes('"POST /api/reports" 401 '))).toBe(true);
  });

  test("a malformed report: 400 naming every problem, nothing stored, the reason in the log", async () => {
    const before = await machineCount();
    const response = await send(bootEnvelope({ machine: { machineId: "F".repeat(32), macs: [], hostname: "lab-03" } }));
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: `key machine.machineId: expected a machine-id: 32 lowercase hex digits, got "${"F".repeat(32)}"`,
      problems: [`key machine.machineId: expected a machine-id: 32 lowercase hex digits, got "${"F".repeat(32)}"`],
    });
    expect((await send("{not json")).status).toBe(400);
    expect(await machineCount()).toBe(before);
    expect(log[0]).toEndWith(`(key machine.machineId: expected a machine-id: 32 lowercase hex digits, got "${"F".repeat(32)}")`);
  });

  test("a control character the sender put in a value cannot start a line of the log", async () => {
    await send(bootEnvelope({ kind: "boot\n127.0.0.1 forged" }));
    expect(log).toHaveLength(1);
    expect(log[0]).not.toContain("\n");
  });

  test("another content type: 415, nothing stored", async () => {
    const before = await machineCount();
    const response = await send(bootEnvelope({ machine: { machineId: "e".repeat(32), macs: [], hostname: "lab-04" } }), { "Content-Type": "text/plain" });
    expect(response.status).toBe(415);
    expect(await machineCount()).toBe(before);
  });

  test("a body over the cap: 413, nothing stored", async () => {
    const before = await machineCount();
    const big = bootEnvelope({ machine: { machineId: "d".repeat(32), macs: [], hostname: "lab-05" }, report: { padding: "x".repeat(REPORT_BODY_MAX_BYTES) } });
    const response = await send(big);
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ error: expect.stringMatching(new RegExp(`^Cannot take the report: it is \\d+ bytes, expected at most ${REPORT_BODY_MAX_BYTES}$`)) });
    expect(await machineCount()).toBe(before);
  });

  test("a declared length over the cap is answered 413 while the body has not been sent", async () => {
    const port = server.port;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      let received = "";
      socket.on("data", (data) => {
        received += data.toString("latin1");
        if (received.includes("\r\n\r\n")) {
          socket.destroy();
          resolve(received);
        }
      });
      socket.on("error", reject);
      // the headers only: a server that waited for the 100 MiB it was promised would never answer
      socket.write(
        `POST ${REPORTS_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${REPORT_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n{`,
      );
    });
    expect(answer).toStartWith("HTTP/1.1 413 ");
  });

  test("GET on the reports path: 405 with Allow: POST", async () => {
    const response = await fetch(url(REPORTS_PATH), { headers: { Authorization: `Bearer ${REPORT_TOKEN}` } });
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("POST");
  });
});

describe("GET /api/machines", () => {
  test("with the read token: every machine as JSON, with its last boot", async () => {
    expect((await send(bootEnvelope())).status).toBe(201);
    const response = await read(MACHINES_PATH);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    const { machines } = (await response.json()) as { machines: unknown[] };
    expect(machines).toContainEqual(expect.objectContaining({ machineId: MACHINE_ID, hostname: "lab-01", lastBoot: expect.objectContaining({ version: "2.0" }) }));
  });

  test("one machine and its reports, newest first; an unknown or malformed id: 404", async () => {
    const response = await read(`${MACHINES_PATH}/${MACHINE_ID}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { machine: { machineId: string }; reports: { id: number }[] };
    expect(body.machine.machineId).toBe(MACHINE_ID);
    const ids = body.reports.map((report) => report.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect((await read(`${MACHINES_PATH}/${"0".repeat(32)}`)).status).toBe(404);
    expect((await read(`${MACHINES_PATH}/..%2F..%2Fetc`)).status).toBe(404);
  });

  test("HTML a machine sent comes back as JSON text, never as a page", async () => {
    const html = "<script>alert(1)</script>";
    expect((await send(bootEnvelope({ report: { outcome: html } }))).status).toBe(201);
    const response = await read(`${MACHINES_PATH}/${MACHINE_ID}`);
    expect(response.headers.get("content-type")).toBe("application/json");
    const body = (await response.json()) as { reports: { report?: { outcome?: string } }[] };
    expect(body.reports[0]?.report?.outcome).toBe(html);
  });

  test("without the read token, or with the report token: 401, nothing listed", async () => {
    for (const token of [null, REPORT_TOKEN, `${READ_TOKEN}x`]) {
      for (const path of [MACHINES_PATH, `${MACHINES_PATH}/${MACHINE_ID}`]) {
        const response = await read(path, token);
        expect(response.status).toBe(401);
        const body = (await response.json()) as Record<string, unknown>;
        expect(body).toEqual({ error: "Cannot read the machines: expected Authorization: Bearer with the read token, got none or another", problems: [body["error"]] });
      }
    }
  });

  test("POST on the listing: 405 with Allow: GET; another path: 404", async () => {
    const response = await fetch(url(MACHINES_PATH), { method: "POST", headers: { Authorization: `Bearer ${READ_TOKEN}` } });
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("GET");
    expect((await read("/index.html")).status).toBe(404);
    expect((await read("/api/machinesX")).status).toBe(404);
  });
});

/** A browser's sign-in: Basic with any user name and the token as the password. */
function basic(password: string, user = "admin"): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

function page(path: string, authorization: string | null = basic(READ_TOKEN), method = "GET"): Promise<Response> {
  return fetch(url(path), { method, headers: authorization === null ? {} : { Authorization: authorization } });
}

describe("the pages", () => {
  const hostileId = "b".repeat(32);

  beforeAll(async () => {
    expect((await send(bootEnvelope())).status).toBe(201);
    expect((await send(bootEnvelope({ machine: { machineId: hostileId, macs: [], hostname: "lab-66" }, report: hostileReport() }))).status).toBe(201);
  });

  test("the fleet with Basic (any user name, the read token as password): 200 HTML with the headers that keep scripts out", async () => {
    for (const user of ["admin", "", "ünïcødé"]) {
      const response = await page("/", basic(READ_TOKEN, user));
      expect(response.status).toBe(200);
      expect(Object.fromEntries(["content-type", "content-security-policy", "x-content-type-options", "referrer-policy", "x-frame-options", "cache-control"].map((name) => [name, response.headers.get(name)]))).toEqual({
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
        "cache-control": "no-store",
      });
      const text = await response.text();
      expect(text).toContain(`<a href="machines/${MACHINE_ID}">lab-01`);
      expect(text).toContain(`<a href="machines/${hostileId}">lab-66`);
      expect(text).not.toContain(HOSTILE);
      expect(text).not.toContain("<script");
    }
  });

  test("the read token as Bearer reads the pages too; HEAD answers as GET without a body", async () => {
    expect((await page("/", `Bearer ${READ_TOKEN}`)).status).toBe(200);
    const head = await page(`/machines/${MACHINE_ID}`, basic(READ_TOKEN), "HEAD");
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await head.text()).toBe("");
  });

  test("without the read token (none, the report token, a wrong password, a malformed header): 401 asking for Basic, nothing listed", async () => {
    const headers = [null, basic(REPORT_TOKEN), basic(`${READ_TOKEN}x`), `Bearer ${REPORT_TOKEN}`, "Basic !!!", `Basic ${Buffer.from(READ_TOKEN).toString("base64")}`, basic(READ_TOKEN).replace("Basic", "Digest")];
    for (const authorization of headers) {
      for (const path of ["/", `/machines/${MACHINE_ID}`, "/?notSeenHours=abc"]) {
        const response = await page(path, authorization);
        expect(response.status).toBe(401);
        expect(response.headers.get("www-authenticate")).toBe('Basic realm="fleet", charset="UTF-8"');
        expect(response.headers.get("content-security-policy")).toStartWith("default-src 'none'");
        const text = await response.text();
        expect(text).toContain("Cannot show the fleet: expected the read token as the password (any user name), got none or another");
        expect(text).not.toContain("lab-01");
      }
    }
  });

  test("the API still takes only Bearer: Basic with the read token there is 401", async () => {
    expect((await read(MACHINES_PATH, null)).status).toBe(401);
    expect((await fetch(url(MACHINES_PATH), { headers: { Authorization: basic(READ_TOKEN) } })).status).toBe(401);
  });

  test("a bad filter: 400 naming the parameter and what it expected, in the log too", async () => {
    const response = await page("/?notSeenHours=abc&health=%3Cb%3E");
    expect(response.status).toBe(400);
    const text = await response.text();
    expect(text).toContain("<li>parameter notSeenHours: expected a number of hours above 0, at most 87600, got &quot;abc&quot;</li>");
    expect(text).toContain("got &quot;&lt;b&gt;&quot;</li>");
    expect(log.at(-1)).toEndWith('(parameter notSeenHours: expected a number of hours above 0, at most 87600, got "abc")');
  });

  test("a bad page: 400 naming the parameter, what it expected and what came, in the log too; repeated, 400 too", async () => {
    for (const value of ["0", "-1", "1.5", "x", "99999999999999999999"]) {
      const response = await page(`/?version=2.0&page=${value}`);
      expect(response.status).toBe(400);
      const problem = `parameter page: expected a whole number of at least 1, at most 9007199254740991, got "${value}"`;
      expect(await response.text()).toContain(`<li>${problem.replaceAll('"', "&quot;")}</li>`);
      expect(log.at(-1)).toEndWith(`(${problem})`);
    }
    const twice = await page("/?page=1&page=1");
    expect(twice.status).toBe(400);
    expect(await twice.text()).toContain("<li>parameter page: expected it once, got it again</li>");
  });

  test("a page past the last: 200, no table, a link to the last page", async () => {
    const response = await page("/?version=2.0&page=2");
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).not.toContain('<table id="machines">');
    expect(text).toMatch(/No machines on page 2: the filter matches \d+ machines?, page 1\. <a href="\.\/\?version=2\.0">The last page<\/a>/);
  });

  test("a filter through the query string keeps only the machines that match", async () => {
    const text = await (await page("/?version=2.0")).text();
    expect(text).toContain("lab-01");
    expect(text).not.toContain("lab-66");
  });

  test("a machine's page: its history and its last boot report whole, escaped", async () => {
    const response = await page(`/machines/${hostileId}`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('<a href="../">← Fleet</a>');
    expect(text).toContain("&quot;outcome&quot;: &quot;outcome &lt;script&gt;alert(1)&lt;/script&gt;");
    expect(text).not.toContain(HOSTILE);
  });

  test("an unknown machine, a malformed id, an empty one: 404 page; another method: 405", async () => {
    for (const path of [`/machines/${"0".repeat(32)}`, "/machines/..%2F..%2Fetc", "/machines/%3Cscript%3E", "/machines/"]) {
      const response = await page(path);
      expect(response.status).toBe(404);
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
      const text = await response.text();
      expect(text).toContain("Cannot find machine");
      expect(text).not.toContain("<script>");
    }
    const post = await page("/", basic(READ_TOKEN), "POST");
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });
});

test("the same token for reports and reads is refused at start: every machine would read the fleet", () => {
  expect(() => startFleetServer({ store, tokens: { report: REPORT_TOKEN, read: REPORT_TOKEN }, port: 0, hostname: "127.0.0.1" })).toThrow(
    "Cannot start the fleet server: the report token and the read token are the same",
  );
});
