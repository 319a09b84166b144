// The fleet server at scale (issue 17, item 5): 1000 machines, each with its
// own machine-id, POSTing a boot report all at once, for a few rounds,
// against `controller fleet-server` (run from source by bun, as its own
// process) with the SQLite store and with the Postgres store (a throw-away
// server of Debian's postgresql, test/postgres-cluster.ts, fsync off).
// Figures: reports per second (201s over the round's wall time), p50 and p99
// latency, errors (any status but 201, and network errors). Each report is
// a real boot report of the fake lab machine (test/fake-machine.ts) and goes
// over a connection of its own, as each machine opens its own.
//
// Then the store is filled to 1000 machines and 100 000 reports, straight
// through the store rather than HTTP (100 per machine: exactly what the store
// keeps, REPORTS_KEPT_PER_MACHINE), and the page's load time is measured:
// the fleet's page (GET /, its first page: the table's first
// MACHINES_PER_PAGE machines, 200 of the 1000, while the counts above it
// still go over all) and one machine's (GET /machines/ID), and what a program
// reads: GET /api/machines and GET /api/machines/ID. Other paths can be given
// as arguments: `bun bench/fleet.ts /api/machines "/?page=5"`.
//
// Listing 1000 machines once counted each one's reports (a subquery over
// the 100 000); the machine's row now keeps the count. Both queries are timed
// side by side, straight on each database, on the same filled tables.
//
// BENCH_FLEET_ROUNDS=N changes the number of rounds (default 3).

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Database as SqliteDatabase } from "bun:sqlite";
import { SQL, spawn, type Subprocess } from "bun";
import { runBoot } from "../controller/boot/run-boot.ts";
import { MACHINES_PER_PAGE } from "../controller/fleet/page/fleet-page.ts";
import { openPostgresStore, POOL_SIZE } from "../controller/fleet/postgres-store.ts";
import { openSqliteStore } from "../controller/fleet/sqlite-store.ts";
import { type FleetStore, REPORTS_KEPT_PER_MACHINE } from "../controller/fleet/store.ts";
import { MACHINE_COLUMNS } from "../controller/fleet/store-rows.ts";
import type { HealthRecord } from "../controller/plans/slot-health.ts";
import { labMachine } from "../test/fake-machine.ts";
import { installedSlot, PUBLIC_KEY } from "../test/fake-repo.ts";
import { BOOT_REPORT, envelope, READ_TOKEN, REPORT_TOKEN } from "../test/fleet-envelopes.ts";
import { memoryLogger } from "../test/memory-log.ts";
import { CLUSTER_PASSWORD, startPostgresCluster } from "../test/postgres-cluster.ts";
import { openTab, withChromium } from "../test/browser/fleet-browser.ts";
import { fixed, freePort, median, percentile, progress, runsFrom, table } from "./lib.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");
const MAIN = join(REPO_ROOT, "controller/main.ts");
const MACHINES = 1000;
const ROUNDS = runsFrom(process.env["BENCH_FLEET_ROUNDS"], 3);
/** GETs of each page path, one after another */
const PAGE_LOADS = 10;
/** Loads of the fleet's page in chromium, as a person opens it, after one untimed. */
const BROWSER_LOADS = 5;
/**
 * Untimed GETs of each path first: the Postgres store opens its pool's
 * connections as requests come, each with a SCRAM login and its statements
 * prepared again, which a page loaded on a running server does not pay. The
 * first of them is shown as the cold load.
 */
const WARM_UP_LOADS = POOL_SIZE;
/** store.add calls at once while filling: Postgres takes them over its pool, SQLite one after another anyway */
const FILL_CONCURRENCY = 50;
/** the pages, then the JSON they are made from; each machine path gets the first machine's id; "/" is the fleet's first page */
const DEFAULT_PATHS = ["/", "/machines/", "/api/machines", "/api/machines/"];
/** each listing query's runs, alternating */
const LISTINGS = 20;

