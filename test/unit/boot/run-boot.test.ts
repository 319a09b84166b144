import { describe, expect, test } from "bun:test";
import { processStartUptime } from "../../../controller/boot/boot-start.ts";
import { countSubprocesses, describeSubprocesses } from "../../../controller/boot/report.ts";
import { isInitramfs, runBoot } from "../../../controller/boot/run-boot.ts";
import { labMachine } from "../../fake-machine.ts";
import { FakeSystem } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

describe("controller boot over the fake machine", () => {
  test("boots SYSFS: image read-only at /sysroot, tmpfs mounts, handoff files, report", async () => {
    const fake = labMachine();
    const { log, sink } = memoryLogger();
    const { outcome, report } = await runBoot(fake, log);
    expect(outcome).toBe("handed-off");

    expect(fake.mounts.map((m) => [m.target, m.fsType, m.readOnly])).toEqual([
      ["/run/controller/bootext", "ext4", false],
      ["/run/controller/slots/SYSFS", "ext4", true],
      ["/sysroot", "squashfs", true],
      ["/sysroot/etc", "tmpfs", false],
      ["/sysroot/tmp", "tmpfs", false],
      ["/sysroot/var/log", "tmpfs", false],
    ]);
    // /etc is writable and holds the image's files; / is not writable
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-a");
    await fake.writeText("/sysroot/etc/probe", "x");
    await expect(fake.writeText("/sysroot/probe", "x")).rejects.toThrow("EROFS");

    expect(fake.peek("/run/controller/handoff.env")).toBe("CONTROLLER_INIT=/sbin/init\n");
    expect(fake.peek("/etc/cmdline.d/95-controller-init.conf")).toBe("real_init=/sbin/init\n");
    const written = JSON.parse(fake.peek("/run/controller/report.json") ?? "{}");
    expect(written.outcome).toBe("handed-off");
    expect(written.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda1", role: "system" });
    expect(written.kernelUptimeAtStart).toBe(3.14);
    expect(written.stages.map((s: { stage: string }) => s.stage)).toEqual([
      "cmdline",
      "config",
      "disks",
      "bootext",
      "heddle",
      "slots",
      "health",
      "network",
      "check",
      "mounts",
      "overmounts",
      "attempt",
      "kernel",
      "handoff",
    ]);
    expect(report.decisions).toEqual([
      "heddle: no updates: booting the installed system",
      "update: no update servers configured (update.servers): booting the local system",
      "boot SYSFS on /dev/vda1",
      "booted SYSFS (system) from /dev/vda1",
      "kernel: boot-on: SYSFS on /dev/vda1 carries no kernel of its own: it boots on the running kernel, as before",
      "init /sbin/init (boot.real_init from built-in defaults)",
    ]);
    expect(report.config.provenance["labels.system"]).toBe("built-in defaults");
    // every stage says something, with the one prefix
    for (const stage of ["cmdline", "config", "disks", "bootext", "heddle", "slots", "check", "health", "mounts", "overmounts", "kernel", "handoff"]) {
      expect(sink.consoleLines.some((line) => line.startsWith(`controller: ${stage}: `))).toBe(true);
    }
    expect(sink.kmsgLines.length).toBeGreaterThanOrEqual(sink.consoleLines.length);
    // every subprocess the boot started, counted in the report and on the "done in" line
    expect(written.subprocesses).toEqual(countSubprocesses(fake.subprocesses()));
    expect(written.subprocesses.count).toBe(fake.subprocesses().length);
    expect(written.subprocesses.count).toBeGreaterThan(0);
    const done = sink.consoleLines.find((line) => line.startsWith("controller: done in "));
    expect(done).toMatch(new RegExp(`^controller: done in \\d+ ms, ${written.subprocesses.count} subprocesses \\(.+\\); report in /run/controller/report.json$`));
  });

  test("no SYSFS: BACKUPFS boots, loudly, and the report says why", async () => {
    const fake = labMachine({ labels: ["BACKUPFS", "BOOTEXT"], cmdline: "root=controller controller.timeouts.devices_seconds=2" });
    const { log, sink } = memoryLogger();
    const { outcome, report } = await runBoot(fake, log);
    expect(outcome).toBe("handed-off");
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-b");
    expect(report.boot.booted?.label).toBe("BACKUPFS");
    expect(sink.text()).toContain("BOOTING THE BACKUP SYSTEM BACKUPFS on /dev/vda1");
    expect(report.notices.some((n) => n.message.includes("no partition is labelled SYSFS"))).toBe(true);
    expect(report.config.provenance["timeouts.devices_seconds"]).toBe("cmdline:controller.timeouts.devices_seconds");
    expect(fake.now()).toBeGreaterThanOrEqual(2000);
  });

  test("timeouts.command_seconds limits every helper command, from the layer that set it", async () => {
    const fake = labMachine({ bootext: { "config.d/10-slow.toml": "[timeouts]\ncommand_seconds = 600\n" } });
    await runBoot(fake, memoryLogger().log);
    expect(fake.commandTimeoutMs).toBe(600_000);
    const overridden = labMachine({ cmdline: "root=controller controller.timeouts.command_seconds=9" });
    await runBoot(overridden, memoryLogger().log);
    expect(overridden.commandTimeoutMs).toBe(9_000);
  });

  test("a SYSFS without its image falls back to BACKUPFS", async () => {
    // SYSFS is there but holds no system.squashfs
    const broken = labMachine({ labels: ["BACKUPFS", "BOOTEXT"] }).addDevice({ device: "/dev/vdb1", label: "SYSFS", fsType: "ext4" }, { "lost+found": { dir: true } });
    const { log, sink } = memoryLogger();
    const { report } = await runBoot(broken, log);
    expect(report.boot.booted?.label).toBe("BACKUPFS");
    expect(report.boot.failedSlots).toEqual([
      { candidate: { role: "system", label: "SYSFS", device: "/dev/vdb1", fsType: "ext4" }, error: "SYSFS on /dev/vdb1 has no system image system.squashfs (slot.image)" },
    ]);
    expect(sink.text()).toContain("ERROR: Cannot boot SYSFS on /dev/vdb1: SYSFS on /dev/vdb1 has no system image");
  });

  test("nothing bootable: exit path, a message listing what was seen, and a report", async () => {
    const fake = labMachine({ labels: ["DATA"], cmdline: "root=controller controller.timeouts.devices_seconds=1" });
    const { log, sink } = memoryLogger();
    const { outcome, report } = await runBoot(fake, log);
    expect(outcome).toBe("nothing-bootable");
    expect(sink.text()).toContain("ERROR: NOTHING TO BOOT.");
    expect(sink.text()).toContain("Filesystems seen: /dev/vda1 (ext4, label DATA).");
    expect(JSON.parse(fake.peek("/run/controller/report.json") ?? "{}").outcome).toBe("nothing-bootable");
    expect(report.stages.map((s) => s.stage)).toEqual(["cmdline", "config", "disks", "bootext", "heddle", "slots", "health", "network", "check", "mounts"]);
    expect(fake.mounts).toEqual([]);
  });

  test("broken TOML on BOOTEXT: the boot goes on with the defaults, the error is on the console and in the report", async () => {
    const fake = labMachine({
      bootext: { "config.d/20-site.toml": "[boot]\nreal_init = \n", "config.d/30-ok.toml": '[boot]\nreal_init = "/sbin/alt-init"\n' },
    });
    const { log, sink } = memoryLogger();
    const { outcome, report } = await runBoot(fake, log);
    expect(outcome).toBe("handed-off");
    expect(sink.text()).toContain("ERROR: bootext:config.d/20-site.toml: TOML syntax error at line 2");
    expect(report.config.layers.find((l) => l.source === "bootext:config.d/20-site.toml")?.status).toBe("rejected");
    // the good file still counts
    expect(report.handoff?.init).toEqual({ path: "/sbin/alt-init", source: "boot.real_init from bootext:config.d/30-ok.toml" });
  });

  test("BOOTEXT that cannot be mounted: no site config, no overmounts, the boot goes on", async () => {
    const fake = labMachine();
    fake.failingMountTargets.add("/run/controller/bootext");
    const { log, sink } = memoryLogger();
    const { outcome } = await runBoot(fake, log);
    expect(outcome).toBe("handed-off");
    expect(sink.text()).toContain("WARNING: Cannot mount BOOTEXT on /dev/vda3");
  });

  test("a stage that throws is logged, timed as failed, and replaced by its safe result", async () => {
    const fake = labMachine();
    fake.listBlockDevices = async () => {
      throw new Error("blkid: cannot open /proc/partitions");
    };
    const { log, sink } = memoryLogger();
    const { outcome, report } = await runBoot(fake, log);
    expect(outcome).toBe("nothing-bootable");
    expect(report.stages.find((s) => s.stage === "disks")).toMatchObject({ outcome: "failed", error: "blkid: cannot open /proc/partitions" });
    expect(sink.text()).toContain("controller: disks: ERROR: stage disks failed: blkid: cannot open /proc/partitions; going on without it");
  });

  test("an unreadable /proc/cmdline fails its stage, not the boot", async () => {
    const fake = labMachine();
    fake.readText = (async (path: string) => {
      if (path === "/proc/cmdline") throw new Error("EIO: cannot read");
      return "";
    }) as typeof fake.readText;
    const { log } = memoryLogger();
    const { report } = await runBoot(fake, log);
    expect(report.stages[0]).toMatchObject({ stage: "cmdline", outcome: "failed", error: "EIO: cannot read" });
  });

  test("real_init= on the cmdline beats config.d; a missing one falls back with a warning", async () => {
    const good = labMachine({ cmdline: "root=controller real_init=/sbin/alt-init" });
    expect((await runBoot(good, memoryLogger().log)).report.handoff?.init).toEqual({ path: "/sbin/alt-init", source: "cmdline real_init=" });
    expect(good.peek("/run/controller/handoff.env")).toBe("CONTROLLER_INIT=/sbin/alt-init\n");

    const missing = labMachine({ cmdline: "root=controller real_init=/sbin/nope" });
    const { log, sink } = memoryLogger();
    const { report } = await runBoot(missing, log);
    expect(report.handoff?.init.path).toBe("/sbin/init");
    expect(sink.text()).toContain("WARNING: Cannot use /sbin/nope (cmdline real_init=) as init: it does not exist in the new root");
  });

  test("shell on the cmdline: a console shell after the report is written, then the boot goes on", async () => {
    const fake = labMachine({ cmdline: "root=controller shell" });
    fake.consoleExitStatus = 3;
    const { report } = await runBoot(fake, memoryLogger().log);
    expect(fake.commands).toContainEqual(["<console>", "sh", "-i"]);
    expect(report.handoff?.shell).toEqual({ exitStatus: 3 });
  });
});

describe("isInitramfs", () => {
  test("true in a dracut initramfs, false in a booted system, where `controller boot` must not touch /sysroot", async () => {
    expect(await isInitramfs(labMachine())).toBe(true);
    expect(await isInitramfs(new FakeSystem())).toBe(false);
  });
});

describe("the boot's own cost, in the report", () => {
  test("subprocesses are counted by program, most frequent first on the console", () => {
    const count = countSubprocesses(["mount", "e2fsck", "mount", "blkid", "e2fsck", "mount"]);
    expect(count).toEqual({ count: 6, programs: { mount: 3, e2fsck: 2, blkid: 1 } });
    expect(describeSubprocesses(count)).toBe("6 subprocesses (mount 3, e2fsck 2, blkid 1)");
    expect(describeSubprocesses(countSubprocesses(["blkid"]))).toBe("1 subprocess (blkid 1)");
    expect(describeSubprocesses(countSubprocesses([]))).toBe("0 subprocesses");
  });

  test("the process's start comes from /proc/self/stat's starttime, also when the command name has spaces and parentheses", () => {
    const after = "S 1 1 1 0 -1 4194560 1000 0 0 0 10 5 0 0 20 0 9 0 2665 1000000 100";
    expect(processStartUptime(`412 (controller) ${after}`)).toBe(26.65);
    expect(processStartUptime(`412 (a b) c) ${after}`)).toBe(26.65);
    expect(processStartUptime("412 (controller) S 1")).toBeUndefined();
  });
});
