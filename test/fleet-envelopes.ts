// Report envelopes and tokens for the fleet server's tests.

import { summarizeBootReport } from "../controller/fleet/boot-summary.ts";
import { type Envelope, parseEnvelope } from "../controller/fleet/envelope.ts";
import type { MachineRecord } from "../controller/fleet/store.ts";

export const MACHINE_ID = "0123456789abcdef0123456789abcdef";
export const REPORT_TOKEN = "report-token-0123456789abcdefghijklmnop";
export const READ_TOKEN = "read-token-0123456789abcdefghijklmnopqrs";

/** A boot report as a controller writes it, cut down to the fields the fleet reads. */
export const BOOT_REPORT = {
  format: 1,
  controller: { version: "0.1.0", commit: "abc1234" },
  startedAt: "2026-12-06T10:00:00.000Z",
  finishedAt: "2026-12-06T10:00:01.250Z",
  outcome: "handed-off",
  decisions: ["boot SYSFS on /dev/vda1", "init /sbin/init (default)"],
  update: {
    slots: [
      { device: "/dev/vda1", label: "SYSFS", role: "system", record: "verified", version: "2.0" },
      { device: "/dev/vda2", label: "BACKUPFS", role: "backup", record: "verified", version: "1.0" },
    ],
    check: { decision: "up-to-date", reason: "the running system is version 2.0, the channel's", attempts: [] },
  },
  boot: {
    candidates: [],
    decisions: [],
    warnings: [],
    failedSlots: [],
    booted: { role: "system", label: "SYSFS", device: "/dev/vda1", fsType: "ext4", image: "/run/controller/slots/SYSFS/system.squashfs" },
    health: { attempts: 1, markedGood: true, cleanShutdown: false },
  },
};

/** A valid envelope of kind "boot"; `changes` replaces top-level keys. */
export function bootEnvelope(changes: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: 1,
    kind: "boot",
    machine: { machineId: MACHINE_ID, macs: ["52:54:00:12:34:56"], hostname: "lab-01" },
    sentAt: "2026-12-06T10:00:05.000Z",
    report: BOOT_REPORT,
    ...changes,
  };
}

export function bytesOf(value: unknown): Uint8Array {
  return new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));
}

/** bootEnvelope(changes) as the server has it once checked, for the stores. */
export function envelope(changes: Record<string, unknown> = {}): Envelope {
  const parsed = parseEnvelope(bytesOf(bootEnvelope(changes)));
  if (!parsed.ok) throw new Error(parsed.problems.join("\n"));
  return parsed.envelope;
}

/** Text a page that forgot to escape would run, or would break out of its element or attribute with. */
export const HOSTILE = `<script>alert(1)</script>"><img src=x onerror=alert(1)>' onmouseover='alert(1)' javascript:alert(1)`;

/**
 * A boot report with `text` in every string field the fleet's page shows (the
 * versions, the slot, the outcome, the update check, the rollback), each field
 * its own, so a test can tell which one a page shows where.
 */
export function hostileReport(text: string = HOSTILE): Record<string, unknown> {
  const device = `/dev/${text}`;
  return {
    format: 1,
    controller: { version: `controller ${text}`, commit: text },
    startedAt: `start ${text}`,
    finishedAt: text,
    outcome: `outcome ${text}`,
    decisions: [`rollback: ${text}`],
    update: {
      slots: [{ device, label: text, role: text, record: "verified", version: `version ${text}` }],
      check: { decision: `decision ${text}`, reason: `reason ${text}`, attempts: [], rollout: { percent: 50 }, manifest: { version: `offered ${text}` } },
    },
    boot: { booted: { role: `role ${text}`, label: `label ${text}`, device }, health: { attempts: 1, markedGood: false, cleanShutdown: false } },
  };
}

/** The server's clock in the page tests: an hour after the machines of machineRecord were last seen. */
export const PAGE_NOW = new Date("2026-12-06T12:00:00.000Z");

/** A machine as the store lists it: booted BOOT_REPORT's 2.0 and marked good an hour before PAGE_NOW; `changes` replaces fields. */
export function machineRecord(changes: Partial<MachineRecord> = {}): MachineRecord {
  return {
    machineId: MACHINE_ID,
    hostname: "lab-01",
    macs: ["52:54:00:12:34:56"],
    firstSeenAt: "2026-12-01T00:00:00.000Z",
    lastSeenAt: "2026-12-06T11:00:00.000Z",
    lastKind: "mark-good",
    lastBoot: summarizeBootReport(BOOT_REPORT),
    lastBootAt: "2026-12-06T10:59:00.000Z",
    lastMarkGoodAt: "2026-12-06T11:00:00.000Z",
    rollbacks: 0,
    reports: 2,
    ...changes,
  };
}