/** The listing as schema version 1 made it: each machine's reports counted as it is listed. */
const COUNTED_LISTING = `SELECT machine_id, hostname, macs, first_seen_at, last_seen_at, last_kind, last_boot, last_mark_good_at, rollbacks,
  CAST((SELECT COUNT(*) FROM reports WHERE reports.machine_id = machines.machine_id) AS integer) AS counted FROM machines ORDER BY machine_id`;
/** The listing as the stores make it now, the count kept in the machine's row. */
const KEPT_LISTING = `SELECT ${MACHINE_COLUMNS} FROM machines ORDER BY machine_id`;

// Bun's fetch sends at most 256 requests at once unless told otherwise: the
// bench runs itself again with room for all 1000, so they really are at once
if (process.env["BUN_CONFIG_MAX_HTTP_REQUESTS"] === undefined) {
  const child = spawn([process.execPath, import.meta.path, ...process.argv.slice(2)], {
    env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: String(MACHINES * 2) },
    stdio: ["inherit", "inherit", "inherit"],
  });
  process.exit(await child.exited);
}

const GOOD: HealthRecord = { attempts: 0, markedGood: true, cleanShutdown: true };

/** A whole boot of the fake lab machine: the report a real controller would send. */
async function realBootReport(): Promise<Record<string, unknown>> {
  const fake = labMachine({
    bootext: { "config.d/60-update.toml": `[update]\ntrusted_keys = ["${PUBLIC_KEY}"]\n` },
    slots: { SYSFS: installedSlot({ version: "2.0" }, { ...GOOD, attempts: 1 }), BACKUPFS: installedSlot({ version: "1.0" }, GOOD) },
  });
  const { report } = await runBoot(fake, memoryLogger().log);
  return JSON.parse(JSON.stringify(report)) as Record<string, unknown>;
}

function machineId(index: number): string {
  return index.toString(16).padStart(32, "0");
}

function reportBody(index: number, report: Record<string, unknown>): string {
  const mac = `52:54:00:${[index >> 16, (index >> 8) & 0xff, index & 0xff].map((byte) => byte.toString(16).padStart(2, "0")).join(":")}`;
  return JSON.stringify({ format: 1, kind: "boot", machine: { machineId: machineId(index), macs: [mac], hostname: `node-${index}` }, sentAt: new Date().toISOString(), report });
}

interface Server {
  readonly url: string;
  readonly process: Subprocess;
}

async function startServer(dir: string, db: string, env: Record<string, string>): Promise<Server> {
  const port = await freePort();
  const command = [process.execPath, MAIN, "fleet-server", "--db", db, "--port", String(port), "--report-token-file", join(dir, "report.token"), "--read-token-file", join(dir, "read.token")];
  const child = spawn(command, { stdout: Bun.file(join(dir, "access.log")), stderr: "inherit", env: { ...process.env, ...env } });
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`Cannot start the fleet server: ${command.join(" ")} exited with status ${child.exitCode}`);
    try {
      await fetch(`${url}/api/machines`);
      return { url, process: child };
    } catch {
      await Bun.sleep(50);
    }
  }
  throw new Error(`Cannot start the fleet server: ${command.join(" ")} did not answer within 10 s`);
}

async function stopServer(server: Server): Promise<void> {
  server.process.kill("SIGTERM");
  await server.process.exited;
}

interface Round {
  readonly wallMs: number;
  readonly latenciesMs: number[];
  readonly taken: number;
  readonly errors: number;
}

/** Every machine POSTs its report at once, each over a connection of its own. */
async function reportRound(url: string, bodies: readonly string[]): Promise<Round> {
  const began = performance.now();
  const results = await Promise.all(
    bodies.map(async (body) => {
      const sent = performance.now();
      try {
        const response = await fetch(`${url}/api/reports`, {
          method: "POST",
          headers: { Authorization: `Bearer ${REPORT_TOKEN}`, "Content-Type": "application/json" },
          body,
          keepalive: false,
        });
        await response.arrayBuffer();
        return { ok: response.status === 201, ms: performance.now() - sent };
      } catch {
        return { ok: false, ms: performance.now() - sent };
      }
    }),
  );
  const wallMs = performance.now() - began;
  const taken = results.filter((result) => result.ok).length;
  return { wallMs, latenciesMs: results.map((result) => result.ms), taken, errors: results.length - taken };
}

