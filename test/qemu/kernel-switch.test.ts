// Issue 14 in QEMU: the whole OS as one signed update. The Debian test images
// (debian-fixtures.ts) carry their own kernel, modules and an initrd of this
// project's dracut module: debian-1.0 kernel K1, debian-2.0 kernel K2. The
// machine boots K1 and debian-1.0's initrd with QEMU's -kernel, as its
// bootloader would.
//
// (a) kexec: 1.0 on K1 updates to 2.0 on K2: the controller installs 2.0,
//     kexecs K2, and the second controller (2.0's) boots Debian 2.0 on K2:
//     a module only in the image loads, no unit fails, status says where the
//     boot came from. The machine reports to a fleet server: first the
//     channel offers 2.0 to 0 % of the machines, and the machine stays on 1.0
//     and appears on the page with 1.0 ("not in rollout"); then `controller
//     rollout --percent 100`, and its next boot takes 2.0, which the page shows.
// (e) kexec failing: SYSFS already runs 2.0, kexec_load is disabled (as under a
//     lockdown): the error names it and Debian 2.0 still starts, on K1, with the
//     loud warning that its modules do not fit.
// (b) reboot mode through GRUB, on a disk made by scripts/blank-disk.
// (c) the K2 system hangs before mark-good: with health.max_attempts = 1 the
//     next boot rolls back to 1.0, on K1.
// (d) a rollback by a health check: SYSFS's 2.0 image went bad on a machine
//     that boots K2; the image-hash check fails, BACKUPFS's 1.0 becomes SYSFS,
//     and its own kernel K1 is kexec'd.
// (f) diskless: a boot as PXE starts it (the bootstrap kernel K1 with
//     debian-1.0's initrd and the diskless command line; iPXE's own part is
//     pxe.test.ts's) fetches Debian 2.0 into RAM and kexecs its kernel K2; the
//     second controller fetches it again and Debian 2.0 runs from RAM on K2.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { summarizeBootReport } from "../../controller/fleet/boot-summary.ts";
import { parseGrubenv } from "../../controller/plans/grub-config.ts";
import { repoHandler } from "../../controller/update/dev-server.ts";
import { runCommand } from "../../qemu-harness/command.ts";
import { buildDisk } from "../../qemu-harness/disk.ts";
import { GUEST_FORWARD_ADDRESS } from "../../qemu-harness/qemu-args.ts";
import { parseTestMarkers, type TestMarkers } from "../../qemu-harness/test-markers.ts";
import { type VmOptions, withVm } from "../../qemu-harness/vm.ts";
import { blankDisk, bootextFile, type FleetRepo, markSysfsGood } from "./blank-disk-fixtures.ts";
import { DEBIAN, marker, publishDebianImages } from "./debian-fixtures.ts";
import { ARTIFACTS, disklessAppend, NO_NIC_WAIT, runFolder, SCENARIO_CMDLINE } from "./fixtures.ts";
import { startTestFleet, type TestFleet } from "./fleet-fixtures.ts";
import { MARKED_GOOD, slotFolder } from "./update-fixtures.ts";

/** A K1 boot, the update's download and check, the kexec, a second controller and Debian's systemd, under TCG on a busy host. */
const SCENARIO_BOOT_TIMEOUT_MS = 600_000;
const SHUTDOWN_TIMEOUT_MS = 180_000;
/** (f): the 235 MiB image in RAM, the kernel and initrd copied beside it for kexec, then Debian */
const DISKLESS_MEMORY_MIB = 2048;

interface World {
  /** where updateDisk's machine reports */
  readonly fleet: TestFleet;
  /** what the update server serves from now on: 1.0, 2.0, or 2.0 offered to 0 % of the machines */
  serve(repo: ServedRepo): void;
  readonly k1: string;
  readonly k2: string;
  readonly port: number;
  readonly publicKey: string;
  /** SYSFS debian-1.0 (signed record, marked good), BACKUPFS empty, BOOTEXT naming the server, key and fleet server, and holding UPDATE_MACHINE_ID; only (a) boots it */
  readonly updateDisk: string;
  /** SYSFS debian-2.0 (signed record, marked good), BACKUPFS debian-1.0, BOOTEXT without servers */
  readonly runningV2Disk: string;
  /** made by scripts/blank-disk from 1.0 (its own kernel K1 as GRUB's active pair) with --config 30-boot.toml: boot.kernel_switch = "reboot" */
  readonly grubDisk: string;
  /** as updateDisk, with health.max_attempts = 1: one boot without a mark-good makes a slot unhealthy */
  readonly oneAttemptDisk: string;
  /** SYSFS debian-2.0 with one byte of its image flipped (signed record, marked good), BACKUPFS debian-1.0 (marked good), BOOTEXT without servers */
  readonly badImageDisk: string;
}

