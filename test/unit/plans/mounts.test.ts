import { describe, expect, test } from "bun:test";
import { DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { orderTmpfs, planRootMount, planTmpfs } from "../../../controller/plans/mounts.ts";

const sysfs = { role: "system" as const, label: "SYSFS", device: "/dev/vda1", fsType: "ext4" };

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
});