/** Each machine's kept reports made up to REPORTS_KEPT_PER_MACHINE, straight through the store. */
async function fill(store: FleetStore): Promise<number> {
  const began = performance.now();
  const adds: (() => Promise<number>)[] = [];
  for (let round = 0; round < REPORTS_KEPT_PER_MACHINE; round++) {
    for (let index = 0; index < MACHINES; index++) {
      const changes = { machine: { machineId: machineId(index), macs: [], hostname: `node-${index}` }, report: BOOT_REPORT };
      adds.push(() => store.add(envelope(changes), new Date().toISOString()));
    }
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: FILL_CONCURRENCY }, async () => {
      while (next < adds.length) await adds[next++]?.();
    }),
  );
  return performance.now() - began;
}

interface PageLoad {
  readonly path: string;
  readonly status: number;
  readonly bytes: number;
  readonly coldMs: number;
  readonly ms: number[];
}

async function loadPage(url: string): Promise<{ status: number; bytes: number; ms: number }> {
  const began = performance.now();
  const response = await fetch(url, { headers: { Authorization: `Bearer ${READ_TOKEN}` } });
  const bytes = (await response.arrayBuffer()).byteLength;
  return { status: response.status, bytes, ms: performance.now() - began };
}

async function loadPages(url: string, paths: readonly string[]): Promise<PageLoad[]> {
  const loads: PageLoad[] = [];
  for (const path of paths) {
    const warmUps: number[] = [];
    for (let load = 0; load < WARM_UP_LOADS; load++) warmUps.push((await loadPage(`${url}${path}`)).ms);
    const timed = [];
    for (let load = 0; load < PAGE_LOADS; load++) timed.push(await loadPage(`${url}${path}`));
    const last = timed[timed.length - 1];
    loads.push({ path, status: last?.status ?? 0, bytes: last?.bytes ?? 0, coldMs: warmUps[0] ?? 0, ms: timed.map((load) => load.ms) });
  }
  return loads;
}

/**
 * The fleet's first page opened in Debian's chromium, signed in as a person is:
 * from the navigation's start to its load event (the whole HTML parsed and laid
 * out) and to the first contentful paint, by the browser's own timings.
 */
async function loadInChromium(url: string): Promise<{ load: number[]; paint: number[] }> {
  return withChromium(async (browser) => {
    const tab = await openTab(browser, READ_TOKEN);
    const load: number[] = [];
    const paint: number[] = [];
    for (let index = 0; index <= BROWSER_LOADS; index++) {
      // a fresh navigation each time, not the cache's copy (the page says no-store)
      await tab.page.goto(url, { waitUntil: "load" });
      // the first paint may come after the load event (a small page loads before it is painted):
      // its entry is waited for, up to 5 s
      const timing = (await tab.page.evaluate(`(async () => {
        const navigation = performance.getEntriesByType("navigation")[0];
        const paint = await new Promise((resolve) => {
          const observer = new PerformanceObserver((list) => {
            const entry = list.getEntriesByName("first-contentful-paint")[0];
            if (entry !== undefined) resolve(entry.startTime);
          });
          observer.observe({ type: "paint", buffered: true });
          setTimeout(() => resolve(-1), 5000);
        });
        return { load: navigation.loadEventEnd - navigation.startTime, paint };
      })()`)) as { load: number; paint: number };
      if (index === 0) continue;
      load.push(timing.load);
      if (timing.paint >= 0) paint.push(timing.paint);
    }
    return { load, paint };
  });
}

/** Both listing queries, alternating, straight on the database: milliseconds of each run. */
async function timeListings(query: (text: string) => Promise<unknown>): Promise<{ counted: number[]; kept: number[] }> {
  const counted: number[] = [];
  const kept: number[] = [];
  for (let run = 0; run < LISTINGS; run++) {
    for (const [text, times] of [[COUNTED_LISTING, counted], [KEPT_LISTING, kept]] as const) {
      const began = performance.now();
      await query(text);
      times.push(performance.now() - began);
    }
  }
  return { counted, kept };
}

