// Which slots boot, in which order: by label, then once their health is known,
// for the combinations a disk can be in.

import { describe, expect, test } from "bun:test";
import { DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { type BootPlan, decideHealth, planBoot, type SlotVerdict } from "../../../controller/plans/boot-order.ts";
import type { InspectedSlot } from "../../../controller/plans/slot.ts";
import type { BlockDevice } from "../../../controller/system/system.ts";

const ext4 = (device: string, label?: string): BlockDevice => ({ device, fsType: "ext4", ...(label === undefined ? {} : { label }) });

describe("planBoot", () => {
  test("SYSFS first, BACKUPFS as the fallback", () => {
    const plan = planBoot([ext4("/dev/vda1", "SYSFS"), ext4("/dev/vda2", "BACKUPFS"), ext4("/dev/vda3", "BOOTEXT")], DEFAULT_CONFIG);
    expect(plan.candidates).toEqual([
      { role: "system", label: "SYSFS", device: "/dev/vda1", fsType: "ext4" },
      { role: "backup", label: "BACKUPFS", device: "/dev/vda2", fsType: "ext4" },
    ]);
    expect(plan.decisions).toEqual(["boot SYSFS on /dev/vda1"]);
    expect(plan.warnings).toEqual([]);
  });

  test("no SYSFS: the backup boots, and the plan says so loudly", () => {
    const plan = planBoot([ext4("/dev/vda2", "BACKUPFS"), ext4("/dev/vda3", "DEPRIVED")], DEFAULT_CONFIG);
    expect(plan.candidates.map((c) => c.label)).toEqual(["BACKUPFS"]);
    expect(plan.warnings).toEqual(["no partition is labelled SYSFS: booting the backup system BACKUPFS on /dev/vda2, read-only"]);
    expect(plan.decisions[0]).toContain("because no partition is labelled SYSFS");
  });

  test("a SYSFS with the wrong filesystem is passed over with a reason", () => {
    const plan = planBoot([{ device: "/dev/vda1", label: "SYSFS", fsType: "vfat" }, ext4("/dev/vda2", "BACKUPFS")], DEFAULT_CONFIG);
    expect(plan.candidates.map((c) => c.device)).toEqual(["/dev/vda2"]);
    expect(plan.warnings[0]).toBe("Cannot use SYSFS on /dev/vda1: its filesystem is vfat, expected ext4 (slot.fs_type)");
    expect(plan.warnings[1]).toContain("no SYSFS partition is usable");
  });

  test("a label without a filesystem type is not usable", () => {
    const plan = planBoot([{ device: "/dev/vda1", label: "SYSFS" }], DEFAULT_CONFIG);
    expect(plan.candidates).toEqual([]);
    expect(plan.warnings[0]).toContain("its filesystem is unknown");
  });

  test("two SYSFS partitions: both tried, in device order, with a warning", () => {
    const plan = planBoot([ext4("/dev/vda1", "SYSFS"), ext4("/dev/vdb1", "SYSFS")], DEFAULT_CONFIG);
    expect(plan.candidates.map((c) => c.device)).toEqual(["/dev/vda1", "/dev/vdb1"]);
    expect(plan.warnings).toEqual(["2 partitions are labelled SYSFS (/dev/vda1, /dev/vdb1): trying them in that order"]);
  });

  test("nothing bootable names what was seen", () => {
    const plan = planBoot([ext4("/dev/vda1", "DATA"), { device: "/dev/vdb" }], DEFAULT_CONFIG);
    expect(plan.candidates).toEqual([]);
    expect(plan.decisions[0]).toBe(
      "nothing bootable: no usable partition labelled SYSFS or BACKUPFS; filesystems seen: /dev/vda1 (ext4, label DATA), /dev/vdb (no filesystem, no label)",
    );
  });

  test("labels come from config", () => {
    const config = { ...DEFAULT_CONFIG, labels: { ...DEFAULT_CONFIG.labels, system: "ROOT_A", backup: "ROOT_B" } };
    const plan = planBoot([ext4("/dev/vda1", "SYSFS"), ext4("/dev/vda2", "ROOT_B")], config);
    expect(plan.candidates.map((c) => c.label)).toEqual(["ROOT_B"]);
  });
});

describe("decideHealth", () => {
  const config = DEFAULT_CONFIG;
  const candidate = (device: string, label: string, role: "system" | "backup") => ({ device, label, role, fsType: "ext4" });
  const base: BootPlan = { candidates: [candidate("/dev/a", "SYSFS", "system"), candidate("/dev/b", "BACKUPFS", "backup")], decisions: ["boot SYSFS on /dev/a"], warnings: [] };
  const verdict = (device: string, healthy: boolean): SlotVerdict => ({
    device,
    healthy,
    conditions: healthy ? [] : [{ condition: "attempts", result: "fail", detail: "too many" }],
  });
  const slots: InspectedSlot[] = [];

  test("healthy SYSFS: the plan as it was", () => {
    expect(decideHealth(base, new Map([["/dev/a", verdict("/dev/a", true)]]), slots, config)).toEqual({ ...base, relabels: [] });
  });

  test("unhealthy SYSFS, healthy BACKUPFS: relabel both, the backup boots as SYSFS", () => {
    const plan = decideHealth(base, new Map([["/dev/a", verdict("/dev/a", false)], ["/dev/b", verdict("/dev/b", true)]]), slots, config);
    expect(plan.relabels.map((r) => [r.device.device, r.to])).toEqual([["/dev/a", "DEPRIVED"], ["/dev/b", "SYSFS"]]);
    expect(plan.candidates).toEqual([candidate("/dev/b", "SYSFS", "system")]);
  });

  test("no SYSFS and an unhealthy BACKUPFS alone: it still boots under newest, nothing under shell", () => {
    const only: BootPlan = { candidates: [candidate("/dev/b", "BACKUPFS", "backup")], decisions: [], warnings: [] };
    const bad = new Map([["/dev/b", verdict("/dev/b", false)]]);
    expect(decideHealth(only, bad, slots, config).candidates.map((c) => c.device)).toEqual(["/dev/b"]);
    expect(decideHealth(only, bad, slots, { ...config, health: { ...config.health, both_unhealthy: "shell" } }).candidates).toEqual([]);
  });

  test("nothing to boot stays nothing", () => {
    const none: BootPlan = { candidates: [], decisions: ["nothing bootable"], warnings: [] };
    expect(decideHealth(none, new Map(), slots, config)).toEqual({ ...none, relabels: [] });
  });
});
