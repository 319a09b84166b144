// A machine's health word (fleet/page/health.ts), the counts per version and
// per rollout (fleet/page/rollout.ts) and the page's times (fleet/page/time.ts).

import { describe, expect, test } from "bun:test";
import { summarizeBootReport } from "../../../../controller/fleet/boot-summary.ts";
import { healthWord } from "../../../../controller/fleet/page/health.ts";
import { countRollouts, countVersions } from "../../../../controller/fleet/page/rollout.ts";
import { describeDuration, describeTime, relativeTime } from "../../../../controller/fleet/page/time.ts";
import type { BootSummary } from "../../../../controller/fleet/boot-summary.ts";
import type { MachineRecord } from "../../../../controller/fleet/store.ts";
import { BOOT_REPORT, machineRecord, PAGE_NOW } from "../../../fleet-envelopes.ts";

const BOOT = summarizeBootReport(BOOT_REPORT);

function booted(version: string, update?: BootSummary["update"], changes: Partial<BootSummary> = {}): BootSummary {
  return { ...BOOT, version, ...(update === undefined ? {} : { update }), ...changes };
}

/** `record` without `keys`: the optional fields a machine has not reported yet. */
function without(record: MachineRecord, ...keys: (keyof MachineRecord)[]): MachineRecord {
  return Object.fromEntries(Object.entries(record).filter(([key]) => !(keys as string[]).includes(key))) as unknown as MachineRecord;
}

describe("healthWord", () => {
  test("each word, and the first that applies wins", () => {
    expect(healthWord(machineRecord(), PAGE_NOW)).toBe("good");
    // marked good, then shut down cleanly: still good (its Good count in the versions' table too)
    expect(healthWord(machineRecord({ lastKind: "mark-shutdown", lastSeenAt: "2026-12-06T11:30:00.000Z" }), PAGE_NOW)).toBe("good");
    expect(healthWord(without(machineRecord({ lastKind: "mark-shutdown" }), "lastMarkGoodAt"), PAGE_NOW)).toBe("shut down");
    // the mark-good was of an earlier boot
    const reboot = { lastKind: "boot", lastBootAt: "2026-12-06T11:55:00.000Z", lastSeenAt: "2026-12-06T11:55:00.000Z" } as const;
    expect(healthWord(machineRecord(reboot), PAGE_NOW)).toBe("booting");
    expect(healthWord(machineRecord({ ...reboot, lastKind: "mark-shutdown", lastSeenAt: "2026-12-06T11:58:00.000Z" }), PAGE_NOW)).toBe("shut down");
    expect(healthWord(machineRecord({ ...reboot, lastBootAt: "2026-12-06T11:49:00.000Z", lastSeenAt: "2026-12-06T11:58:00.000Z" }), PAGE_NOW)).toBe("not marked good");
    // no boot report yet: the latest report decides
    expect(healthWord(without(machineRecord(), "lastBootAt", "lastBoot"), PAGE_NOW)).toBe("good");
    expect(healthWord(without(machineRecord({ lastKind: "mark-shutdown" }), "lastBootAt", "lastBoot"), PAGE_NOW)).toBe("shut down");
    expect(healthWord(machineRecord({ lastBoot: { ...BOOT, rollback: "rollback: x" } }), PAGE_NOW)).toBe("rolled back");
    expect(healthWord(machineRecord({ lastBoot: { outcome: "nothing-bootable", rollback: "rollback: x" } }), PAGE_NOW)).toBe("nothing booted");
    expect(healthWord(machineRecord({ lastSeenAt: "2026-12-05T11:59:00.000Z", lastBoot: { outcome: "nothing-bootable" } }), PAGE_NOW)).toBe("not seen");
  });

  test("not seen after the hours given; a last-seen time that is not one counts as not seen", () => {
    expect(healthWord(machineRecord(), PAGE_NOW, 0.5)).toBe("not seen");
    expect(healthWord(machineRecord(), PAGE_NOW, 2)).toBe("good");
    expect(healthWord(machineRecord({ lastSeenAt: "yesterday" }), PAGE_NOW)).toBe("not seen");
  });
});

