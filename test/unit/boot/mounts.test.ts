import { describe, expect, test } from "bun:test";
import { DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { mountArgv, parseBlkidExport } from "../../../controller/system/linux-system.ts";
import { orderTmpfs, planRootMount, planTmpfs, runMountsStage } from "../../../controller/boot/mounts.ts";
import { labMachine } from "../../fake-machine.ts";
import { memoryLogger } from "../../memory-log.ts";

const sysfs = { role: "system" as const, label: "SYSFS", device: "/dev/vda1", fsType: "ext4" };
/** these tests mount no BOOTEXT: the image's /etc/machine-id stays (machine-id.test.ts has the rest) */
const NO_BOOTEXT = { readOnly: false };

describe("mount plans", () => {
  test("a slot: its partition read-only at its own place, then its image at /sysroot", () => {
    expect(planRootMount(sysfs, DEFAULT_CONFIG)).toEqual([
      { kind: "mkdir", path: "/run/controller/slots/SYSFS" },
      {
        kind: "mount",
        // x-initrd.mount: the booted system's systemd leaves the slot its root sits on mounted until the final shutdown
        request: { kind: "filesystem", source: "/dev/vda1", target: "/run/controller/slots/SYSFS", fsType: "ext4", options: ["ro", "x-initrd.mount"] },
        purpose: "SYSFS slot partition",
      },
      { kind: "require-file", path: "/run/controller/slots/SYSFS/system.squashfs", missing: "SYSFS on /dev/vda1 has no system image system.squashfs (slot.image)" },
      {
        kind: "mount",
        request: { kind: "filesystem", source: "/run/controller/slots/SYSFS/system.squashfs", target: "/sysroot", fsType: "squashfs", options: ["ro", "loop"] },
        purpose: "system image from SYSFS",
      },
    ]);
  });

  test("a seeded tmpfs reads the image's folder through a private bind set aside, then drops it", () => {
    const entry = { enabled: true, size: "64m", mode: "0755", seed_from_image: true };
    expect(planTmpfs("/etc", "/sysroot/etc", entry, true)).toEqual([
      { kind: "mkdir", path: "/run/controller/staging/etc" },
      { kind: "mount", request: { kind: "bind", source: "/sysroot/etc", target: "/run/controller/staging/etc", private: true }, purpose: "the image's /etc, to seed its tmpfs" },
      {
        kind: "mount",
        request: { kind: "filesystem", source: "tmpfs", target: "/sysroot/etc", fsType: "tmpfs", options: ["nosuid", "nodev", "mode=0755", "size=64m"] },
        purpose: "tmpfs for /etc, seeded from the image",
      },
      { kind: "copy", from: "/run/controller/staging/etc", to: "/sysroot/etc" },
      { kind: "unmount", target: "/run/controller/staging/etc" },
    ]);
    expect(planTmpfs("/tmp", "/sysroot/tmp", { ...entry, seed_from_image: false }, false)).toHaveLength(1);
  });

  test("tmpfs entries: enabled ones only, parents first", () => {
    const config = {
      ...DEFAULT_CONFIG,
      tmpfs: {
        ...DEFAULT_CONFIG.tmpfs,
        "/var/log/app": { enabled: true, size: "1m", mode: "0755", seed_from_image: false },
        "/tmp": { enabled: false, size: "1m", mode: "1777", seed_from_image: false },
      },
    };
    expect(orderTmpfs(config).map(([path]) => path)).toEqual(["/etc", "/var/log", "/var/log/app"]);
  });

  test("mount(8) argv for each kind of request", () => {
    expect(mountArgv({ kind: "filesystem", source: "tmpfs", target: "/t", fsType: "tmpfs", options: [] })).toEqual(["mount", "-t", "tmpfs", "tmpfs", "/t"]);
    expect(mountArgv({ kind: "filesystem", source: "/i", target: "/t", fsType: "squashfs", options: ["ro", "loop"] })).toEqual(["mount", "-t", "squashfs", "-o", "ro,loop", "/i", "/t"]);
    expect(mountArgv({ kind: "bind", source: "/a", target: "/b" })).toEqual(["mount", "--bind", "/a", "/b"]);
    expect(mountArgv({ kind: "bind", source: "/a", target: "/b", private: true })).toEqual(["mount", "--bind", "--make-private", "/a", "/b"]);
  });

  test("blkid -o export, escaped values and devices without a filesystem", () => {
    const output = "DEVNAME=/dev/vda1\nLABEL=SYSFS\nUUID=1\nTYPE=ext4\n\nDEVNAME=/dev/vda2\nLABEL=my\\ disk\\=x\nTYPE=ext4\n\nDEVNAME=/dev/vdb\nPTTYPE=gpt\n";
    expect(parseBlkidExport(output)).toEqual([
      { device: "/dev/vda1", label: "SYSFS", fsType: "ext4" },
      { device: "/dev/vda2", label: "my disk=x", fsType: "ext4" },
      { device: "/dev/vdb" },
    ]);
    expect(parseBlkidExport("")).toEqual([]);
  });
});

describe("mounts stage", () => {
  test("the aside bind is gone once the tmpfs is seeded", async () => {
    const fake = labMachine();
    const result = await runMountsStage(fake, memoryLogger().log, DEFAULT_CONFIG, [sysfs], NO_BOOTEXT);
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
    const result = await runMountsStage(fake, log, config, [sysfs], NO_BOOTEXT);
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
    const result = await runMountsStage(fake, memoryLogger().log, DEFAULT_CONFIG, [sysfs, backup], NO_BOOTEXT);
    expect(result.booted).toBeUndefined();
    expect(result.failedSlots.map((f) => f.candidate.label)).toEqual(["SYSFS", "BACKUPFS"]);
    expect(result.tmpfs).toEqual([]);
  });
});
