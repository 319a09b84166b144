import { describe, expect, test } from "bun:test";
import { KeptSlotMount } from "../../../controller/boot/kept-slot-mount.ts";
import { runMountsStage } from "../../../controller/boot/mounts.ts";
import { DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { mountArgv } from "../../../controller/system/linux-system.ts";
import { labMachine } from "../../fake-machine.ts";
import { memoryLogger } from "../../memory-log.ts";

const sysfs = { role: "system" as const, label: "SYSFS", device: "/dev/vda1", fsType: "ext4" };
/** these tests mount no BOOTEXT: the image's /etc/machine-id stays (machine-id.test.ts has the rest) */
const NO_BOOTEXT = { readOnly: false };

describe("the mount command", () => {
  test("mount(8) argv for each kind of request", () => {
    expect(mountArgv({ kind: "filesystem", source: "tmpfs", target: "/t", fsType: "tmpfs", options: [] })).toEqual(["mount", "-t", "tmpfs", "tmpfs", "/t"]);
    expect(mountArgv({ kind: "filesystem", source: "/i", target: "/t", fsType: "squashfs", options: ["ro", "loop"] })).toEqual(["mount", "-t", "squashfs", "-o", "ro,loop", "/i", "/t"]);
    expect(mountArgv({ kind: "bind", source: "/a", target: "/b" })).toEqual(["mount", "--bind", "/a", "/b"]);
    expect(mountArgv({ kind: "bind", source: "/a", target: "/b", private: true })).toEqual(["mount", "--bind", "--make-private", "/a", "/b"]);
  });
});

describe("mounts stage", () => {
  test("the aside bind is gone once the tmpfs is seeded", async () => {
    const fake = labMachine();
    const result = await runMountsStage(fake, memoryLogger().log, DEFAULT_CONFIG, [sysfs], NO_BOOTEXT, new KeptSlotMount(fake));
    expect(result.mounts.map((m) => m.target)).toEqual(["/run/controller/slots/SYSFS", "/sysroot", "/sysroot/etc", "/sysroot/tmp", "/sysroot/var/log"]);
    expect(fake.peek("/run/controller/staging/etc")).toBe("<dir>");
    expect(await fake.readdir("/run/controller/staging/etc")).toEqual([]);
    expect(fake.peek("/sysroot/etc/hostname")).toBe("lab");
  });

  test("a tmpfs whose folder is missing from the image is skipped, a failing one reported, the rest go on", async () => {
    const fake = labMachine();
    fake.failingMountTargets.add("/sysroot/tmp");
    const config = { ...DEFAULT_CONFIG, tmpfs: { ...DEFAULT_CONFIG.tmpfs, "/media": { enabled: true, size: "1m", mode: "0755", seed_from_image: false } } };
    const { log, sink } = memoryLogger();
    const result = await runMountsStage(fake, log, config, [sysfs], NO_BOOTEXT, new KeptSlotMount(fake));
    expect(result.tmpfs.map((t) => [t.path, t.status])).toEqual([
      ["/etc", "mounted"],
      ["/media", "skipped"],
      ["/tmp", "failed"],
      ["/var/log", "mounted"],
    ]);
    expect(sink.text()).toContain("WARNING: Cannot mount tmpfs at /media: /media does not exist in the read-only image and / is not on a tmpfs where it could be created");
  });

  test("every slot failing leaves nothing booted and says why for each", async () => {
    const fake = labMachine();
    fake.failingMountTargets.add("/run/controller/slots/SYSFS");
    fake.failingMountTargets.add("/run/controller/slots/BACKUPFS");
    const backup = { role: "backup" as const, label: "BACKUPFS", device: "/dev/vda2", fsType: "ext4" };
    const result = await runMountsStage(fake, memoryLogger().log, DEFAULT_CONFIG, [sysfs, backup], NO_BOOTEXT, new KeptSlotMount(fake));
    expect(result.booted).toBeUndefined();
    expect(result.failedSlots.map((f) => f.candidate.label)).toEqual(["SYSFS", "BACKUPFS"]);
    expect(result.tmpfs).toEqual([]);
  });
});