interface Measured {
  readonly store: string;
  readonly listings: { counted: number[]; kept: number[] };
  readonly rounds: Round[];
  readonly fillMs: number;
  readonly machines: number;
  readonly reports: number;
  readonly pages: PageLoad[];
  /** the fleet's page in chromium: navigation start to the load event, then to the first paint, ms */
  readonly browser: { load: number[]; paint: number[] };
}

interface Database {
  readonly name: string;
  /** --db for the server */
  readonly db: string;
  readonly env: Record<string, string>;
  open(): Promise<FleetStore>;
  /** A query function straight on the database, and what closes it. */
  openQueries(): Promise<{ query: (text: string) => Promise<unknown>; close: () => Promise<void> }>;
}

async function measure(dir: string, database: Database, bodies: readonly string[], paths: readonly string[]): Promise<Measured> {
  let server = await startServer(dir, database.db, database.env);
  const rounds: Round[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      progress(`${database.name}: round ${round} of ${ROUNDS}, ${MACHINES} reports at once`);
      rounds.push(await reportRound(server.url, bodies));
    }
  } finally {
    await stopServer(server);
  }
  progress(`${database.name}: filling to ${MACHINES} machines and ${MACHINES * REPORTS_KEPT_PER_MACHINE} reports`);
  const store = await database.open();
  let fillMs: number;
  let machines: number;
  let reports: number;
  try {
    fillMs = await fill(store);
    const listed = await store.machines();
    machines = listed.length;
    reports = listed.reduce((sum, machine) => sum + machine.reports, 0);
  } finally {
    await store.close();
  }
  progress(`${database.name}: the listing counted and kept, side by side`);
  const queries = await database.openQueries();
  const listings = await timeListings(queries.query).finally(queries.close);
  server = await startServer(dir, database.db, database.env);
  try {
    progress(`${database.name}: loading ${paths.join(", ")}`);
    const pages = await loadPages(server.url, paths);
    progress(`${database.name}: the fleet's page in chromium, ${BROWSER_LOADS} loads`);
    return { store: database.name, rounds, listings, fillMs, machines, reports, pages, browser: await loadInChromium(server.url) };
  } finally {
    await stopServer(server);
  }
}

function ms(value: number): string {
  return fixed(value, value < 10 ? 1 : 0);
}

