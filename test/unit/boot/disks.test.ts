import { describe, expect, test } from "bun:test";
import { runDisksStage } from "../../../controller/boot/disks.ts";
import { DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { FakeSystem } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

const config = { ...DEFAULT_CONFIG, timeouts: { ...DEFAULT_CONFIG.timeouts, devices_seconds: 10 } };

describe("disks stage", () => {
  test("loads the kernel modules and lists what is there at once", async () => {
    const fake = new FakeSystem().addDevice({ device: "/dev/vda1", label: "SYSFS", fsType: "ext4" });
    const { log, sink } = memoryLogger();
    expect(await runDisksStage(fake, log, config)).toEqual([{ device: "/dev/vda1", label: "SYSFS", fsType: "ext4" }]);
    expect(fake.loadedModules).toEqual(["loop", "squashfs", "ext4"]);
    expect(fake.now()).toBe(0);
    expect(sink.text()).toContain("filesystems seen after 0 ms: /dev/vda1 (ext4, label SYSFS)");
  });

  test("waits for a slow disk and stops waiting as soon as SYSFS shows up", async () => {
    const fake = new FakeSystem()
      .addDevice({ device: "/dev/vda3", label: "BOOTEXT", fsType: "ext4" }, {}, 0)
      .addDevice({ device: "/dev/sda1", label: "SYSFS", fsType: "ext4" }, {}, 4200);
    const { log, sink } = memoryLogger();
    const devices = await runDisksStage(fake, log, config);
    expect(devices.map((d) => d.label)).toEqual(["BOOTEXT", "SYSFS"]);
    expect(fake.now()).toBeGreaterThanOrEqual(4200);
    expect(fake.now()).toBeLessThan(5000);
    expect(sink.text()).toContain("waiting up to 10 s for a partition labelled SYSFS");
  });

  test("gives up at the timeout, says which labels it saw, and returns them", async () => {
    const fake = new FakeSystem().addDevice({ device: "/dev/vda2", label: "BACKUPFS", fsType: "ext4" });
    const { log, sink } = memoryLogger();
    const devices = await runDisksStage(fake, log, config);
    expect(devices.map((d) => d.label)).toEqual(["BACKUPFS"]);
    expect(fake.now()).toBe(10_000);
    expect(sink.text()).toContain(
      "WARNING: no partition labelled SYSFS appeared within 10 s (timeouts.devices_seconds); filesystems seen after 10000 ms: /dev/vda2 (ext4, label BACKUPFS)",
    );
  });

  test("a failing modprobe is a warning, not the end", async () => {
    const fake = new FakeSystem().addDevice({ device: "/dev/vda1", label: "SYSFS", fsType: "ext4" });
    fake.loadKernelModules = async () => {
      throw new Error("modprobe: FATAL: Module squashfs not found");
    };
    const { log, sink } = memoryLogger();
    expect(await runDisksStage(fake, log, config)).toHaveLength(1);
    expect(sink.text()).toContain("WARNING: Cannot load kernel modules loop, squashfs, ext4: modprobe: FATAL");
  });
});
