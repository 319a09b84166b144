// The envelopes a machine sends (fleet/outgoing-envelope.ts): a boot report
// of any size is cut, the same way every time, until the server's checks
// take it, and what the fleet shows of it survives every cut.

import { describe, expect, test } from "bun:test";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { summarizeBootReport } from "../../../controller/fleet/boot-summary.ts";
import { parseEnvelope, REPORT_BODY_MAX_BYTES } from "../../../controller/fleet/envelope.ts";
import type { MachineIdentity } from "../../../controller/fleet/machine-identity.ts";
import { bootBody, lifecycleBody, minimalReport, STRING_MAX_CHARS } from "../../../controller/fleet/outgoing-envelope.ts";
import type { HealthRecord } from "../../../controller/plans/slot-health.ts";
import { labMachine } from "../../fake-machine.ts";
import { installedSlot, PUBLIC_KEY } from "../../fake-repo.ts";
import { BOOT_REPORT, MACHINE_ID } from "../../fleet-envelopes.ts";
import { memoryLogger } from "../../memory-log.ts";

const MACHINE: MachineIdentity = { machineId: MACHINE_ID, macs: ["52:54:00:12:34:56"], hostname: "lab-01" };
const SENT_AT = new Date("2026-12-06T10:00:05.000Z");

type Json = Record<string, unknown>;

/** A whole boot of the fake lab machine, as boot-summary.test.ts makes it: SYSFS 2.0 with `health`, BACKUPFS 1.0. */
async function bootReport(health: HealthRecord): Promise<Json> {
  const fake = labMachine({
    bootext: { "config.d/60-update.toml": `[update]\ntrusted_keys = ["${PUBLIC_KEY}"]\n` },
    slots: { SYSFS: installedSlot({ version: "2.0" }, health), BACKUPFS: installedSlot({ version: "1.0" }, { attempts: 0, markedGood: true, cleanShutdown: true }) },
  });
  const { report } = await runBoot(fake, memoryLogger().log);
  return JSON.parse(JSON.stringify(report)) as Json;
}

/** The body as the server reads it: its envelope's report, failing the test when the server would refuse it. */
function reportSent(body: string): Json {
  const bytes = new TextEncoder().encode(body);
  expect(bytes.length).toBeLessThanOrEqual(REPORT_BODY_MAX_BYTES);
  const parsed = parseEnvelope(bytes);
  if (!parsed.ok) throw new Error(`the server would refuse it: ${parsed.problems.join("; ")}`);
  return parsed.envelope.report ?? {};
}

function fitted(report: Json, maxBytes?: number): { body: string; cut?: string } {
  const result = bootBody(MACHINE, SENT_AT, report, maxBytes);
  if (!result.ok) throw new Error(result.problem);
  return result;
}

const bytesOf = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).length;

/** `kib` KiB of strings, as many notices or partitions would make. */
function filler(kib: number): string[] {
  return Array.from({ length: kib }, (_, index) => `${index}`.padEnd(1024, "x"));
}

describe("lifecycleBody", () => {
  test("a mark-good and a mark-shutdown as the server takes them", () => {
    for (const kind of ["mark-good", "mark-shutdown"] as const) {
      const parsed = parseEnvelope(new TextEncoder().encode(lifecycleBody(kind, MACHINE, SENT_AT)));
      expect(parsed.ok && parsed.envelope).toEqual({ format: 1, kind, machine: { ...MACHINE, macs: [...MACHINE.macs] }, sentAt: "2026-12-06T10:00:05.000Z" });
    }
  });
});

