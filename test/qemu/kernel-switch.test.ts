// Issue 14 in QEMU: the whole OS as one signed update. The Debian test images
// (scripts/build-debian-image) carry their own kernel, modules and an initrd of
// this project's dracut module: debian-1.0 kernel K1 (bookworm's 6.1.0-50) with
// the shipped controller, debian-2.0 kernel K2 (build/kernel's release) with a
// controller built with another commit string. Both are published with the
// controller's own `publish`, so their manifests sign the kernel (format 2).
// The machine boots K1 and debian-1.0's initrd with QEMU's -kernel, as its
// bootloader would.
//
// (a) kexec: 1.0 on K1 updates to 2.0 on K2: the controller installs 2.0,
//     kexecs K2, and the second controller (2.0's) boots Debian 2.0 on K2:
//     a module only in the image loads, no unit fails, status says where the
//     boot came from.
// (e) kexec failing: SYSFS already runs 2.0, kexec_load is disabled (as under a
//     lockdown): the error names it and Debian 2.0 still starts, on K1, with the
//     loud warning that its modules do not fit.
// (b) reboot mode through GRUB, on a disk made by scripts/blank-disk.
// (c) the K2 system hangs before mark-good: with health.max_attempts = 1 the
//     next boot rolls back to 1.0, on K1.

import { beforeAll, describe, expect, test } from "bun:test";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseGrubenv } from "../../controller/plans/grub-config.ts";
import { repoHandler } from "../../controller/update/dev-server.ts";
import { manifestPath } from "../../controller/update/manifest.ts";
import { runCommand } from "../../qemu-harness/command.ts";
import { buildDisk } from "../../qemu-harness/disk.ts";
import { GUEST_FORWARD_ADDRESS } from "../../qemu-harness/qemu-args.ts";
import { parseTestMarkers, type TestMarkers } from "../../qemu-harness/test-markers.ts";
import { type VmOptions, withVm } from "../../qemu-harness/vm.ts";
import { blankDisk, bootextFile, type FleetRepo, markSysfsGood } from "./blank-disk-fixtures.ts";
import { ARTIFACTS, runFolder } from "./fixtures.ts";
import { MARKED_GOOD, slotFolder } from "./update-fixtures.ts";

const IMAGES = resolve(import.meta.dir, "../../build/images");
const DEBIAN = {
  v1: join(IMAGES, "debian-1.0.squashfs"),
  v2: join(IMAGES, "debian-2.0.squashfs"),
  /** K1 and debian-1.0's initrd, the same bytes as inside the image */
  v1Kernel: join(IMAGES, "debian-1.0.boot/vmlinuz"),
  v1Initrd: join(IMAGES, "debian-1.0.boot/initrd.img"),
} as const;
/** A K1 boot, the update's download and check, the kexec, a second controller and Debian's systemd, under TCG on a busy host. */
const SCENARIO_BOOT_TIMEOUT_MS = 600_000;
const SHUTDOWN_TIMEOUT_MS = 180_000;

interface World {
  readonly k1: string;
  readonly k2: string;
  readonly port: number;
  /** SYSFS debian-1.0 (signed record, marked good), BACKUPFS empty, BOOTEXT naming the server and key */
  readonly updateDisk: string;
  /** SYSFS debian-2.0 (signed record, marked good), BACKUPFS debian-1.0, BOOTEXT without servers */
  readonly runningV2Disk: string;
  /** made by scripts/blank-disk from 1.0 (its own kernel K1 as GRUB's active pair) with --config 30-boot.toml: boot.kernel_switch = "reboot" */
  readonly grubDisk: string;
  /** as updateDisk, with health.max_attempts = 1: one boot without a mark-good makes a slot unhealthy */
  readonly oneAttemptDisk: string;
}

async function publishImage(work: string, name: string, version: string, image: string, key: string): Promise<{ repo: string; release: string }> {
  const repo = join(work, `repo-${name}`);
  await runCommand([ARTIFACTS.controller, "publish", "--repo", repo, "--channel", "stable", "--version", version, "--image", image, "--key", `${key}.secret`]);
  const manifest = JSON.parse(await Bun.file(join(repo, manifestPath("stable"))).text()) as { format: number; kernel?: { release: string } };
  if (manifest.format !== 2 || manifest.kernel === undefined) throw new Error(`Cannot run the kernel-switch scenarios: publish signed no kernel for ${image} (manifest format ${manifest.format})`);
  return { repo, release: manifest.kernel.release };
}