type ServedRepo = "v1" | "v2" | "v2AtZero";

/** updateDisk's machine-id, on its BOOTEXT */
const UPDATE_MACHINE_ID = "5ca1ab1e0000400080000000000000a1";

let world: World;
beforeAll(async () => {
  const work = join(await runFolder(), "kernel-switch");
  await mkdir(work, { recursive: true });
  const { key, publicKey, v1, v2 } = await publishDebianImages(work);
  // (a)'s first boot: the same 2.0, its rollout lowered to 0 % as an admin does it (a copy of the repository, hard links for its files)
  const v2AtZero = join(work, "repo-v2-at-zero");
  await runCommand(["cp", "-al", v2.repo, v2AtZero]);
  await runCommand([ARTIFACTS.controller, "rollout", "--repo", v2AtZero, "--channel", "stable", "--percent", "0", "--key", `${key}.secret`]);

  const handlers: Record<ServedRepo, ReturnType<typeof repoHandler>> = {
    v1: repoHandler(v1.repo, () => undefined),
    v2: repoHandler(v2.repo, () => undefined),
    v2AtZero: repoHandler(v2AtZero, () => undefined),
  };
  let served: ServedRepo = "v2";
  // a VM under TCG may pause long between requests on one connection
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 120, fetch: (request, srv) => handlers[served](request, srv) });
  server.unref();
  const port = server.port as number;

  const bootext = async (name: string, lines: string[]) => {
    const dir = join(work, name);
    await mkdir(join(dir, "config.d"), { recursive: true });
    await writeFile(join(dir, "config.d/60-fleet.toml"), [...lines, ""].join("\n"));
    return dir;
  };
  const fleetServer = await startTestFleet(work);
  const updateBootext = await bootext("bootext-update", ["[update]", `servers = ["http://${GUEST_FORWARD_ADDRESS}:${port}/"]`, `trusted_keys = ["${publicKey}"]`, ...fleetServer.configLines]);
  // a machine that has booted before: its machine-id kept on BOOTEXT places it in a rollout from the first boot here on
  await writeFile(join(updateBootext, "machine-id"), `${UPDATE_MACHINE_ID}\n`);
  const plainBootext = await bootext("bootext-plain", ["[update]", `trusted_keys = ["${publicKey}"]`]);
  const oneAttemptBootext = await bootext("bootext-one-attempt", [
    "[update]",
    `servers = ["http://${GUEST_FORWARD_ADDRESS}:${port}/"]`,
    `trusted_keys = ["${publicKey}"]`,
    "[health]",
    "max_attempts = 1",
  ]);
  const sysfsV1 = await slotFolder(join(work, "sysfs-v1"), { image: DEBIAN.v1, repo: v1.repo, health: MARKED_GOOD });
  const sysfsV2 = await slotFolder(join(work, "sysfs-v2"), { image: DEBIAN.v2, repo: v2.repo, health: MARKED_GOOD });
  const backupV1 = await slotFolder(join(work, "backup-v1"), { image: DEBIAN.v1, repo: v1.repo });
  const badSysfsV2 = await slotFolder(join(work, "sysfs-v2-bad"), { image: DEBIAN.v2, repo: v2.repo, health: MARKED_GOOD, corruptImage: true });
  const goodBackupV1 = await slotFolder(join(work, "backup-v1-good"), { image: DEBIAN.v1, repo: v1.repo, health: MARKED_GOOD });
  const empty = join(work, "empty");
  await mkdir(empty, { recursive: true });
  // a slot holds the image it runs and, during an install, the new one beside it (sparse files: only what is written takes room)
  const slotMiB = 700;
  const disk = async (name: string, partitions: [string, string][]) => {
    const path = join(work, `${name}.img`);
    await buildDisk({ path, partitions: partitions.map(([label, content]) => ({ label, content, sizeMiB: label === "BOOTEXT" ? 16 : slotMiB })) });
    return path;
  };
  // (b): a disk as an admin makes it, from 1.0 in the repository; the machine then finds 2.0 there
  served = "v1";
  const fleet: FleetRepo = { work, publicKeyFile: `${key}.pub`, hostUrl: `http://127.0.0.1:${port}/`, guestUrl: `http://${GUEST_FORWARD_ADDRESS}:${port}/`, port, accessLog: [] };
  const rebootConfig = join(work, "30-boot.toml");
  await writeFile(rebootConfig, '[boot]\nkernel_switch = "reboot"\n');
  const grubDisk = await blankDisk(fleet, "grub-reboot", "bios", { size: "2G", kernel: "image", configFiles: [rebootConfig] });
  served = "v2";
  // its first boot came up healthy (what it proves is grub.test.ts's): the install gate lets 2.0 in
  await markSysfsGood(grubDisk.path);
  world = {
    fleet: fleetServer,
    serve: (repo) => {
      served = repo;
    },
    k1: v1.release,
    k2: v2.release,
    port,
    publicKey,
    grubDisk: grubDisk.path,
    updateDisk: await disk("update", [["SYSFS", sysfsV1], ["BACKUPFS", empty], ["BOOTEXT", updateBootext]]),
    runningV2Disk: await disk("running-v2", [["SYSFS", sysfsV2], ["BACKUPFS", backupV1], ["BOOTEXT", plainBootext]]),
    oneAttemptDisk: await disk("one-attempt", [["SYSFS", sysfsV1], ["BACKUPFS", empty], ["BOOTEXT", oneAttemptBootext]]),
    badImageDisk: await disk("bad-image", [["SYSFS", badSysfsV2], ["BACKUPFS", goodBackupV1], ["BOOTEXT", plainBootext]]),
  };
}, 300_000);

