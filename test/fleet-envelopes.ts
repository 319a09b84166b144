// Report envelopes and tokens for the fleet server's tests.

import { type Envelope, parseEnvelope } from "../controller/fleet/envelope.ts";

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