let world: World;
beforeAll(async () => {
  for (const path of Object.values(DEBIAN)) {
    if (!(await Bun.file(path).exists())) throw new Error(`Cannot run the kernel-switch scenarios: ${path} is missing; run scripts/setup`);
  }
  const work = join(await runFolder(), "kernel-switch");
  await mkdir(work, { recursive: true });
  const key = join(work, "fleet");
  const publicKey = (await runCommand([ARTIFACTS.controller, "keygen", key])).stdout.split(/\s+/).find((word) => /^[A-Za-z0-9+/]{43}=$/.test(word));
  if (publicKey === undefined) throw new Error("keygen printed no public key");
  const v1 = await publishImage(work, "v1", "1.0", DEBIAN.v1, key);
  const v2 = await publishImage(work, "v2", "2.0", DEBIAN.v2, key);
  if (v1.release === v2.release) throw new Error(`Cannot run the kernel-switch scenarios: debian-1.0 and debian-2.0 carry the same kernel ${v1.release}`);

  const handlers = { v1: repoHandler(v1.repo, () => undefined), v2: repoHandler(v2.repo, () => undefined) };
  let served: keyof typeof handlers = "v2";
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
  const updateBootext = await bootext("bootext-update", ["[update]", `servers = ["http://${GUEST_FORWARD_ADDRESS}:${port}/"]`, `trusted_keys = ["${publicKey}"]`]);
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
    k1: v1.release,
    k2: v2.release,
    port,
    grubDisk: grubDisk.path,
    updateDisk: await disk("update", [["SYSFS", sysfsV1], ["BACKUPFS", empty], ["BOOTEXT", updateBootext]]),
    runningV2Disk: await disk("running-v2", [["SYSFS", sysfsV2], ["BACKUPFS", backupV1], ["BOOTEXT", plainBootext]]),
    oneAttemptDisk: await disk("one-attempt", [["SYSFS", sysfsV1], ["BACKUPFS", empty], ["BOOTEXT", oneAttemptBootext]]),
  };
}, 300_000);

/** A boot of K1 with debian-1.0's initrd, as the disk's bootloader would start it. */
function k1Boot(disk: string, append = "", hostPorts?: readonly number[], writeDisks = false): VmOptions {
  return {
    kernel: DEBIAN.v1Kernel,
    initrd: DEBIAN.v1Initrd,
    append: `console=ttyS0 root=controller panic=-1${append === "" ? "" : ` ${append}`}`,
    disks: [disk],
    ...(hostPorts === undefined ? {} : { network: { hostPorts } }),
    ...(writeDisks ? { writeDisks } : {}),
  };
}

/** The text after "@@TEST NAME " on the first such line, or undefined. */
function marker(markers: TestMarkers, name: string): string | undefined {
  return markers.lines.find((line) => line.startsWith(`${name} `))?.slice(name.length + 1);
}

