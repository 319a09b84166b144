// Diskless boots, the pure decisions: when, how much RAM, which mounts.

import { describe, expect, test } from "bun:test";
import { DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { disklessReason, parseMemAvailable, planRam, planRamDisk, planRootFromRam } from "../../../controller/plans/diskless.ts";

const MiB = 1024 * 1024;

describe("parseMemAvailable", () => {
  test("reads MemAvailable in kB as bytes", () => {
    expect(parseMemAvailable("MemTotal:        1000000 kB\nMemFree:          500000 kB\nMemAvailable:     812345 kB\n")).toEqual({ ok: true, bytes: 812345 * 1024 });
    expect(parseMemAvailable("MemAvailable: 0 kB")).toEqual({ ok: true, bytes: 0 });
  });

  test("a missing or malformed line is a problem that names the file and what it got", () => {
    expect(parseMemAvailable("")).toEqual({ ok: false, problem: "/proc/meminfo has no MemAvailable line" });
    expect(parseMemAvailable("MemTotal: 1000 kB\nMemFree: 10 kB\n")).toEqual({ ok: false, problem: "/proc/meminfo has no MemAvailable line" });
    for (const line of ["MemAvailable: lots kB", "MemAvailable: 1000 MB", "MemAvailable: -5 kB", "MemAvailable:", "MemAvailable: 1.5 kB", "MemAvailable: 9999999999999999 kB"]) {
      expect(parseMemAvailable(`MemTotal: 5 kB\n${line}\n`)).toEqual({ ok: false, problem: `/proc/meminfo: expected "MemAvailable: NUMBER kB", got ${JSON.stringify(line)}` });
    }
  });
});

describe("planRam", () => {
  const image = 100 * MiB + 1;
  test("exactly the margin left over is enough; one byte less is refused, naming every number", () => {
    expect(planRam("2.0", image, 256, image + 256 * MiB)).toEqual({ ok: true, imageMiB: 101, marginMiB: 256, availableMiB: 356, tmpfsMiB: 102 });
    expect(planRam("2.0", image, 256, image + 256 * MiB - 1)).toEqual({
      ok: false,
      imageMiB: 101,
      marginMiB: 256,
      availableMiB: 356,
      tmpfsMiB: 102,
      problem:
        "Cannot run version 2.0 from RAM: the image needs 101 MiB plus a margin of 256 MiB (diskless.ram_margin_mib), but only 356 MiB is available (MemAvailable in /proc/meminfo)",
    });
  });

  test("a margin of 0 needs just the image; no RAM at all fits nothing", () => {
    expect(planRam("1", 5000, 0, 5000).ok).toBe(true);
    expect(planRam("1", 5000, 0, 4999).ok).toBe(false);
    expect(planRam("1", 5000, 0, 0)).toMatchObject({ ok: false, imageMiB: 1, availableMiB: 0 });
  });

  test("a 2 GiB image on a 1 GiB machine is refused with what it needs", () => {
    const plan = planRam("big", 2048 * MiB, 256, 900 * MiB);
    expect(plan.ok).toBe(false);
    expect(plan.ok ? "" : plan.problem).toContain("the image needs 2048 MiB plus a margin of 256 MiB (diskless.ram_margin_mib), but only 900 MiB is available");
  });
});

test("the mount plans: a private tmpfs sized for the image, then the image read-only at /sysroot", () => {
  expect(planRamDisk("/run/controller/diskless", 102)).toEqual([
    { kind: "mkdir", path: "/run/controller/diskless" },
    {
      kind: "mount",
      request: { kind: "filesystem", source: "tmpfs", target: "/run/controller/diskless", fsType: "tmpfs", options: ["nosuid", "nodev", "noexec", "mode=0700", "size=102m"] },
      purpose: "tmpfs for the diskless image",
    },
  ]);
  expect(planRootFromRam("/run/controller/diskless/system.squashfs")).toEqual([
    { kind: "require-file", path: "/run/controller/diskless/system.squashfs", missing: "the diskless image /run/controller/diskless/system.squashfs is gone" },
    {
      kind: "mount",
      request: { kind: "filesystem", source: "/run/controller/diskless/system.squashfs", target: "/sysroot", fsType: "squashfs", options: ["ro", "loop"] },
      purpose: "system image from RAM",
    },
  ]);
});

describe("disklessReason", () => {
  const withMode = (mode: string) => ({ ...DEFAULT_CONFIG, diskless: { ...DEFAULT_CONFIG.diskless, mode } });
  const slots = [{ device: "/dev/vda1", label: "SYSFS", fsType: "ext4" }];
  const noSlots = [{ device: "/dev/vda1", label: "DATA", fsType: "ext4" }];

  test("off: never, whatever the disks hold", () => {
    expect(disklessReason(DEFAULT_CONFIG, {}, undefined)).toBeUndefined();
    expect(disklessReason(DEFAULT_CONFIG, {}, [])).toBeUndefined();
  });

  test("always: before the disks are looked at, naming where the mode came from", () => {
    expect(disklessReason(withMode("always"), { "diskless.mode": "cmdline:controller.diskless" }, undefined)).toBe('diskless.mode is "always" (from cmdline:controller.diskless)');
    expect(disklessReason(withMode("always"), {}, slots)).toBe('diskless.mode is "always" (from config)');
  });

  test("when-no-slots: only once the disks are listed, and only without a usable SYSFS or BACKUPFS", () => {
    const config = withMode("when-no-slots");
    expect(disklessReason(config, {}, undefined)).toBeUndefined();
    expect(disklessReason(config, {}, slots)).toBeUndefined();
    expect(disklessReason(config, {}, [{ device: "/dev/vda2", label: "BACKUPFS", fsType: "ext4" }])).toBeUndefined();
    expect(disklessReason(config, {}, noSlots)).toBe(
      'diskless.mode is "when-no-slots" (from config) and there is no usable SYSFS or BACKUPFS partition; filesystems seen: /dev/vda1 (ext4, label DATA)',
    );
    expect(disklessReason(config, {}, [])).toContain("filesystems seen: none");
    // a SYSFS that cannot be mounted as a slot is no slot
    expect(disklessReason(config, {}, [{ device: "/dev/vda1", label: "SYSFS", fsType: "vfat" }])).toContain("no usable SYSFS or BACKUPFS");
  });
});
