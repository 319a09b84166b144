// What the fleet shows of a boot (fleet/boot-summary.ts): read from real boot
// reports of the fake machine, so a field that moves in BootReport fails here,
// and from reports of any shape, which must never throw.

import { describe, expect, test } from "bun:test";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { summarizeBootReport } from "../../../controller/fleet/boot-summary.ts";
import { parseEnvelope } from "../../../controller/fleet/envelope.ts";
import type { HealthRecord } from "../../../controller/plans/slot-health.ts";
import { connectToNetwork, labMachine } from "../../fake-machine.ts";
import { installedSlot, PUBLIC_KEY, publish, SERVER } from "../../fake-repo.ts";
import { BOOT_REPORT, bootEnvelope, bytesOf } from "../../fleet-envelopes.ts";
import { memoryLogger } from "../../memory-log.ts";

const GOOD: HealthRecord = { attempts: 0, markedGood: true, cleanShutdown: true };

/** A whole boot of the fake lab machine, SYSFS at 2.0 in `health`, BACKUPFS a healthy 1.0; its report as the machine would send it. */
async function bootReport(health: HealthRecord): Promise<Record<string, unknown>> {
  const fake = labMachine({
    bootext: { "config.d/60-update.toml": `[update]\ntrusted_keys = ["${PUBLIC_KEY}"]\n` },
    slots: { SYSFS: installedSlot({ version: "2.0" }, health), BACKUPFS: installedSlot({ version: "1.0" }, GOOD) },
  });
  const { report } = await runBoot(fake, memoryLogger().log);
  return JSON.parse(JSON.stringify(report)) as Record<string, unknown>;
}

describe("summarizeBootReport over the reports the controller writes", () => {
  test("a healthy boot: the version and slot booted, its health, the update decision, no rollback", async () => {
    const summary = summarizeBootReport(await bootReport({ ...GOOD, attempts: 1 }));
    expect(summary).toMatchObject({
      outcome: "handed-off",
      slot: { label: "SYSFS", device: "/dev/vda1", role: "system" },
      version: "2.0",
      health: { attempts: 2, markedGood: true, cleanShutdown: false },
      update: { decision: "not-configured" },
    });
    expect(summary.controllerVersion).toBeString();
    expect(summary.startedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(summary.durationMs).toBeGreaterThanOrEqual(0);
    expect(summary).not.toHaveProperty("rollback");
  });

  test("the report a boot wrote passes the envelope's checks whole", async () => {
    const report = await bootReport(GOOD);
    const parsed = parseEnvelope(bytesOf(bootEnvelope({ report })));
    expect(parsed.ok && parsed.envelope.report).toEqual(report);
  });

  test("a rollback: the backup's version boots as SYSFS and the summary says why", async () => {
    const summary = summarizeBootReport(await bootReport({ attempts: 3, markedGood: false, cleanShutdown: false }));
    expect(summary).toMatchObject({ slot: { label: "SYSFS", device: "/dev/vda2" }, version: "1.0" });
    expect(summary.rollback).toBe("rollback: SYSFS on /dev/vda1 unhealthy; BACKUPFS on /dev/vda2 becomes SYSFS and boots");
  });

  test("a version rolled out to 0 %: the offered version and its share, beside the decision", async () => {
    const fake = connectToNetwork(
      labMachine({
        bootext: { "config.d/60-update.toml": `[update]\nservers = ["${SERVER}"]\ntrusted_keys = ["${PUBLIC_KEY}"]\n`, "machine-id": `${"a".repeat(32)}\n` },
        slots: { SYSFS: installedSlot({ version: "1.0" }, GOOD), BACKUPFS: installedSlot({ version: "0.9" }, GOOD) },
      }),
    );
    publish(fake, { version: "2.0", rolloutPercent: 0 });
    const { report } = await runBoot(fake, memoryLogger().log);
    const summary = summarizeBootReport(JSON.parse(JSON.stringify(report)) as Record<string, unknown>);
    expect(summary).toMatchObject({ version: "1.0", update: { decision: "not-in-rollout", offered: { version: "2.0", rolloutPercent: 0 } } });
  });
});

describe("summarizeBootReport over any JSON object", () => {
  test("every field of the cut-down report", () => {
    expect(summarizeBootReport(BOOT_REPORT)).toEqual({
      controllerVersion: "0.1.0",
      outcome: "handed-off",
      startedAt: "2026-12-06T10:00:00.000Z",
      durationMs: 1250,
      slot: { label: "SYSFS", device: "/dev/vda1", role: "system" },
      version: "2.0",
      health: { attempts: 1, markedGood: true, cleanShutdown: false },
      update: { decision: "up-to-date", reason: "the running system is version 2.0, the channel's" },
    });
  });

  test("the offered version without a share when the manifest rolls out to all; a share that is not a number is dropped", () => {
    const check = (rollout: unknown) => ({ update: { check: { decision: "install", reason: "r", manifest: { version: "3.0" }, rollout } } });
    expect(summarizeBootReport(check(undefined)).update).toEqual({ decision: "install", reason: "r", offered: { version: "3.0" } });
    expect(summarizeBootReport(check({ percent: 25 })).update?.offered).toEqual({ version: "3.0", rolloutPercent: 25 });
    for (const percent of ["25", null, Number.NaN, [25]]) expect(summarizeBootReport(check({ percent })).update?.offered).toEqual({ version: "3.0" });
    expect(summarizeBootReport({ update: { check: { decision: "install", reason: "r", manifest: { version: 3 } } } }).update).toEqual({ decision: "install", reason: "r" });
  });

  test("a diskless boot's version is the one it runs from RAM", () => {
    expect(summarizeBootReport({ diskless: { version: "3.1" } })).toEqual({ version: "3.1" });
  });

  test("an empty object, and fields of the wrong types, give an empty summary without throwing", () => {
    expect(summarizeBootReport({})).toEqual({});
    const hostile = {
      controller: "0.1.0",
      outcome: 1,
      startedAt: ["2026"],
      finishedAt: null,
      boot: { booted: { label: 1, device: "/dev/vda1", role: "system" }, health: { attempts: "3", markedGood: true, cleanShutdown: true } },
      update: { slots: "none", check: { decision: "install" } },
      decisions: [{ rollback: true }, 7, null],
      diskless: [],
    };
    expect(summarizeBootReport(hostile)).toEqual({});
  });

  test("a finish before the start, or times that are not times, give no duration", () => {
    expect(summarizeBootReport({ startedAt: "2026-12-06T10:00:01Z", finishedAt: "2026-12-06T10:00:00Z" })).toEqual({ startedAt: "2026-12-06T10:00:01Z" });
    expect(summarizeBootReport({ startedAt: "soon", finishedAt: "later" })).toEqual({ startedAt: "soon" });
  });

  test("the booted slot's version is the slot of the same device, and none when no slot matches", () => {
    const slot = { label: "SYSFS", device: "/dev/vdb1", role: "system" };
    expect(summarizeBootReport({ boot: { booted: slot }, update: { slots: [{ device: "/dev/vda1", version: "2.0" }] } })).toEqual({ slot });
  });

  test("HTML in a field stays the text it is", () => {
    const html = "<script>alert(1)</script>";
    expect(summarizeBootReport({ outcome: html, decisions: [`rollback: ${html}`] })).toEqual({ outcome: html, rollback: `rollback: ${html}` });
  });
});