function section(measured: readonly Measured[], reportBytes: number, wallSeconds: number): string {
  const roundRows = measured.flatMap((result) =>
    result.rounds.map((round, index) => [
      result.store,
      String(index + 1),
      String(round.taken),
      String(round.errors),
      fixed((round.taken / round.wallMs) * 1000, 0),
      ms(percentile(round.latenciesMs, 50)),
      ms(percentile(round.latenciesMs, 99)),
      ms(round.wallMs),
    ]),
  );
  const pageRows = measured.flatMap((result) =>
    result.pages.map((page) => [result.store, `GET ${page.path}`, String(page.status), String(page.bytes), ms(page.coldMs), ms(median(page.ms)), ms(Math.max(...page.ms))]),
  );
  const browserRows = measured.map(({ store, browser }) => [store, ms(median(browser.load)), ms(Math.max(...browser.load)), browser.paint.length === 0 ? "-" : ms(median(browser.paint))]);
  const listingRows = measured.map(({ store, listings }) => [store, ms(median(listings.counted)), ms(median(listings.kept)), ms(Math.max(...listings.counted)), ms(Math.max(...listings.kept))]);
  const fillRows = measured.map((result) => [result.store, String(result.machines), String(result.reports), fixed(result.fillMs / 1000, 1), fixed((MACHINES * REPORTS_KEPT_PER_MACHINE) / (result.fillMs / 1000), 0)]);
  return [
    "## Fleet server at scale",
    "",
    `${MACHINES} machines, each with its own machine-id, POST a boot report all at once (a real report of the fake lab machine, ${reportBytes} bytes of envelope), each over a connection of its own, ${ROUNDS} rounds, against \`controller fleet-server\` run from source by bun on 127.0.0.1 with the SQLite store (a file in ${tmpdir()}) and with the Postgres store (Debian's postgresql 15, a throw-away server on 127.0.0.1, durable as SQLite is: fsync and synchronous_commit on, its defaults; the store's pool of 10 connections). Reports/s is the round's 201 answers over its wall time; errors are any other status and network errors. The load generator (bun's fetch) shares the machine's cores with the server and the database.`,
    "",
    table(["store", "round", "taken (201)", "errors", "reports/s", "p50 (ms)", "p99 (ms)", "round's wall time (ms)"], roundRows),
    "",
    `Then each store filled straight through the store (not HTTP; ${FILL_CONCURRENCY} adds at once, a small boot report each) to ${MACHINES} machines with ${REPORTS_KEPT_PER_MACHINE} reports each, what the store keeps at most:`,
    "",
    table(["store", "machines", "reports kept", "fill (s)", "adds/s"], fillRows),
    "",
    `The page's load time with them, the server just started (\`GET /\` is the fleet's first page: its table holds the first ${MACHINES_PER_PAGE} of the ${MACHINES} machines, the counts above it all of them): each path fetched ${WARM_UP_LOADS} times untimed (the first of them is the cold load: Postgres's pool opens its connections as requests come), then ${PAGE_LOADS} times one after another, with the read token (as Bearer, which the pages take as well as Basic):`,
    "",
    table(["store", "request", "status", "bytes", "cold (ms)", "median (ms)", "max (ms)"], pageRows),
    "",
    `The fleet's first page as a person opens it, in Debian's chromium (headless, 1280×900, signed in with Basic), loaded ${BROWSER_LOADS} times after one untimed: from the navigation's start to the load event (the HTML fetched, parsed and laid out) and to the first contentful paint, by the browser's own timings:`,
    "",
    table(["store", "to load (ms, median)", "to load (ms, max)", "first paint (ms, median)"], browserRows),
    "",
    `The listing's query straight on each database with those tables, ${LISTINGS} runs of each, alternating: as schema version 1 made it, counting each machine's reports as it lists them, and as the stores make it now, with the count kept in the machine's row:`,
    "",
    table(["store", "counted (ms, median)", "kept (ms, median)", "counted (ms, max)", "kept (ms, max)"], listingRows),
    "",
    `The whole run took ${fixed(wallSeconds, 0)} s.`,
  ].join("\n");
}

async function main(): Promise<void> {
  const began = performance.now();
  const paths = process.argv.length > 2 ? process.argv.slice(2) : DEFAULT_PATHS.map((path) => (path.endsWith("/machines/") ? `${path}${machineId(0)}` : path));
  const report = await realBootReport();
  const bodies = Array.from({ length: MACHINES }, (_, index) => reportBody(index, report));
  const dir = await mkdtemp(join(tmpdir(), "bench-fleet-"));
  await writeFile(join(dir, "report.token"), `${REPORT_TOKEN}\n`, { mode: 0o600 });
  await writeFile(join(dir, "read.token"), `${READ_TOKEN}\n`, { mode: 0o600 });
  const cluster = await startPostgresCluster({ durable: true });
  try {
    const sqlitePath = join(dir, "fleet.sqlite");
    const postgresUrl = await cluster.createDatabase("fleet");
    const withoutPassword = cluster.url("fleet", "");
    const databases: Database[] = [
      {
        name: "SQLite",
        db: sqlitePath,
        env: {},
        open: async () => openSqliteStore(sqlitePath),
        openQueries: async () => {
          const db = new SqliteDatabase(sqlitePath, { readonly: true });
          return { query: async (text) => db.prepare(text).all(), close: async () => db.close() };
        },
      },
      {
        name: "Postgres",
        db: withoutPassword,
        env: { PGPASSWORD: CLUSTER_PASSWORD },
        open: () => openPostgresStore(postgresUrl),
        openQueries: async () => {
          const sql = new SQL(postgresUrl, { max: 1 });
          return { query: (text) => sql.unsafe(text), close: () => sql.close() };
        },
      },
    ];
    const measured: Measured[] = [];
    for (const database of databases) measured.push(await measure(dir, database, bodies, paths));
    process.stdout.write(`${section(measured, new TextEncoder().encode(bodies[0]).length, (performance.now() - began) / 1000)}\n`);
  } finally {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
