// The slot expected to boot is mounted once, from the slots stage to the
// mounts stage (kept-slot-mount.ts), and let go whenever something must write
// to it or another slot boots: whole boots over the fake, counting mounts.

import { describe, expect, test } from "bun:test";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { labMachine } from "../../fake-machine.ts";
import { installedSlot, PUBLIC_KEY } from "../../fake-repo.ts";
import type { FakeSystem } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

const CHECKED = `[update]\ntrusted_keys = ["${PUBLIC_KEY}"]\n[health]\nverify_image = true\nrequired_files = ["/sbin/init"]\n`;

function mountsOf(fake: FakeSystem, device: string) {
  return fake.mountRequests.filter((request) => request.source === device);
}

function mountedAt(fake: FakeSystem, target: string): string | undefined {
  return fake.mounts.find((mount) => mount.target === target)?.source;
}

describe("the slot that boots is mounted once", () => {
  test("slots, health (image hash, required files) and mounts share one read-only mount of SYSFS, kept into the booted system", async () => {
    const fake = labMachine({ bootext: { "config.d/60-health.toml": CHECKED }, slots: { SYSFS: installedSlot({ version: "2.0" }), BACKUPFS: installedSlot({ version: "1.0" }) } });
    const { report } = await runBoot(fake, memoryLogger().log);
    expect(report.outcome).toBe("handed-off");
    const conditions = report.update.slots.find((slot) => slot.label === "SYSFS")?.conditions ?? [];
    expect(conditions.filter((c) => c.condition === "image-hash" || c.condition === "required-files").map((c) => c.result)).toEqual(["pass", "pass"]);
    expect(mountsOf(fake, "/dev/vda1")).toEqual([{ kind: "filesystem", source: "/dev/vda1", target: "/run/controller/slots/SYSFS", fsType: "ext4", options: ["ro", "x-initrd.mount"] }]);
    // BACKUPFS is read once at its inspection place and let go
    expect(mountsOf(fake, "/dev/vda2").map((request) => request.target)).toEqual(["/run/controller/inspect/1"]);
    expect(mountedAt(fake, "/run/controller/slots/SYSFS")).toBe("/dev/vda1");
    // the report still lists the slot partition's mount, as the mounts stage's
    expect(report.mounts.find((mount) => mount.target === "/run/controller/slots/SYSFS")).toMatchObject({ source: "/dev/vda1", purpose: "SYSFS slot partition" });
  });

  test("a rollback lets SYSFS go before its label changes: it becomes DEPRIVED unmounted, and the new SYSFS boots at its own mount", async () => {
    const fake = labMachine({
      bootext: { "config.d/60-health.toml": CHECKED },
      slots: { SYSFS: installedSlot({ version: "2.0" }, { attempts: 3, markedGood: false, cleanShutdown: false }), BACKUPFS: installedSlot({ version: "1.0" }) },
    });
    const { report } = await runBoot(fake, memoryLogger().log);
    // the fake's e2label refuses a mounted partition, as e2label would move a kept mount's meaning
    expect(fake.labelChanges).toEqual(["/dev/vda1 SYSFS -> DEPRIVED", "/dev/vda2 BACKUPFS -> SYSFS"]);
    expect(report.boot.booted).toMatchObject({ device: "/dev/vda2", label: "SYSFS" });
    expect(mountedAt(fake, "/run/controller/slots/SYSFS")).toBe("/dev/vda2");
    expect(fake.mounts.some((mount) => mount.source === "/dev/vda1")).toBe(false);
  });

  test("when another slot boots without a label change, the kept SYSFS is unmounted before the handoff", async () => {
    const broken = { attempts: 5, markedGood: true, cleanShutdown: true };
    const fake = labMachine({
      bootext: { "config.d/60-health.toml": `${CHECKED}both_unhealthy = "newest"\n` },
      slots: { SYSFS: installedSlot({ version: "2.0" }, broken), BACKUPFS: installedSlot({ version: "3.0" }, broken) },
    });
    const { report } = await runBoot(fake, memoryLogger().log);
    expect(fake.labelChanges).toEqual([]);
    expect(report.boot.booted).toMatchObject({ device: "/dev/vda2", label: "BACKUPFS" });
    expect(fake.mounts.some((mount) => mount.source === "/dev/vda1")).toBe(false);
    expect(mountedAt(fake, "/run/controller/slots/BACKUPFS")).toBe("/dev/vda2");
  });

  test("two SYSFS (a switch cut short): neither is kept, the repair relabels one, the newer boots", async () => {
    const fake = labMachine({ bootext: { "config.d/60-health.toml": CHECKED }, slots: { SYSFS: installedSlot({ version: "1.0" }), BACKUPFS: installedSlot({ version: "2.0" }) } });
    await fake.setLabel({ device: "/dev/vda2", label: "BACKUPFS", fsType: "ext4" }, "SYSFS");
    fake.labelChanges.length = 0;
    const { report } = await runBoot(fake, memoryLogger().log);
    expect(fake.labelChanges).toEqual(["/dev/vda1 SYSFS -> BACKUPFS"]);
    expect(report.boot.booted).toMatchObject({ device: "/dev/vda2", label: "SYSFS" });
    expect(mountsOf(fake, "/dev/vda1").map((request) => request.target)).toEqual(["/run/controller/inspect/0"]);
    expect(mountsOf(fake, "/dev/vda2").map((request) => request.target)).toEqual(["/run/controller/inspect/1", "/run/controller/inspect/health", "/run/controller/slots/SYSFS"]);
  });
});
