// Diskless boots: the command line and config.d choose them, and whole boots
// over the fake prove the disks are never written.

import { describe, expect, test } from "bun:test";
import { formatStatus } from "../../../controller/boot/report-text.ts";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { runLifecycleCommand } from "../../../controller/cli/lifecycle.ts";
import { parseCmdline } from "../../../controller/config/cmdline.ts";
import { cmdlineLayers, parseConfigLayer, resolveConfig } from "../../../controller/config/layers.ts";
import { connectToNetwork, labMachine, type MachineOptions } from "../../fake-machine.ts";
import { OTHER_KEYS, PUBLIC_KEY, publish, SERVER } from "../../fake-repo.ts";
import type { FakeSystem, Tree } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

describe("the command line and config.d choose it", () => {
  const modeOf = (cmdline: string) => {
    const parsed = parseCmdline(cmdline);
    const resolved = resolveConfig(cmdlineLayers(parsed.configOverrides));
    return { mode: resolved.config.diskless.mode, from: resolved.provenance["diskless.mode"], warnings: parsed.warnings, problems: resolved.problems };
  };

  test("the bare flag controller.diskless is mode always; =1 too; =0 leaves it to config.d", () => {
    expect(modeOf("root=controller controller.diskless")).toEqual({ mode: "always", from: "cmdline:controller.diskless", warnings: [], problems: [] });
    expect(modeOf("controller.diskless=yes").mode).toBe("always");
    expect(modeOf("controller.diskless=0")).toMatchObject({ mode: "off", warnings: [] });
  });

  test("a bad flag value is a warning and no diskless boot", () => {
    expect(modeOf("controller.diskless=maybe")).toMatchObject({
      mode: "off",
      warnings: ['controller.diskless="maybe": expected controller.diskless alone or controller.diskless= one of 1, yes, true, on, 0, no, false, off; using false'],
    });
  });

  test("controller.diskless.mode=VALUE is a config override like any other, checked like one", () => {
    expect(modeOf("controller.diskless.mode=when-no-slots")).toMatchObject({ mode: "when-no-slots", from: "cmdline:controller.diskless.mode", problems: [] });
    const bad = modeOf("controller.diskless.mode=sometimes");
    expect(bad.mode).toBe("off");
    expect(bad.problems).toEqual(['cmdline:controller.diskless.mode: key diskless.mode: expected one of "off", "always" or "when-no-slots", got "sometimes"']);
    expect(modeOf("controller.diskless.ram_margin_mib=-1").problems[0]).toContain("key diskless.ram_margin_mib: expected an integer from 0 to 1048576, got -1");
  });

  test("diskless.dir must stay under /run/controller/, which moves into the booted system", () => {
    for (const dir of ["/tmp/diskless", "/run/controller", "/run/controller/../etc", "relative", "/run/controller/a/"]) {
      const layer = parseConfigLayer("initramfs", "88-diskless.toml", `[diskless]\ndir = ${JSON.stringify(dir)}\n`);
      expect(layer).toMatchObject({ status: "rejected" });
    }
    expect(parseConfigLayer("initramfs", "88-diskless.toml", '[diskless]\ndir = "/run/controller/ram"\n')).toMatchObject({ status: "parsed" });
  });
});

// ---- whole boots ------------------------------------------------------------

const UPDATE_CONFIG: Tree = { "60-update.toml": `[update]\nservers = ["${SERVER}"]\ntrusted_keys = ["${PUBLIC_KEY}"]\n` };
const PLENTY = `MemTotal:        4000000 kB\nMemAvailable:    3000000 kB\n`;

function machine(options: MachineOptions & { meminfo?: string | null } = {}): FakeSystem {
  const fake = connectToNetwork(labMachine({ cmdline: "root=controller console=ttyS0 controller.diskless", initramfsConfig: UPDATE_CONFIG, ...options }));
  if (options.meminfo !== null) fake.addTree("/proc", { meminfo: options.meminfo ?? PLENTY });
  return fake;
}