describe("bootBody", () => {
  test("a report that fits goes whole, without a word about cutting", async () => {
    for (const report of [BOOT_REPORT, {}, await bootReport({ attempts: 0, markedGood: true, cleanShutdown: true })]) {
      const result = fitted(report);
      expect(result.cut).toBeUndefined();
      expect(reportSent(result.body)).toEqual(report);
    }
  });

  test("a real boot's report just too large loses config.provenance first, and says so", async () => {
    const report = await bootReport({ attempts: 0, markedGood: true, cleanShutdown: true });
    const whole = new TextEncoder().encode(fitted(report).body).length;
    const result = fitted(report, whole - 1);
    const sent = reportSent(result.body);
    expect(sent["config"]).not.toHaveProperty("provenance");
    expect(sent["config"]).toHaveProperty("layers");
    expect(sent).toMatchObject({ truncated: true, truncation: { bytes: bytesOf(report), dropped: ["config.provenance"] }, partitions: report["partitions"] });
    expect(result.cut).toBe(`the boot report (${bytesOf(report)} bytes) was cut to fit: config.provenance dropped`);
    expect(summarizeBootReport(sent)).toEqual(summarizeBootReport(report));
  });

  test("the steps in order, each on top of the ones before: provenance, layers, partitions, notices", () => {
    const report = {
      ...BOOT_REPORT,
      config: { values: { fleet: { server: "" } }, provenance: filler(50), layers: filler(50) },
      partitions: filler(50),
      notices: filler(50),
    };
    const steps: [number, string[]][] = [
      [190 * 1024, ["config.provenance"]],
      [140 * 1024, ["config.provenance", "config.layers"]],
      [90 * 1024, ["config.provenance", "config.layers", "partitions"]],
      [40 * 1024, ["config.provenance", "config.layers", "partitions", "notices"]],
    ];
    for (const [maxBytes, dropped] of steps) {
      const sent = reportSent(fitted(report, maxBytes).body);
      expect(sent["truncation"]).toEqual({ bytes: bytesOf(report), dropped });
      for (const key of ["partitions", "notices"]) expect(key in sent).toBe(!dropped.includes(key));
      expect(sent["config"]).toEqual(Object.fromEntries(Object.entries(report.config).filter(([key]) => !dropped.includes(`config.${key}`))));
      expect(sent["update"]).toEqual(report.update);
    }
  });

  test("too large even without them: only what the fleet shows is left, strings cut, and the summary is the same", async () => {
    for (const health of [{ attempts: 0, markedGood: true, cleanShutdown: true }, { attempts: 3, markedGood: false, cleanShutdown: false }]) {
      const report = await bootReport(health);
      const huge = { ...report, stages: filler(300), notices: filler(10) };
      const result = fitted(huge);
      const sent = reportSent(result.body);
      expect(sent).toMatchObject({ truncated: true, truncation: { bytes: bytesOf(huge), dropped: ["everything but the fields the fleet's summary shows"] } });
      expect(sent).not.toHaveProperty("stages");
      expect(sent).not.toHaveProperty("config");
      expect(summarizeBootReport(sent)).toEqual(summarizeBootReport(report));
      expect(result.cut).toBe(`the boot report (${bytesOf(huge)} bytes) was cut to fit: everything but the fields the fleet's summary shows dropped`);
    }
  });

  test("huge strings in the fields the fleet shows are cut to STRING_MAX_CHARS; only the rollback decision is kept", () => {
    const reason = "r".repeat(300 * 1024);
    const report = {
      ...BOOT_REPORT,
      decisions: [...filler(10), "rollback: SYSFS on /dev/vda1 unhealthy", "rollback: a second"],
      update: { ...BOOT_REPORT.update, check: { decision: "install", reason } },
    };
    const sent = reportSent(fitted(report).body);
    expect(sent["update"]).toEqual({ check: { decision: "install", reason: reason.slice(0, STRING_MAX_CHARS) }, slots: [{ device: "/dev/vda1", version: "2.0" }] });
    expect(sent["decisions"]).toEqual(["rollback: SYSFS on /dev/vda1 unhealthy"]);
  });

  test("a report nested deeper than the server takes, however small, is cut to its summary", () => {
    let deep: unknown = "bottom";
    for (let depth = 0; depth < 100; depth++) deep = [deep];
    const sent = reportSent(fitted({ ...BOOT_REPORT, deep }).body);
    expect(sent).not.toHaveProperty("deep");
    expect(summarizeBootReport(sent)).toEqual(summarizeBootReport(BOOT_REPORT));
  });

  test("fields of the wrong type are left out of the summary, not sent as they are", () => {
    const report = { outcome: 1, controller: "0.1", boot: { booted: { label: ["SYSFS"], device: {}, role: null }, health: "good" }, update: [], diskless: { version: 3 }, stages: filler(300) };
    expect(reportSent(fitted(report).body)).toEqual({ outcome: 1, diskless: { version: 3 }, truncated: true, truncation: { bytes: bytesOf(report), dropped: ["everything but the fields the fleet's summary shows"] } });
  });

  test("the same report is cut the same way every time", () => {
    const report = { ...BOOT_REPORT, partitions: filler(300) };
    expect(fitted(report).body).toBe(fitted(report).body);
  });

  test("an identity the server would refuse: no body, and why", () => {
    const result = bootBody({ ...MACHINE, machineId: "nope" }, SENT_AT, BOOT_REPORT);
    expect(result).toEqual({ ok: false, problem: 'Cannot send the boot report: cut to its summary, key machine.machineId: expected a machine-id: 32 lowercase hex digits, got "nope"' });
  });

  test("a cap too small even for the summary: no body, and why", () => {
    expect(bootBody(MACHINE, SENT_AT, BOOT_REPORT, 100)).toEqual({ ok: false, problem: "Cannot send the boot report: cut to its summary, it is still larger than 100 bytes" });
  });
});

describe("minimalReport", () => {
  test("keeps the version the update check was offered and its rollout share, which the page counts", () => {
    const check = { decision: "install", reason: "2.1 is newer", manifest: { version: "2.1", sha512: "x".repeat(128) }, rollout: { percent: 50, place: 12.5 }, attempts: filler(3) };
    const report = { ...BOOT_REPORT, update: { ...BOOT_REPORT.update, check } };
    const minimal = minimalReport(report, 1);
    expect(minimal["update"]).toEqual({ check: { decision: "install", reason: "2.1 is newer", manifest: { version: "2.1" }, rollout: { percent: 50 } }, slots: [{ device: "/dev/vda1", version: "2.0" }] });
    expect(summarizeBootReport(minimal)).toEqual(summarizeBootReport(report));
    expect(summarizeBootReport(minimal).update?.offered).toEqual({ version: "2.1", rolloutPercent: 50 });
  });

  test("of the cut-down report: every field the summary reads, and the mark", () => {
    expect(minimalReport(BOOT_REPORT, 1234)).toEqual({
      format: 1,
      startedAt: "2026-12-06T10:00:00.000Z",
      finishedAt: "2026-12-06T10:00:01.250Z",
      outcome: "handed-off",
      controller: { version: "0.1.0", commit: "abc1234" },
      boot: { booted: { label: "SYSFS", device: "/dev/vda1", role: "system" }, health: { attempts: 1, markedGood: true, cleanShutdown: false } },
      update: { check: { decision: "up-to-date", reason: "the running system is version 2.0, the channel's" }, slots: [{ device: "/dev/vda1", version: "2.0" }] },
      truncated: true,
      truncation: { bytes: 1234, dropped: ["everything but the fields the fleet's summary shows"] },
    });
  });
});
