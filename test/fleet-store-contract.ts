// What every FleetStore must do, whichever database holds the reports: one
// suite, run against the SQLite store (test/unit/fleet/sqlite-store.test.ts)
// and the Postgres store (test/postgres/postgres-store.test.ts). Stored and
// listed, the machine's row kept up to date, old reports trimmed, data kept
// across a restart, a failed write leaving nothing, reports of one machine
// and of many at once all kept.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { type FleetStore, REPORTS_KEPT_PER_MACHINE } from "../controller/fleet/store.ts";
import { BOOT_REPORT, envelope, MACHINE_ID } from "./fleet-envelopes.ts";

const MARK_GOOD = { kind: "mark-good", report: undefined, sentAt: "2026-12-06T10:05:00.000Z" };

/** A store of the kind under test, open on a fresh, empty database. */
export interface StoreUnderTest {
  readonly store: FleetStore;
  /** Opens the same database again (the store given was closed first). */
  reopen(): Promise<FleetStore>;
  /** Makes the database refuse every new report with "refused by the test", behind the store's back. */
  refuseReports(): Promise<void>;
  /** Removes the database; the store is closed by then. */
  remove(): Promise<void>;
}

export function describeFleetStore(name: string, open: () => Promise<StoreUnderTest>): void {
  describe(`${name}: what every fleet store does`, () => {
    let under: StoreUnderTest;
    let store: FleetStore;

    beforeEach(async () => {
      under = await open();
      store = under.store;
    });

    afterEach(async () => {
      await store.close();
      await under.remove();
    });

    test("an empty database lists no machines and finds none", async () => {
      expect(await store.machines()).toEqual([]);
      expect(await store.machine(MACHINE_ID)).toBeUndefined();
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
      expect(typeof id).toBe("number");
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

    test("the last boot's and the last mark-good's times kept through later reports of other kinds; rollbacks counted as boot reports say them", async () => {
      const rolledBack = { ...BOOT_REPORT, decisions: ["rollback: SYSFS on /dev/vda1 is unhealthy; BACKUPFS on /dev/vda2 becomes SYSFS and boots"] };
      await store.add(envelope({ report: rolledBack }), "2026-12-06T10:00:06.000Z");
      expect((await store.machine(MACHINE_ID))?.machine).not.toHaveProperty("lastMarkGoodAt");
      await store.add(envelope(MARK_GOOD), "2026-12-06T10:05:01.000Z");
      await store.add(envelope(), "2026-12-06T11:00:06.000Z");
      expect((await store.machine(MACHINE_ID))?.machine).toMatchObject({ lastBootAt: "2026-12-06T11:00:06.000Z", lastMarkGoodAt: "2026-12-06T10:05:01.000Z" });
      await store.add(envelope({ report: rolledBack }), "2026-12-06T12:00:06.000Z");
      await store.add(envelope({ kind: "mark-shutdown", report: undefined }), "2026-12-06T12:30:00.000Z");
      expect((await store.machine(MACHINE_ID))?.machine).toMatchObject({ lastBootAt: "2026-12-06T12:00:06.000Z", lastMarkGoodAt: "2026-12-06T10:05:01.000Z", rollbacks: 2, lastKind: "mark-shutdown" });
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

    test(`${REPORTS_KEPT_PER_MACHINE + 20} reports of one machine at once: every one taken, its row counts them, the newest ${REPORTS_KEPT_PER_MACHINE} kept`, async () => {
      const rolledBack = { ...BOOT_REPORT, decisions: ["rollback: SYSFS on /dev/vda1 is unhealthy; BACKUPFS on /dev/vda2 becomes SYSFS and boots"] };
      const count = REPORTS_KEPT_PER_MACHINE + 20;
      const ids = await Promise.all(Array.from({ length: count }, () => store.add(envelope({ report: rolledBack }), "2026-12-06T10:00:06.000Z")));
      expect(new Set(ids).size).toBe(count);
      const found = await store.machine(MACHINE_ID);
      expect(found?.machine).toMatchObject({ rollbacks: count, reports: REPORTS_KEPT_PER_MACHINE });
      expect(found?.reports.map((report) => report.id)).toEqual([...ids].sort((a, b) => b - a).slice(0, REPORTS_KEPT_PER_MACHINE));
    });

    test("200 machines reporting at once, each twice: all listed, in machine-id order, with 2 reports each", async () => {
      const machineIds = Array.from({ length: 200 }, (_, index) => index.toString(16).padStart(32, "0"));
      const sends = machineIds.flatMap((machineId) => [0, 1].map((second) => ({ machineId, second })));
      await Promise.all(
        sends.map(({ machineId, second }) =>
          store.add(envelope({ machine: { machineId, macs: [], hostname: `host-${machineId.slice(-3)}` }, ...(second === 1 ? MARK_GOOD : {}) }), "2026-12-06T10:00:06.000Z"),
        ),
      );
      const machines = await store.machines();
      expect(machines.map((machine) => machine.machineId)).toEqual(machineIds);
      expect(machines.every((machine) => machine.reports === 2 && machine.lastMarkGoodAt === "2026-12-06T10:00:06.000Z" && machine.lastBoot?.version === "2.0")).toBe(true);
    });

    test("HTML in a field comes back as the same text", async () => {
      const html = '<script>alert("x")</script>';
      await store.add(envelope({ report: { outcome: html } }), "2026-12-06T10:00:06.000Z");
      expect((await store.machine(MACHINE_ID))?.reports[0]?.report).toEqual({ outcome: html });
      expect((await store.machines())[0]?.lastBoot).toEqual({ outcome: html });
    });

    test("a report's keys come back in the order the machine sent them", async () => {
      const report = { zebra: 1, apple: { nested: [3, 2, 1], b: "x", a: "y" }, middle: null };
      await store.add(envelope({ report }), "2026-12-06T10:00:06.000Z");
      expect(JSON.stringify((await store.machine(MACHINE_ID))?.reports[0]?.report)).toBe(JSON.stringify(report));
    });

    test("a restart keeps every machine and report", async () => {
      await store.add(envelope(), "2026-12-06T10:00:06.000Z");
      await store.add(envelope(MARK_GOOD), "2026-12-06T10:05:01.000Z");
      const before = await store.machine(MACHINE_ID);
      await store.close();
      store = await under.reopen();
      expect(await store.machine(MACHINE_ID)).toEqual(before);
      expect(await store.machines()).toEqual(before === undefined ? [] : [before.machine]);
    });

    test("a write that fails leaves nothing: the machine's row goes with its report", async () => {
      await under.refuseReports();
      await expect(store.add(envelope(), "2026-12-06T10:00:06.000Z")).rejects.toThrow("refused by the test");
      expect(await store.machines()).toEqual([]);
    });
  });
}