async function boot(fake: FakeSystem) {
  const { log, sink } = memoryLogger();
  const before = ["/dev/vda1", "/dev/vda2", "/dev/vda3"].map((device) => [fake.device(device), fake.deviceTree(device)]);
  const result = await runBoot(fake, log);
  // whatever happened, no disk was written, mounted, checked or relabelled
  expect(["/dev/vda1", "/dev/vda2", "/dev/vda3"].map((device) => [fake.device(device), fake.deviceTree(device)])).toEqual(before);
  expect(fake.mounts.filter((mount) => mount.source.startsWith("/dev/"))).toEqual([]);
  expect(fake.commands.filter(([program]) => program === "e2fsck" || program === "e2label")).toEqual([]);
  expect(fake.labelChanges).toEqual([]);
  expect(fake.peek("/run/controller/slots")).toBeUndefined();
  return { ...result, text: sink.text() };
}

const imageFetches = (fake: FakeSystem) => fake.httpRequests.filter((url) => url.includes("/images/"));

describe("a diskless boot", () => {
  test("an image carrying its own kernel: the bootstrap kernel kexecs it, checked against the signed record; the kexec'd boot runs it from RAM", async () => {
    const k2 = { release: "6.1.0-57-amd64", build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)" };
    const fake = machine();
    fake.addTree("/proc/sys/kernel", { osrelease: "6.1.0-50-amd64\n", version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.176-1 (2026-05-01)\n" });
    publish(fake, { version: "2.0", kernel: k2 });
    const { outcome, report } = await boot(fake);
    expect(fake.kexecBooted).toEqual([expect.objectContaining({ kernel: "/run/controller/kernel-switch/vmlinuz", cmdline: expect.stringContaining("controller.diskless rd.controller.kexec=slot-kernel") })]);
    // the fake's kexec returns: the boot goes on from RAM, on the bootstrap kernel, saying so
    expect(outcome).toBe("handed-off");
    expect(report.kernel).toMatchObject({ outcome: "kexec-failed", slotKernel: { release: k2.release } });
    expect(report.kernel?.errors[0]).toContain("Cannot kexec the diskless image (version 2.0)'s kernel 6.1.0-57-amd64: kexec --exec returned");

    const kexecd = machine({ cmdline: "root=controller console=ttyS0 controller.diskless rd.controller.kexec=slot-kernel" });
    kexecd.addTree("/proc/sys/kernel", { osrelease: `${k2.release}\n`, version: `${k2.build}\n` });
    publish(kexecd, { version: "2.0", kernel: k2 });
    const second = await boot(kexecd);
    expect(second.outcome).toBe("handed-off");
    expect(kexecd.kexecBooted).toEqual([]);
    expect(second.report.kernel).toMatchObject({ outcome: "boot-on", errors: [], cameByKexec: { marker: "slot-kernel" } });
    expect(kexecd.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
  });

  test("runs the published system from RAM, read-only with tmpfs on top, and touches no disk", async () => {
    const fake = machine();
    publish(fake, { version: "2.0", fleetConfig: { "50-fleet.toml": '[tmpfs."/var/log"]\nsize = "24m"\n' } });
    const { outcome, report, text } = await boot(fake);
    expect(outcome).toBe("handed-off");
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
    expect(fake.mountAt("/sysroot")).toEqual({ target: "/sysroot", source: "/run/controller/diskless/system.squashfs", fsType: "squashfs", readOnly: true });
    expect(fake.mountAt("/run/controller/diskless")).toEqual({ target: "/run/controller/diskless", source: "tmpfs", fsType: "tmpfs", readOnly: true });
    expect(fake.commands).toContainEqual(["mount", "-o", "remount,ro", "/run/controller/diskless"]);
    expect(report.stages.map((stage) => stage.stage)).toEqual(["cmdline", "config", "disks", "network", "check", "server-config", "diskless", "kernel", "handoff"]);
    expect(report.diskless).toMatchObject({
      why: 'diskless.mode is "always" (from cmdline:controller.diskless)',
      status: "running-from-ram",
      version: "2.0",
      image: "/run/controller/diskless/system.squashfs",
      imageBytes: 5000,
      ram: { imageMiB: 1, marginMiB: 256, availableMiB: 2929, tmpfsMiB: 2 },
      bytesFetched: 5000,
      resumes: 0,
    });
    expect(report.update.check).toMatchObject({ decision: "install", manifest: { version: "2.0" } });
    expect(report.boot.booted).toBeUndefined();
    expect(report.partitions.map((partition) => partition.label)).toEqual(["SYSFS", "BACKUPFS", "BOOTEXT"]);
    expect(report.tmpfs.map((entry) => [entry.path, entry.status])).toEqual([["/etc", "mounted"], ["/tmp", "mounted"], ["/var/log", "mounted"]]);
    // the server's config applies to this boot, and is kept nowhere
    expect(report.mounts.find((mount) => mount.target === "/sysroot/var/log")?.options).toContain("size=24m");
    expect(report.config.provenance['tmpfs."/var/log".size']).toBe("server:50-fleet.toml");
    expect(report.handoff?.init.path).toBe("/sbin/init");
    expect(fake.peek("/etc/cmdline.d/95-controller-init.conf")).toBe("real_init=/sbin/init\n");
    expect(JSON.parse(fake.peek("/run/controller/report.json") ?? "{}")).toMatchObject({ outcome: "handed-off", diskless: { status: "running-from-ram" } });
    expect(text).toContain("running from RAM: diskless.mode is \"always\"");
    expect(text).toContain("controller: diskless: version 2.0 verified in RAM (0.0 MB fetched) and mounted read-only at /sysroot");
  });

  test("an image larger than RAM allows is refused before its download: nothing boots, and the console says how much it needs", async () => {
    const fake = machine({ meminfo: "MemTotal: 1000000 kB\nMemAvailable: 262144 kB\n" });
    publish(fake, { version: "2.0" });
    const { outcome, report, text } = await boot(fake);
    expect(outcome).toBe("nothing-bootable");
    expect(imageFetches(fake)).toEqual([]);
    expect(fake.mountAt("/sysroot")).toBeUndefined();
    const problem = "Cannot run version 2.0 from RAM: the image needs 1 MiB plus a margin of 256 MiB (diskless.ram_margin_mib), but only 256 MiB is available (MemAvailable in /proc/meminfo)";
    expect(report.diskless).toMatchObject({ status: "refused", detail: problem, ram: { imageMiB: 1, availableMiB: 256 } });
    expect(text).toContain("NOTHING TO BOOT FROM RAM.");
    expect(text).toContain(problem);
    expect(report.decisions).toEqual(expect.arrayContaining([`nothing bootable: ${problem}`]));
    expect(JSON.parse(fake.peek("/run/controller/report.json") ?? "{}")).toMatchObject({ outcome: "nothing-bootable" });
  });

  test("a margin of 0 from config.d lets the same image run", async () => {
    const fake = machine({ meminfo: "MemAvailable: 262144 kB\n", initramfsConfig: { ...UPDATE_CONFIG, "88-diskless.toml": "[diskless]\nram_margin_mib = 0\n" } });
    publish(fake, { version: "2.0" });
    expect((await boot(fake)).outcome).toBe("handed-off");
  });

  test("/proc/meminfo missing or malformed: refused, nothing boots", async () => {
    for (const meminfo of [null, "MemAvailable: plenty\n"]) {
      const fake = machine({ meminfo });
      publish(fake, { version: "2.0" });
      const { outcome, report } = await boot(fake);
      expect(outcome).toBe("nothing-bootable");
      expect(report.diskless?.status).toBe("refused");
      expect(report.diskless?.detail).toStartWith("Cannot run version 2.0 from RAM: ");
      expect(report.diskless?.detail).toContain("/proc/meminfo");
      expect(imageFetches(fake)).toEqual([]);
    }
  });

  test("an image corrupted on the server: nothing boots, the RAM is given back", async () => {
    const fake = machine();
    const published = publish(fake, { version: "2.0" });
    const corrupt = published.imageBytes.slice();
    corrupt[2500] = (corrupt[2500] ?? 0) ^ 0xff;
    fake.http.set(published.imageUrl, { body: corrupt });
    const { outcome, report, text } = await boot(fake);
    expect(outcome).toBe("nothing-bootable");
    expect(report.diskless?.status).toBe("failed");
    expect(report.diskless?.detail).toMatch(/^Cannot run version 2\.0 from RAM: the image from \S+, read back from RAM \(\/run\/controller\/diskless\): the image has sha512 [0-9a-f]{16}…, the manifest signs [0-9a-f]{16}…$/);
    expect(text).toContain("NOTHING TO BOOT FROM RAM.");
    expect(fake.mountAt("/sysroot")).toBeUndefined();
    expect(fake.mountAt("/run/controller/diskless")).toBeUndefined();
    expect(report.mounts).toEqual([]);
  });

  test("a download that keeps breaking: resumed, then given up; nothing boots", async () => {
    const fake = machine();
    const published = publish(fake, { version: "2.0" });
    fake.http.set(published.imageUrl, { body: published.imageBytes, dropAfterBytes: 0, dropTimes: 100 });
    const { outcome, report } = await boot(fake);
    expect(outcome).toBe("nothing-bootable");
    expect(report.diskless).toMatchObject({ status: "failed", resumes: 6 });
    expect(report.diskless?.detail).toContain("gave up after 5 resumes (update.resume_attempts)");
  });

  test("a dropped connection is resumed and the image still verifies", async () => {
    const fake = machine();
    const published = publish(fake, { version: "2.0" });
    fake.http.set(published.imageUrl, { body: published.imageBytes, dropAfterBytes: 2000, dropTimes: 1 });
    const { outcome, report } = await boot(fake);
    expect(outcome).toBe("handed-off");
    expect(report.diskless).toMatchObject({ status: "running-from-ram", resumes: 1 });
  });

  test("a server that answers 500 for the image: nothing boots", async () => {
    const fake = machine();
    const published = publish(fake, { version: "2.0" });
    fake.http.set(published.imageUrl, { body: new Uint8Array(), status: 500 });
    const { outcome, report } = await boot(fake);
    expect(outcome).toBe("nothing-bootable");
    expect(report.diskless?.detail).toContain("the server answered HTTP 500");
  });

  test("nothing verified, nothing boots: unknown key, expired, no network, no servers, config files that fail", async () => {
    const unknownKey = machine();
    publish(unknownKey, { version: "2.0", signWith: OTHER_KEYS });
    const expired = machine();
    publish(expired, { version: "2.0", expires: "2025-12-15T00:00:00.000Z" });
    const offline = labMachine({ cmdline: "root=controller controller.diskless", initramfsConfig: UPDATE_CONFIG }).addTree("/proc", { meminfo: PLENTY });
    const noServers = machine({ initramfsConfig: {} });
    const badConfig = machine();
    publish(badConfig, { version: "2.0", fleetConfig: { "50-fleet.toml": "x = 1\n" } });
    for (const key of [...badConfig.http.keys()].filter((url) => url.includes("/config/"))) badConfig.http.set(key, { body: new TextEncoder().encode("tampered\n") });
    const cases: [FakeSystem, string][] = [
      [unknownKey, "no verified system to run from RAM: nothing the update servers serve may be installed"],
      [expired, "no verified system to run from RAM: nothing the update servers serve may be installed"],
      [offline, "no verified system to run from RAM: no network"],
      [noServers, "no verified system to run from RAM: no update servers configured (update.servers)"],
      [badConfig, "version 2.0 is not run: its config files could not be fetched"],
    ];
    for (const [fake, why] of cases) {
      const { outcome, report, text } = await boot(fake);
      expect(outcome).toBe("nothing-bootable");
      expect(report.diskless?.detail).toStartWith(why);
      expect(text).toContain(why);
      expect(imageFetches(fake)).toEqual([]);
      expect(fake.mountAt("/sysroot")).toBeUndefined();
    }
  });

  test("when-no-slots: a machine without slot partitions runs from RAM, after waiting for them", async () => {
    const config = { ...UPDATE_CONFIG, "88-diskless.toml": '[diskless]\nmode = "when-no-slots"\n' };
    const fake = machine({ cmdline: "root=controller", labels: ["DATA"], initramfsConfig: config });
    publish(fake, { version: "2.0" });
    const { outcome, report } = await boot(fake);
    expect(outcome).toBe("handed-off");
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
    expect(report.diskless?.why).toBe(
      'diskless.mode is "when-no-slots" (from initramfs:/etc/controller/config.d/88-diskless.toml) and there is no usable SYSFS or BACKUPFS partition; filesystems seen: /dev/vda1 (ext4, label DATA)',
    );
    expect(report.stages.map((stage) => stage.stage)).toEqual(["cmdline", "config", "disks", "network", "check", "server-config", "diskless", "kernel", "handoff"]);
  });

  test("BOOTEXT's config.d cannot choose it: the decision is made before any disk is mounted", async () => {
    const fake = machine({ cmdline: "root=controller", bootext: { "config.d/88-diskless.toml": '[diskless]\nmode = "always"\n' } });
    publish(fake, { version: "2.0" });
    const { log } = memoryLogger();
    const { report } = await runBoot(fake, log);
    expect(report.config.values.diskless.mode).toBe("always");
    expect(report.diskless).toBeUndefined();
    expect(report.boot.booted).toMatchObject({ label: "SYSFS" });
  });

  test("when-no-slots with slots: the usual disk boot, no diskless in the report", async () => {
    const fake = machine({ cmdline: "root=controller controller.diskless.mode=when-no-slots" });
    publish(fake, { version: "2.0" });
    const { log } = memoryLogger();
    const { outcome, report } = await runBoot(fake, log);
    expect(outcome).toBe("handed-off");
    expect(report.diskless).toBeUndefined();
    expect(report.boot.booted).toMatchObject({ label: "SYSFS" });
  });
});

describe("in the system that runs from RAM", () => {
  test("controller status says so, and mark-good and mark-shutdown have nothing to record: success, no remount", async () => {
    const fake = machine();
    publish(fake, { version: "2.0" });
    const { report } = await boot(fake);
    const status = formatStatus(report);
    expect(status).toContain("booted: version 2.0 from RAM (diskless), image /run/controller/diskless/system.squashfs, init /sbin/init");
    expect(status).toContain("diskless: running-from-ram: version 2.0 verified in RAM");
    expect(status).toContain('  because diskless.mode is "always" (from cmdline:controller.diskless)');
    const commandsBefore = fake.commands.length;
    for (const command of ["mark-good", "mark-shutdown"]) {
      const out: string[] = [];
      const err: string[] = [];
      expect(await runLifecycleCommand([command], fake, { out: (text) => out.push(text), err: (text) => err.push(text) })).toBe(0);
      expect(out.join("")).toBe("controller: nothing to record: this system runs from RAM (a diskless boot), and no slot keeps its boots\n");
      expect(err).toEqual([]);
    }
    expect(fake.commands.length).toBe(commandsBefore);
  });

  test("after a refused diskless boot, status says why nothing booted", async () => {
    const fake = machine({ meminfo: "MemAvailable: 1024 kB\n" });
    publish(fake, { version: "2.0" });
    const status = formatStatus((await boot(fake)).report);
    expect(status).toContain("booted: nothing");
    expect(status).toContain("diskless: refused: Cannot run version 2.0 from RAM: the image needs 1 MiB plus a margin of 256 MiB");
  });
});