describe("countVersions", () => {
  test("machines, good and rolled back per booted version, newest first (10 after 9), no version last", () => {
    const machines = [
      machineRecord({ lastBoot: booted("9.0") }),
      machineRecord({ lastBoot: booted("10.0") }),
      machineRecord({ lastBoot: booted("10.0", undefined, { rollback: "rollback: x" }) }),
      machineRecord({ lastBoot: booted("10.0"), lastKind: "boot", lastBootAt: "2026-12-06T11:01:00.000Z" }),
      machineRecord({ lastBoot: { outcome: "nothing-bootable" } }),
    ];
    expect(countVersions(machines, PAGE_NOW)).toEqual([
      { version: "10.0", machines: 3, good: 1, rolledBack: 1 },
      { version: "9.0", machines: 1, good: 1, rolledBack: 0 },
      { version: undefined, machines: 1, good: 0, rolledBack: 0 },
    ]);
    expect(countVersions([], PAGE_NOW)).toEqual([]);
  });
});

describe("countRollouts", () => {
  const offer = (decision: string, version: string, rolloutPercent?: number) => ({
    decision,
    reason: "r",
    offered: { version, ...(rolloutPercent === undefined ? {} : { rolloutPercent }) },
  });

  test("per offered version: running it, installing, not in the rollout, outside the window, and the share", () => {
    const machines = [
      machineRecord({ lastBoot: booted("2.0", offer("install", "2.0", 30)) }),
      machineRecord({ lastBoot: booted("2.0", offer("up-to-date", "2.0")) }),
      machineRecord({ lastBoot: booted("1.0", offer("not-in-rollout", "2.0", 30)) }),
      machineRecord({ lastBoot: booted("1.0", offer("not-in-rollout", "2.0", 30)) }),
      machineRecord({ lastBoot: booted("1.0", offer("outside-window", "2.0", 30)) }),
      machineRecord({ lastBoot: booted("1.0", offer("install", "2.0", 30)) }),
      machineRecord({ lastBoot: booted("1.0", { decision: "unreachable", reason: "down" }) }),
    ];
    expect(countRollouts(machines)).toEqual([{ version: "2.0", percent: 30, running: 2, installing: 1, notInRollout: 2, outsideWindow: 1 }]);
  });

  test("the share from the machine heard from last (it saw the latest manifest); none when no machine saw one", () => {
    const machines = [
      machineRecord({ lastSeenAt: "2026-12-06T11:00:00.000Z", lastBoot: booted("1.0", offer("not-in-rollout", "2.0", 10)) }),
      machineRecord({ lastSeenAt: "2026-12-06T11:30:00.000Z", lastBoot: booted("1.0", offer("not-in-rollout", "2.0", 50)) }),
      machineRecord({ lastSeenAt: "2026-12-06T11:45:00.000Z", lastBoot: booted("1.0", offer("not-in-rollout", "2.0")) }),
      machineRecord({ lastBoot: booted("3.0", offer("up-to-date", "3.0")) }),
    ];
    expect(countRollouts(machines)).toEqual([
      { version: "3.0", running: 1, installing: 0, notInRollout: 0, outsideWindow: 0 },
      { version: "2.0", percent: 50, running: 0, installing: 0, notInRollout: 3, outsideWindow: 0 },
    ]);
  });

  test("no machine offered anything: no rollout", () => {
    expect(countRollouts([machineRecord({ lastBoot: booted("1.0", { decision: "not-configured", reason: "r" }) }), machineRecord({ lastBoot: {} })])).toEqual([]);
  });
});

describe("times", () => {
  test("UTC to the minute and how long ago by the server's clock; a clock ahead says in; text that is not a time stays as it is", () => {
    expect(describeTime("2026-12-06T09:05:59.000Z", PAGE_NOW)).toBe("2026-12-06 09:05 UTC (2 h ago)");
    expect(relativeTime("2026-12-06T11:59:30.000Z", PAGE_NOW)).toBe("just now");
    expect(relativeTime("2026-12-06T11:15:00.000Z", PAGE_NOW)).toBe("45 min ago");
    expect(relativeTime("2026-12-04T11:00:00.000Z", PAGE_NOW)).toBe("2 d ago");
    expect(relativeTime("2026-12-06T12:10:00.000Z", PAGE_NOW)).toBe("in 10 min");
    expect(describeTime("<b>soon</b>", PAGE_NOW)).toBe("<b>soon</b>");
  });

  test("durations in ms, s and min", () => {
    expect([850, 1250, 20_000, 125_000].map(describeDuration)).toEqual(["850 ms", "1.25 s", "20 s", "2 min 5 s"]);
  });
});