async function bootToDebian(options: VmOptions, label: string): Promise<{ markers: TestMarkers; console: string }> {
  const started = Date.now();
  return withVm(options, async (vm) => {
    await vm.waitFor("@@TEST done", SCENARIO_BOOT_TIMEOUT_MS);
    const upMs = Date.now() - started;
    await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
    const consoleFile = join(await runFolder(), `kernel-switch-${label}-console.txt`);
    await Bun.write(consoleFile, vm.console());
    const markers = parseTestMarkers(vm.console());
    console.log(
      `kernel-switch ${label}: markers after ${(upMs / 1000).toFixed(1)} s, poweroff after ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `image ${markers.imageId}, kernel ${marker(markers, "kernel-release")}, modprobe ${marker(markers, "modprobe")}, failed units ${marker(markers, "failed-units")}; console in ${consoleFile}`,
    );
    return { markers, console: vm.console() };
  });
}

describe("the whole OS as one signed update (issue 14)", () => {
  test(
    "(a) kexec: Debian 1.0 on K1 updates to Debian 2.0 on K2; the booted system runs K2, loads a module only its image has, no unit fails, and status says it came by kexec",
    async () => {
      const { markers, console } = await bootToDebian(k1Boot(world.updateDisk, "", [world.port]), "a");
      // the first controller, on K1: the update, then the kexec of the image's own kernel
      expect(console).toContain(`Linux version ${world.k1} `);
      expect(console).toContain("controller: install: ");
      expect(console).toContain(`controller: kernel: loading kernel ${world.k2} with kexec`);
      expect(console).toContain(`Linux version ${world.k2} `);
      // the second controller, 2.0's, on K2: no second kexec, the slot's attempt not counted twice
      expect(console).toContain("this boot came by kexec of SYSFS's own kernel: its attempt was counted before the kexec");
      expect(markers.imageId).toBe("debian-2.0");
      expect(marker(markers, "kernel-release")).toBe(world.k2);
      expect(marker(markers, "modules-for-running-kernel")).toBe("yes");
      expect(marker(markers, "modprobe")).toBe("dummy exit=0");
      expect(marker(markers, "failed-units")).toBe("none");
      expect(marker(markers, "system-running")).toBe("running");
      expect(marker(markers, "mark-good-unit")).toBe("result=success exit=0 ran=yes");
      const status = markers.status?.output ?? "";
      expect(markers.status?.exitCode).toBe(0);
      expect(status).toContain(`kernel: ${world.k2} `);
      expect(status).toMatch(/came by kexec \(rd\.controller\.kexec=slot-kernel\) from controller (\S+); this controller (\S+\+debian-2\.0)\n/);
      const [, from, self] = /from controller (\S+); this controller (\S+)\n/.exec(status) ?? [];
      expect(from).not.toBe(self);
    },
    SCENARIO_BOOT_TIMEOUT_MS + SHUTDOWN_TIMEOUT_MS + 30_000,
  );

  test(
    "(e) kexec failing: the load is refused (kexec_load_disabled); the error names why, and Debian 2.0 starts on K1, with the modules warning",
    async () => {
      // the fallback is proven once the controller hands off on K1 and Debian's systemd starts; the rest of that boot is (a)'s
      const console = await withVm(k1Boot(world.runningV2Disk, "sysctl.kernel.kexec_load_disabled=1"), async (vm) => {
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
      const { markers, console } = await bootToDebian(disk, "b");
      expect(console).toContain("grub: booting active");
      expect(console).toContain(`Linux version ${world.k2} `);
      expect(markers.imageId).toBe("debian-2.0");
      expect(marker(markers, "kernel-release")).toBe(world.k2);
      expect(marker(markers, "modprobe")).toBe("dummy exit=0");
      expect(marker(markers, "failed-units")).toBe("none");
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
      const first = await withVm(k1Boot(world.oneAttemptDisk, "", [world.port], true), async (vm) => {
        await vm.waitFor(`Linux version ${world.k2} `, SCENARIO_BOOT_TIMEOUT_MS);
        await vm.waitFor("controller: handoff: handing off to /sbin/init", SCENARIO_BOOT_TIMEOUT_MS);
        return vm.console();
      });
      expect(first).toContain(`controller: kernel: loading kernel ${world.k2} with kexec`);
      // the machine starts again as its bootloader would start it: K1 and 1.0's initrd (the server out of reach: nothing is offered again)
      const { markers, console } = await bootToDebian(k1Boot(world.oneAttemptDisk, "", undefined, true), "c");
      expect(console).toContain("ROLLBACK");
      expect(console).not.toContain("controller: kernel: loading kernel");
      expect(markers.imageId).toBe("debian-1.0");
      expect(marker(markers, "kernel-release")).toBe(world.k1);
      expect(marker(markers, "modprobe")).toBe("dummy exit=0");
      expect(marker(markers, "failed-units")).toBe("none");
      expect(markers.status?.output).toContain(`kernel: ${world.k1} `);
      expect(markers.status?.output).toContain("DEPRIVED");
    },
    2 * (SCENARIO_BOOT_TIMEOUT_MS + SHUTDOWN_TIMEOUT_MS),
  );
});
