// The fleet's page in Debian's chromium (test/browser/fleet-browser.ts): a
// fleet server on 127.0.0.1 with a temporary database takes, over HTTP with
// the report token, the boot reports of whole boots of the fake lab machine
// (a version rolled out to half the fleet: one machine takes it, one waits; a
// rollback) and their mark-goods, and two hostile machines with HTML and
// script in every field of their reports. Signed in with the read token as a
// person would, the browser must show each machine's row as it is, run
// nothing a machine sent, filter through the form, show a machine's history
// and report as text, and fit a phone. A second server, with more machines
// than a page holds, is paged through its Next link. The screenshots go to
// build/.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runBoot } from "../../controller/boot/run-boot.ts";
import { MACHINES_PER_PAGE } from "../../controller/fleet/page/fleet-page.ts";
import { REPORTS_PATH, type FleetServer, startFleetServer } from "../../controller/fleet/server.ts";
import { openSqliteStore } from "../../controller/fleet/sqlite-store.ts";
import type { FleetStore } from "../../controller/fleet/store.ts";
import type { HealthRecord } from "../../controller/plans/slot-health.ts";
import { rolloutPlace } from "../../controller/update/rollout-place.ts";
import { connectToNetwork, labMachine } from "../fake-machine.ts";
import { installedSlot, PUBLIC_KEY, publish, SERVER } from "../fake-repo.ts";
import { bootEnvelope, envelope, HOSTILE, hostileReport, READ_TOKEN, REPORT_TOKEN } from "../fleet-envelopes.ts";
import { memoryLogger } from "../memory-log.ts";
import { type Chromium, launchChromium, openTab, PHONE, readTable, type Runnable, screenshot, scrollsSideways, scrollsWithin, seeFleet, seeMachine, visit } from "./fleet-browser.ts";

const BUILD = resolve(import.meta.dir, "../../build");
const GOOD: HealthRecord = { attempts: 0, markedGood: true, cleanShutdown: true };
const EXHAUSTED: HealthRecord = { attempts: 3, markedGood: false, cleanShutdown: false };

const [LOW, HIGH] = ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"].sort((a, b) => rolloutPlace(a, "2.0") - rolloutPlace(b, "2.0")) as [string, string];
/** 2.0's share: between the two machines' places, so the lower one takes it and the higher one waits */
const PERCENT = Math.round((rolloutPlace(LOW, "2.0") + rolloutPlace(HIGH, "2.0")) / 2);
const ROLLED_BACK = "c".repeat(32);
const HOSTILE_IDS = ["d".repeat(32), "e".repeat(32)];
/** the second hostile machine's text: control characters, unicode and a string far longer than a cell */
const ODD = `\u0000\u0007\u001b[31m ünï 𝕏 \u202e ${"<b>long</b>".repeat(100)}`;

/**
 * A whole boot of the fake lab machine running 1.0 (0.9 its backup), against a server publishing 2.0 to PERCENT % of the machines;
 * `servers` empty: a machine whose config.d names no update server.
 */
async function bootReport(machineId: string, sysfs: HealthRecord = GOOD, servers: readonly string[] = [SERVER]): Promise<Record<string, unknown>> {
  const fake = connectToNetwork(
    labMachine({
      bootext: { "config.d/60-update.toml": `[update]\nservers = ${JSON.stringify(servers)}\ntrusted_keys = ["${PUBLIC_KEY}"]\n`, "machine-id": `${machineId}\n` },
      slots: { SYSFS: installedSlot({ version: "1.0" }, sysfs), BACKUPFS: installedSlot({ version: "0.9" }, GOOD) },
    }),
  );
  publish(fake, { version: "2.0", rolloutPercent: PERCENT });
  const { report } = await runBoot(fake, memoryLogger().log);
  return JSON.parse(JSON.stringify(report)) as Record<string, unknown>;
}

let dir: string;
let store: FleetStore;
let server: FleetServer;
let chromium: Chromium;
const sent = new Map<string, Record<string, unknown>>();

