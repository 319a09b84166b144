// The fleet's reports in SQLite (fleet/sqlite-store.ts): stored and listed,
// the machine's row kept up to date, old reports trimmed, data kept across a
// restart, and a database of another schema refused.

import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Envelope, parseEnvelope } from "../../../controller/fleet/envelope.ts";
import { openSqliteStore } from "../../../controller/fleet/sqlite-store.ts";
import { type FleetStore, REPORTS_KEPT_PER_MACHINE } from "../../../controller/fleet/store.ts";
import { BOOT_REPORT, bootEnvelope, bytesOf, MACHINE_ID } from "../../fleet-envelopes.ts";

function envelope(changes: Record<string, unknown> = {}): Envelope {
  const parsed = parseEnvelope(bytesOf(bootEnvelope(changes)));
  if (!parsed.ok) throw new Error(parsed.problems.join("\n"));
  return parsed.envelope;
}

const MARK_GOOD = { kind: "mark-good", report: undefined, sentAt: "2026-12-06T10:05:00.000Z" };

let dir: string;
let path: string;
let store: FleetStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-store-"));
  path = join(dir, "fleet.sqlite");
  store = openSqliteStore(path);
});

afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe("openSqliteStore", () => {
  test("makes the database on first start, in WAL mode, empty", async () => {
    expect(await store.machines()).toEqual([]);
    expect(await store.machine(MACHINE_ID)).toBeUndefined();
    const db = new Database(path, { readonly: true });
    expect(db.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    expect(db.prepare("PRAGMA user_version").get()).toEqual({ user_version: 1 });
    db.close();
  });

  test("a boot report stored: the machine listed with its latest fields and boot, the report kept whole", async () => {
    const id = await store.add(envelope(), "2026-12-06T10:00:06.000Z");
    const machine = {
      machineId: MACHINE_ID,
      hostname: "lab-01",
      macs: ["52:54:00:12:34:56"],
      firstSeenAt: "2026-12-06T10:00:06.000Z",
      lastSeenAt: "2026-12-06T10:00:06.000Z",
      lastKind: "boot",
      lastBoot: { controllerVersion: "0.1.0", version: "2.0", slot: { label: "SYSFS", device: "/dev/vda1", role: "system" } },
      rollbacks: 0,
      reports: 1,
    };
    expect(await store.machines()).toMatchObject([machine]);
    expect(await store.machine(MACHINE_ID)).toMatchObject({
      machine,
      reports: [{ id, machineId: MACHINE_ID, kind: "boot", receivedAt: "2026-12-06T10:00:06.000Z", sentAt: "2026-12-06T10:00:05.000Z", hostname: "lab-01", macs: ["52:54:00:12:34:56"], report: BOOT_REPORT }],
    });
  });

  test("a later mark-good updates the machine's row but keeps its last boot; reports newest first", async () => {
    await store.add(envelope(), "2026-12-06T10:00:06.000Z");
    await store.add(envelope({ ...MARK_GOOD, machine: { machineId: MACHINE_ID, macs: [], hostname: "lab-01b" } }), "2026-12-06T10:05:01.000Z");
    const found = await store.machine(MACHINE_ID);
    expect(found?.machine).toMatchObject({ hostname: "lab-01b", macs: [], firstSeenAt: "2026-12-06T10:00:06.000Z", lastSeenAt: "2026-12-06T10:05:01.000Z", lastKind: "mark-good", lastBoot: { version: "2.0" }, reports: 2 });
    expect(found?.reports.map((report) => report.kind)).toEqual(["mark-good", "boot"]);
    expect(found?.reports[0]).not.toHaveProperty("report");
    expect(found?.machine.lastMarkGoodAt).toBe("2026-12-06T10:05:01.000Z");
  });

  test("the last mark-good kept through later boots; rollbacks counted as boot reports say them", async () => {
    const rolledBack = { ...BOOT_REPORT, decisions: ["rollback: SYSFS on /dev/vda1 is unhealthy; BACKUPFS on /dev/vda2 becomes SYSFS and boots"] };
    await store.add(envelope({ report: rolledBack }), "2026-12-06T10:00:06.000Z");
    expect((await store.machine(MACHINE_ID))?.machine).not.toHaveProperty("lastMarkGoodAt");
    await store.add(envelope(MARK_GOOD), "2026-12-06T10:05:01.000Z");
    await store.add(envelope(), "2026-12-06T11:00:06.000Z");
    await store.add(envelope({ report: rolledBack }), "2026-12-06T12:00:06.000Z");
    expect((await store.machine(MACHINE_ID))?.machine).toMatchObject({ lastMarkGoodAt: "2026-12-06T10:05:01.000Z", rollbacks: 2, lastKind: "boot" });
  });

  test("machines listed by machine-id, each with its own reports", async () => {
    const other = "f".repeat(32);
    await store.add(envelope({ machine: { machineId: other, macs: [], hostname: "lab-02" } }), "2026-12-06T10:00:07.000Z");
    await store.add(envelope(), "2026-12-06T10:00:08.000Z");
    expect((await store.machines()).map((machine) => [machine.machineId, machine.hostname, machine.reports])).toEqual([
      [MACHINE_ID, "lab-01", 1],
      [other, "lab-02", 1],
    ]);
  });

  test(`at most ${REPORTS_KEPT_PER_MACHINE} reports kept per machine, the newest`, async () => {
    const ids: number[] = [];
    for (let index = 0; index < REPORTS_KEPT_PER_MACHINE + 5; index++) {
      ids.push(await store.add(envelope(MARK_GOOD), new Date(Date.UTC(2026, 11, 6, 10, 0, index)).toISOString()));
    }
    const found = await store.machine(MACHINE_ID);
    expect(found?.machine.reports).toBe(REPORTS_KEPT_PER_MACHINE);
    expect(found?.reports.map((report) => report.id)).toEqual(ids.slice(5).reverse());
  });

  test("HTML in a field comes back as the same text", async () => {
    const html = '<script>alert("x")</script>';
    await store.add(envelope({ report: { outcome: html } }), "2026-12-06T10:00:06.000Z");
    expect((await store.machine(MACHINE_ID))?.reports[0]?.report).toEqual({ outcome: html });
    expect((await store.machines())[0]?.lastBoot).toEqual({ outcome: html });
  });

  test("a restart keeps every machine and report", async () => {
    await store.add(envelope(), "2026-12-06T10:00:06.000Z");
    const before = await store.machine(MACHINE_ID);
    await store.close();
    store = openSqliteStore(path);
    expect(await store.machine(MACHINE_ID)).toEqual(before);
  });

  test("a write that fails leaves nothing: the machine's row goes with its report", async () => {
    const db = new Database(path);
    db.exec("CREATE TRIGGER refuse BEFORE INSERT ON reports BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
    db.close();
    await expect(store.add(envelope(), "2026-12-06T10:00:06.000Z")).rejects.toThrow("refused by the test");
    expect(await store.machines()).toEqual([]);
  });

  test("a database of another schema version is refused with its path and both versions", async () => {
    const other = join(dir, "other.sqlite");
    const db = new Database(other);
    db.exec("PRAGMA user_version = 7");
    db.close();
    expect(() => openSqliteStore(other)).toThrow(`Cannot open the fleet database ${other}: its schema is version 7, expected 1 (this controller's); it was made by another controller`);
  });

  test("a path where no database can be made: an error naming it", async () => {
    const missing = join(dir, "no-such-folder", "fleet.sqlite");
    expect(() => openSqliteStore(missing)).toThrow(`Cannot open the fleet database ${missing}: `);
  });
});