afterAll(async () => {
  await world?.fleet.stop();
});

/** A boot of K1 with debian-1.0's initrd (or K2 with debian-2.0's), as the disk's bootloader would start it. */
function kernelBoot(disk: string, append = "", hostPorts?: readonly number[], writeDisks = false, kernel: "K1" | "K2" = "K1"): VmOptions {
  return {
    kernel: kernel === "K1" ? DEBIAN.v1Kernel : DEBIAN.v2Kernel,
    initrd: kernel === "K1" ? DEBIAN.v1Initrd : DEBIAN.v2Initrd,
    append: `${SCENARIO_CMDLINE}${append === "" ? "" : ` ${append}`}`,
    disks: [disk],
    ...(hostPorts === undefined ? {} : { network: { hostPorts } }),
    ...(writeDisks ? { writeDisks } : {}),
  };
}

/**
 * Boots to Debian's markers. Then the VM is killed, unless `poweroff`: (b) reads
 * BOOTEXT's grubenv from the disk after the boot, so it waits for systemd's
 * shutdown (4-5 s); Debian's shutdown itself is debian.test.ts's to check.
 */
async function bootToDebian(options: VmOptions, label: string, end: "markers" | "poweroff" = "markers"): Promise<{ markers: TestMarkers; console: string }> {
  const started = Date.now();
  return withVm(options, async (vm) => {
    await vm.waitFor("@@TEST done", SCENARIO_BOOT_TIMEOUT_MS);
    const upMs = Date.now() - started;
    if (end === "poweroff") await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
    else await vm.kill();
    const consoleFile = join(await runFolder(), `kernel-switch-${label}-console.txt`);
    await Bun.write(consoleFile, vm.console());
    const markers = parseTestMarkers(vm.console());
    console.log(
      `kernel-switch ${label}: markers after ${(upMs / 1000).toFixed(1)} s, ${end === "poweroff" ? "poweroff" : "killed"} after ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `image ${markers.imageId}, kernel ${marker(markers, "kernel-release")}, modprobe ${marker(markers, "modprobe")}, failed units ${marker(markers, "failed-units")}; console in ${consoleFile}`,
    );
    return { markers, console: vm.console() };
  });
}

/** Debian `image` came up on `kernel` with its own modules: a module only the image has loads, and no unit failed. */
function expectDebianOn(markers: TestMarkers, image: string, kernel: string): void {
  expect(markers.imageId).toBe(image);
  expect(marker(markers, "kernel-release")).toBe(kernel);
  expect(marker(markers, "modules-for-running-kernel")).toBe("yes");
  expect(marker(markers, "modprobe")).toBe("dummy exit=0");
  expect(marker(markers, "failed-units")).toBe("none");
}

describe("the whole OS as one signed update (issue 14)", () => {
  test(
    "(a) kexec: Debian 1.0 on K1 updates to Debian 2.0 on K2 once its rollout reaches the machine; the booted system runs K2, loads a module only its image has, no unit fails, and status says it came by kexec",
    async () => {
      // 2.0 offered to 0 % of the machines: this one boots 1.0, says why, and the fleet's page shows it on 1.0
      world.serve("v2AtZero");
      const atZero = await bootToDebian(kernelBoot(world.updateDisk, "", [world.port, world.fleet.port], true), "a-at-0", "poweroff");
      expect(atZero.console).toMatch(/but version 2\.0 is rolled out to 0 % of machines; this machine's place is [\d.]+: booting the local system/);
      expect(atZero.console).not.toContain("controller: install: ");
      expectDebianOn(atZero.markers, "debian-1.0", world.k1);
      expect(marker(atZero.markers, "mark-good-unit")).toBe("result=success exit=0 ran=yes");
      expect(marker(atZero.markers, "fleet-outbox")).toMatch(/^empty after \d+ s$/);
      const machineId = UPDATE_MACHINE_ID;
      expect(marker(atZero.markers, "machine-id")).toBe(machineId);
      const before = await world.fleet.machine(machineId);
      expect(before?.machine).toMatchObject({ lastBoot: { version: "1.0", update: { decision: "not-in-rollout" }, outcome: "handed-off" } });
      expect(before?.machine.lastMarkGoodAt).toBeString();
      // the page's versions table: the machine booted 1.0 and nothing else yet (2.0 is in the rollouts table, offered)
      const versionsBefore = /<table id="versions">[\s\S]*?<\/table>/.exec((await world.fleet.get("/")).body)?.[0];
      expect(versionsBefore).toContain("<td>1.0</td>");
      expect(versionsBefore).not.toContain("<td>2.0</td>");

      // the admin raises the rollout to 100 % (here: the repository that signs it so): the same machine's next boot takes 2.0
      world.serve("v2");
      const { markers, console } = await bootToDebian(kernelBoot(world.updateDisk, "", [world.port, world.fleet.port]), "a");
      // the first controller, on K1: the update, then the kexec of the image's own kernel
      expect(console).toContain(`Linux version ${world.k1} `);
      expect(console).toContain("controller: install: ");
      expect(console).toContain(`controller: kernel: loading kernel ${world.k2} with kexec`);
      expect(console).toContain(`Linux version ${world.k2} `);
      // the second controller, 2.0's, on K2: no second kexec, the slot's attempt not counted twice
      expect(console).toContain("this boot came by kexec of SYSFS's own kernel: its attempt was counted before the kexec");
      expectDebianOn(markers, "debian-2.0", world.k2);
      expect(marker(markers, "system-running")).toBe("running");
      expect(marker(markers, "mark-good-unit")).toBe("result=success exit=0 ran=yes");
      const status = markers.status?.output ?? "";
      expect(markers.status?.exitCode).toBe(0);
      expect(status).toContain(`kernel: ${world.k2} `);
      expect(status).toMatch(/came by kexec \(rd\.controller\.kexec=slot-kernel\) from controller (\S+); this controller (\S+\+debian-2\.0)\n/);
      const [, from, self] = /from controller (\S+); this controller (\S+)\n/.exec(status) ?? [];
      expect(from).not.toBe(self);
      // the fleet: the same machine (its machine-id kept on BOOTEXT), 2.0's boot report and its mark-good reached the server, and the page shows 2.0
      expect(marker(markers, "fleet-outbox")).toMatch(/^empty after \d+ s$/);
      expect(marker(markers, "machine-id")).toBe(machineId);
      const seen = await world.fleet.machine(machineId);
      expect(seen?.machine).toMatchObject({ hostname: "debian-test", lastBoot: { version: "2.0", slot: { label: "SYSFS" }, outcome: "handed-off" } });
      // its history, newest first: the boot on 2.0, then the one on 1.0
      expect(seen?.reports.filter((report) => report.kind === "boot").map((report) => summarizeBootReport(report.report ?? {}).version)).toEqual(["2.0", "1.0"]);
      expect(seen?.machine.lastMarkGoodAt).toBeString();
      const page = await world.fleet.get("/");
      expect(page.status).toBe(200);
      expect(page.body).toContain("debian-test");
      expect(page.body).toMatch(/>2\.0</);
    },
    2 * (SCENARIO_BOOT_TIMEOUT_MS + SHUTDOWN_TIMEOUT_MS) + 30_000,
  );

  test(
    "(e) kexec failing: the load is refused (kexec_load_disabled); the error names why, and Debian 2.0 starts on K1, with the modules warning",
    async () => {
      // the fallback is proven once the controller hands off on K1 and Debian's systemd starts; the rest of that boot is (a)'s
      const console = await withVm(kernelBoot(world.runningV2Disk, "sysctl.kernel.kexec_load_disabled=1"), async (vm) => {
        await vm.waitFor(/Welcome to .*Debian/, SCENARIO_BOOT_TIMEOUT_MS);
        return vm.console();
      });
      const k2 = world.k2.replaceAll(".", "\\.");
      expect(console).toMatch(new RegExp(`controller: kernel: ERROR: Cannot kexec SYSFS on /dev/vda1 \\(version 2\\.0\\)'s kernel ${k2}: .*kexec_load failed: Operation not permitted`));
      expect(console).toContain("controller: kernel: ERROR: Cannot boot SYSFS on /dev/vda1 (version 2.0)'s own kernel: the kexec failed and BOOTEXT has no bootloader entry to reboot into; booting on the running kernel");
      expect(console).toContain(`controller: kernel: WARNING: SYSFS on /dev/vda1 (version 2.0) runs on the wrong kernel ${world.k1}, but its image has no /lib/modules/${world.k1}`);
      expect(console).toContain("controller: handoff: handing off to /sbin/init");
      // one kernel only: K1's banner, never K2's
      expect(console).toContain(`Linux version ${world.k1} `);
      expect(console).not.toContain(`Linux version ${world.k2} `);
    },
    SCENARIO_BOOT_TIMEOUT_MS + 30_000,
  );

  test(
    "(b) reboot mode through GRUB from the disk: 1.0 on K1 installs 2.0, writes K2 as BOOTEXT's active entry and reboots; GRUB boots K2 and Debian 2.0, whose mark-good makes the entry lasting",
    async () => {
      const disk = { fromDisk: true, firmware: "bios", disks: [world.grubDisk], writeDisks: true, network: { hostPorts: [world.port] } } as const;
      const first = await withVm(disk, async (vm) => {
        await vm.waitFor("controller: kernel: rebooting into BOOTEXT's active entry", SCENARIO_BOOT_TIMEOUT_MS);
        // QEMU runs with -no-reboot: the machine's reset ends this VM, and the next start is its reboot
        await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
        return vm.console();
      });
      expect(first).toContain("grub: booting active");
      expect(first).toContain(`Linux version ${world.k1} `);
      expect(first).toContain("controller: install: ");
      expect(first).toContain("BOOTEXT kernel entries written: active");
      const { markers, console } = await bootToDebian(disk, "b", "poweroff");
      expect(console).toContain("grub: booting active");
      expect(console).toContain(`Linux version ${world.k2} `);
      expectDebianOn(markers, "debian-2.0", world.k2);
      expect(marker(markers, "mark-good-unit")).toBe("result=success exit=0 ran=yes");
      expect(markers.status?.output).toContain(`kernel: ${world.k2} `);
      expect(markers.status?.output).toContain('(boot.kernel_switch "reboot": boot-on)');
      // the new kernel was tried once (next_entry); the healthy system made it GRUB's lasting choice
      const env = parseGrubenv(await bootextFile(world.grubDisk, "/grub/grubenv"));
      expect(env.get("saved_entry")).toBe("active");
      expect(env.get("next_entry") ?? "").toBe("");
    },
    2 * (SCENARIO_BOOT_TIMEOUT_MS + SHUTDOWN_TIMEOUT_MS),
  );

  test(
    "(c) K2's system hangs before mark-good: after the attempt limit (1 here) the machine is back on K1 and Debian 1.0 with no help",
    async () => {
      // the update and the kexec into K2; then the machine hangs (the VM is killed) before Debian 2.0 could mark itself good
      const first = await withVm(kernelBoot(world.oneAttemptDisk, "", [world.port], true), async (vm) => {
        await vm.waitFor(`Linux version ${world.k2} `, SCENARIO_BOOT_TIMEOUT_MS);
        await vm.waitFor("controller: handoff: handing off to /sbin/init", SCENARIO_BOOT_TIMEOUT_MS);
        return vm.console();
      });
      expect(first).toContain(`controller: kernel: loading kernel ${world.k2} with kexec`);
      // the kexec'd boot is 2.0's one try: healthy, its attempt the one counted before the kexec
      const onK2 = first.slice(first.indexOf(`Linux version ${world.k2} `));
      expect(onK2).not.toContain("ROLLBACK");
      expect(onK2).toContain("controller: attempt: this boot came by kexec of SYSFS's own kernel: its attempt was counted before the kexec");
      // the machine starts again as its bootloader would start it: K1 and 1.0's initrd (the server out of reach: nothing is offered again)
      const { markers, console } = await bootToDebian(kernelBoot(world.oneAttemptDisk, NO_NIC_WAIT, undefined, true), "c");
      expect(console).toContain("ROLLBACK");
      expect(console).not.toContain("controller: kernel: loading kernel");
      expectDebianOn(markers, "debian-1.0", world.k1);
      expect(markers.status?.output).toContain(`kernel: ${world.k1} `);
      expect(markers.status?.output).toContain("DEPRIVED");
    },
    2 * (SCENARIO_BOOT_TIMEOUT_MS + SHUTDOWN_TIMEOUT_MS),
  );
  test(
    "(d) a rollback by health check boots BACKUPFS's own kernel: SYSFS's 2.0 image went bad on a machine booting K2; 1.0 becomes SYSFS and K1 is kexec'd",
    async () => {
      const { markers, console } = await bootToDebian(kernelBoot(world.badImageDisk, "", undefined, true, "K2"), "d");
      expect(console).toContain(`Linux version ${world.k2} `);
      expect(console).toMatch(/controller: health: WARNING: SYSFS on \/dev\/vda1 is unhealthy: .*image-hash/);
      expect(console).toContain("controller: health: WARNING: ROLLBACK: rollback: SYSFS on /dev/vda1 unhealthy; BACKUPFS on /dev/vda2 becomes SYSFS and boots");
      expect(console).toContain(`controller: kernel: loading kernel ${world.k1} with kexec`);
      expect(console).toContain(`Linux version ${world.k1} `);
      expectDebianOn(markers, "debian-1.0", world.k1);
      const status = markers.status?.output ?? "";
      expect(status).toContain(`kernel: ${world.k1} `);
      expect(status).toMatch(/SYSFS {2}version 1\.0 {2}\(booted\)/);
      expect(status).toMatch(/DEPRIVED.*\n.*taken out of service \S+: .*image-hash/);
    },
    SCENARIO_BOOT_TIMEOUT_MS + SHUTDOWN_TIMEOUT_MS + 30_000,
  );
  test(
    "(f) diskless: the PXE server's bootstrap kernel K1 fetches Debian 2.0 into RAM and kexecs its own kernel K2; Debian 2.0 runs from RAM on K2",
    async () => {
      const append = disklessAppend(world.port, world.publicKey);
      // the image in RAM, and the kernel and initrd copied for kexec beside it
      const options: VmOptions = { kernel: DEBIAN.v1Kernel, initrd: DEBIAN.v1Initrd, append, memoryMiB: DISKLESS_MEMORY_MIB, network: { hostPorts: [world.port] } };
      const { markers, console } = await bootToDebian(options, "f");
      expect(console).toContain(`Linux version ${world.k1} `);
      expect(console).toContain(`controller: kernel: loading kernel ${world.k2} with kexec`);
      expect(console).toContain(`Linux version ${world.k2} `);
      // once on each kernel: the kexec'd controller fetches the image again, and does not switch twice
      expect(console.split("controller: diskless: version 2.0 verified in RAM").length - 1).toBe(2);
      expect(console).toMatch(/controller: kernel: this controller \(\S+\+debian-2\.0\) came by kexec from controller \S+\n/);
      expectDebianOn(markers, "debian-2.0", world.k2);
      const status = markers.status?.output ?? "";
      expect(status).toContain(`kernel: ${world.k2} `);
      expect(status).toMatch(/came by kexec \(rd\.controller\.kexec=slot-kernel\) from controller \S+; this controller \S+\+debian-2\.0\n/);
    },
    SCENARIO_BOOT_TIMEOUT_MS + SHUTDOWN_TIMEOUT_MS + 30_000,
  );
});