async function post(envelope: Record<string, unknown>): Promise<void> {
  const response = await fetch(new URL(REPORTS_PATH.slice(1), server.url), {
    method: "POST",
    headers: { Authorization: `Bearer ${REPORT_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(envelope),
  });
  if (response.status !== 201) throw new Error(`Cannot post the report: expected 201, got ${response.status}: ${await response.text()}`);
}

async function reportBoot(machineId: string, hostname: string, report: Record<string, unknown>): Promise<void> {
  sent.set(machineId, report);
  await post(bootEnvelope({ machine: { machineId, macs: ["52:54:00:12:34:56"], hostname }, sentAt: new Date().toISOString(), report }));
}

async function reportMarkGood(machineId: string, hostname: string): Promise<void> {
  const { report: _none, ...markGood } = bootEnvelope({ kind: "mark-good", machine: { machineId, macs: [], hostname }, sentAt: new Date().toISOString() });
  await post(markGood);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-browser-"));
  store = openSqliteStore(join(dir, "fleet.sqlite"));
  server = startFleetServer({ store, tokens: { report: REPORT_TOKEN, read: READ_TOKEN }, port: 0, hostname: "127.0.0.1" });
  const started = performance.now();
  chromium = await launchChromium();
  console.log(`chromium started in ${Math.round(performance.now() - started)} ms`);
  await reportBoot(LOW, "lab-01", await bootReport(LOW));
  await reportMarkGood(LOW, "lab-01");
  await reportBoot(HIGH, "lab-02", await bootReport(HIGH));
  await reportMarkGood(HIGH, "lab-02");
  await reportBoot(ROLLED_BACK, "lab-03", await bootReport(ROLLED_BACK, EXHAUSTED, []));
  await reportBoot(HOSTILE_IDS[0] as string, "lab-66", hostileReport());
  await reportBoot(HOSTILE_IDS[1] as string, "lab-67", hostileReport(ODD));
}, 30_000);

afterAll(async () => {
  await chromium?.close();
  await server?.stop();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The machines' rows by hostname (the first line of the Machine column). */
function byHostname(rows: readonly Record<string, string>[]): Map<string, Record<string, string>> {
  return new Map(rows.map((row) => [row["Machine"]?.split("\n")[0] ?? "", row]));
}

describe("the fleet's page in chromium", () => {
  test("each machine's row as a person reads it: version, health word, update decision", async () => {
    const seen = await seeFleet(chromium.browser, server.url, READ_TOKEN, { screenshotPath: join(BUILD, "fleet-page.png") });
    const rows = byHostname(seen.machines);
    expect([...rows.keys()].sort()).toEqual(["lab-01", "lab-02", "lab-03", "lab-66", "lab-67"]);
    expect(rows.get("lab-01")).toMatchObject({ Version: "2.0", Slot: "SYSFS\n/dev/vda2", Health: "good", Rollbacks: "0" });
    expect(rows.get("lab-01")?.["Update check"]).toStartWith(`install\n${SERVER} publishes version 2.0 (installed: 1.0)`);
    expect(rows.get("lab-02")).toMatchObject({ Version: "1.0", Health: "good" });
    expect(rows.get("lab-02")?.["Update check"]).toStartWith("not-in-rollout\n");
    expect(rows.get("lab-03")).toMatchObject({ Version: "0.9", Health: "rolled back", Rollbacks: "1", "Marked good": "never" });
    expect(rows.get("lab-03")?.["Update check"]).toStartWith("not-configured\n");
    expect(rows.get("lab-66")).toMatchObject({ Version: `version ${HOSTILE}`, Health: "rolled back", "Update check": `decision ${HOSTILE.slice(0, 31)}…\nreason ${HOSTILE}` });
    expect(rows.get("lab-67")?.["Version"]).toBe(`version ${ODD}`.slice(0, 120).replace(/[\u0000-\u0008\u001b\u202e]/g, "\ufffd") + "…");
    for (const row of rows.values()) expect(row["Last seen"]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC \(just now\)$/);

    expect(seen.versions.filter((row) => ["2.0", "1.0", "0.9"].includes(row["Version booted"] ?? ""))).toEqual([
      { "Version booted": "2.0", Machines: "1", Good: "1", "Rolled back": "0" },
      { "Version booted": "1.0", Machines: "1", Good: "1", "Rolled back": "0" },
      { "Version booted": "0.9", Machines: "1", Good: "0", "Rolled back": "1" },
    ]);
    expect(seen.rollouts.find((row) => row["Version offered"] === "2.0")).toEqual({
      "Version offered": "2.0",
      Share: `${PERCENT} %`,
      "Running it": "1 of 2",
      Installing: "0",
      "Not in rollout": "1",
      "Outside window": "0",
    });
    expect(seen.dialogs).toEqual([]);
  }, 30_000);

  test("nothing a machine sent runs: no script, no handler attribute, nothing loaded, no javascript: link, no dialog", async () => {
    const pages: { runnable: Runnable; dialogs: string[] }[] = [await seeFleet(chromium.browser, server.url, READ_TOKEN)];
    for (const id of HOSTILE_IDS) pages.push(await seeMachine(chromium.browser, server.url, READ_TOKEN, id));
    for (const { runnable, dialogs } of pages) {
      expect(runnable).toEqual({ scripts: 0, handlers: [], loaders: [], javascriptLinks: [] });
      expect(dialogs).toEqual([]);
    }
  }, 30_000);

  test("the filters work through the form: version 1.0 shows only the machines that booted it", async () => {
    const tab = await openTab(chromium.browser, READ_TOKEN);
    await visit(tab, server.url);
    await tab.page.select("select[name=version]", "1.0");
    await Promise.all([tab.page.waitForNavigation(), tab.page.click("button[type=submit]")]);
    expect(new URL(tab.page.url()).searchParams.get("version")).toBe("1.0");
    expect([...byHostname(await readTable(tab.page, "#machines")).keys()]).toEqual(["lab-02"]);
    await tab.page.select("select[name=health]", "rolled back");
    await tab.page.select("select[name=version]", "");
    await Promise.all([tab.page.waitForNavigation(), tab.page.click("button[type=submit]")]);
    expect([...byHostname(await readTable(tab.page, "#machines")).keys()].sort()).toEqual(["lab-03", "lab-66", "lab-67"]);
  }, 30_000);

  test("a bad filter in the address: the page says which parameter and what it expected", async () => {
    const tab = await openTab(chromium.browser, READ_TOKEN);
    const response = await tab.page.goto(new URL("?notSeenHours=abc", server.url).href);
    expect(response?.status()).toBe(400);
    expect(await tab.page.$eval("li", (item: { innerText: string }) => item.innerText)).toBe('parameter notSeenHours: expected a number of hours above 0, at most 87600, got "abc"');
  }, 30_000);

  test("a machine's page, reached by its link: its history, newest first, and its last boot report as text", async () => {
    const tab = await openTab(chromium.browser, READ_TOKEN);
    await visit(tab, server.url);
    await Promise.all([tab.page.waitForNavigation(), tab.page.click(`a[href="machines/${LOW}"]`)]);
    expect(await tab.page.$eval("h1", (heading: { innerText: string }) => heading.innerText)).toBe("lab-01");
    expect((await readTable(tab.page, "#history")).map((row) => [row["Kind"], row["Version"]])).toEqual([
      ["mark-good", ""],
      ["boot", "2.0"],
    ]);
    const report = await tab.page.$eval("#report", (pre: { innerText: string }) => pre.innerText);
    expect(JSON.parse(report)).toEqual(sent.get(LOW));

    const hostile = await seeMachine(chromium.browser, server.url, READ_TOKEN, HOSTILE_IDS[0] as string, join(BUILD, "fleet-machine-page.png"));
    expect(hostile).toMatchObject({ hostname: "lab-66", report: hostileReport() });
    expect(hostile.facts).toMatchObject({ Health: "rolled back", "Version booted": `version ${HOSTILE}`, Rollback: `rollback: ${HOSTILE}`, "Reports kept": "1" });
    expect(hostile.history.map((row) => row["Kind"])).toEqual(["boot"]);
  }, 30_000);

  test("on a phone (390 × 844): the page does not scroll sideways, the machines' table scrolls in its box", async () => {
    const tab = await openTab(chromium.browser, READ_TOKEN, PHONE);
    await visit(tab, server.url);
    expect(await scrollsSideways(tab.page)).toBe(false);
    expect(await scrollsWithin(tab.page, ".scroll:has(#machines)")).toBe(true);
    await screenshot(tab.page, join(BUILD, "fleet-page-phone.png"));
    await visit(tab, new URL(`machines/${HOSTILE_IDS[1]}`, server.url).href);
    expect(await scrollsSideways(tab.page)).toBe(false);
  }, 30_000);
});

describe("more machines than a page holds, in chromium", () => {
  const MACHINES = MACHINES_PER_PAGE + 5;
  let pagedDir: string;
  let pagedStore: FleetStore;
  let pagedServer: FleetServer;

  beforeAll(async () => {
    pagedDir = await mkdtemp(join(tmpdir(), "fleet-browser-paged-"));
    pagedStore = openSqliteStore(join(pagedDir, "fleet.sqlite"));
    pagedServer = startFleetServer({ store: pagedStore, tokens: { report: REPORT_TOKEN, read: READ_TOKEN }, port: 0, hostname: "127.0.0.1" });
    // straight through the store: the paging is what is tested, not taking reports; machine-ids in the hostnames' order
    for (let index = 0; index < MACHINES; index++) {
      const machine = { machineId: index.toString(16).padStart(32, "0"), macs: [], hostname: `node-${index}` };
      await pagedStore.add(envelope({ machine }), new Date().toISOString());
    }
  }, 30_000);

  afterAll(async () => {
    await pagedServer?.stop();
    await pagedStore?.close();
    await rm(pagedDir, { recursive: true, force: true });
  });

  test("Next → leads to page 2, which shows the rest with the filter kept; it fits a phone", async () => {
    const tab = await openTab(chromium.browser, READ_TOKEN);
    await visit(tab, new URL("?rolledBack=no", pagedServer.url).href);
    expect(await readTable(tab.page, "#machines")).toHaveLength(MACHINES_PER_PAGE);
    await Promise.all([tab.page.waitForNavigation(), tab.page.click("nav.pages a::-p-text(Next →)")]);
    expect(Object.fromEntries(new URL(tab.page.url()).searchParams)).toEqual({ rolledBack: "no", page: "2" });
    expect([...byHostname(await readTable(tab.page, "#machines")).keys()]).toEqual(["node-200", "node-201", "node-202", "node-203", "node-204"]);

    const phone = await openTab(chromium.browser, READ_TOKEN, PHONE);
    await visit(phone, tab.page.url());
    expect(await scrollsSideways(phone.page)).toBe(false);
    await screenshot(phone.page, join(BUILD, "fleet-page-paged-phone.png"));
  }, 30_000);
});
