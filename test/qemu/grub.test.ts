// A real disk boot (issue 14, item 4), on disks scripts/blank-disk made from a
// repository served by this test: the admin's one command, then the machine's
// first boot through its bootloader (no -kernel, -initrd). Two boots carry
// every proof, each VM boot being the expensive part:
//
// 1. BIOS. SeaBIOS runs GRUB from the MBR; grubenv says saved_entry=recovery,
//    next_entry=active (the "try the new kernel once" a reboot-mode switch
//    will write): GRUB boots "active" and clears next_entry on BOOTEXT. The
//    first boot is a normal one: the slot's signed record verifies, the server
//    says up-to-date, the fleet's config from the slot applies, handed-off.
// 2. UEFI. OVMF runs GRUB from the ESP; with saved_entry=recovery alone (what
//    the first disk's grubenv holds after boot 1) GRUB boots "recovery", whose
//    pair has the systemd initramfs, so the console shows which files booted.

import { beforeAll, describe, expect, test } from "bun:test";
import type { BootReport } from "../../controller/boot/report.ts";
import { parseTestMarkers, type TestMarkers } from "../../qemu-harness/test-markers.ts";
import { type Vm, withVm } from "../../qemu-harness/vm.ts";
import { addRecoveryPair, blankDisk, bootextFile, type FleetRepo, fleetRepo, type MadeDisk, setGrubenv } from "./blank-disk-fixtures.ts";
import { BOOT_TIMEOUT_MS, SCENARIO_TIMEOUT_MS, SHUTDOWN_TIMEOUT_MS } from "./fixtures.ts";
import { GRUB_APPEND } from "./grub-fixtures.ts";

let repo: FleetRepo;
let bios: MadeDisk;
let efi: MadeDisk;
beforeAll(async () => {
  repo = await fleetRepo();
  bios = await blankDisk(repo, "bios", "bios");
  efi = await blankDisk(repo, "efi", "efi");
  console.log(`blank-disk: BIOS disk in ${bios.seconds.toFixed(2)} s, UEFI disk in ${efi.seconds.toFixed(2)} s`);
  await setGrubenv(bios.path, { saved_entry: "recovery", next_entry: "active" });
  await addRecoveryPair(efi.path);
  await setGrubenv(efi.path, { saved_entry: "recovery" });
}, 180_000);

interface Timed {
  readonly markers: TestMarkers;
  readonly console: string;
  /** Seconds from QEMU's start to each milestone. */
  readonly seconds: Readonly<Record<"grub" | "kernel" | "controller" | "done", number>>;
}

/** Boots the disk through its bootloader, with the repository's port forwarded, to the test system's poweroff, timing the milestones. */
async function bootFromDisk(path: string, firmware: "bios" | "efi"): Promise<Timed> {
  return withVm({ fromDisk: true, firmware, disks: [path], writeDisks: true, network: { hostPorts: [repo.port] } }, async (vm: Vm) => {
    const started = performance.now();
    const at = () => (performance.now() - started) / 1000;
    await vm.waitFor(/grub: booting \w+/, 60_000);
    const grub = at();
    await vm.waitFor("Linux version", BOOT_TIMEOUT_MS);
    const kernel = at();
    await vm.waitFor("controller: cmdline:", BOOT_TIMEOUT_MS);
    const controller = at();
    await vm.waitFor("@@TEST done", BOOT_TIMEOUT_MS);
    const done = at();
    await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
    const seconds = { grub, kernel, controller, done };
    console.log(`boot from disk (${firmware}): ${Object.entries(seconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(", ")}`);
    return { markers: parseTestMarkers(vm.console()), console: vm.console(), seconds };
  });
}

function reportOf(markers: TestMarkers): BootReport {
  expect(markers.reportState).toBe("printed");
  return markers.report as BootReport;
}

function cmdlineOf(markers: TestMarkers): string | undefined {
  const file = markers.files.get("/proc/cmdline");
  return file?.state === "content" ? file.content : file?.state;
}

describe("a disk scripts/blank-disk made", () => {
  test("holds what the command said it wrote", () => {
    expect(bios.output).toContain("version 1.0 verified: ");
    expect(bios.output).toContain("BIOS boot partition, SYSFS 254 MiB (version 1.0), BACKUPFS 254 MiB (empty), BOOTEXT 513 MiB (GRUB, Kernel/pairs/");
    expect(efi.output).toContain("EFI System Partition, SYSFS 251 MiB (version 1.0)");
    // the host fetched the manifest, its signature, the fleet's config file, the image and its
    // chunk index (the first image keeps it, so the machine's first update is a delta): once per disk
    const imageGets = repo.accessLog.filter((line) => line.includes('"GET /images/'));
    expect(imageGets.filter((line) => /\.squashfs"/.test(line)).length).toBe(2);
    expect(imageGets.filter((line) => /\.index"/.test(line)).length).toBe(2);
    expect(imageGets.length).toBe(4);
  });

  test(
    "BIOS: GRUB boots the active pair once (next_entry), and the first boot is a normal one",
    async () => {
      repo.accessLog.length = 0;
      const { markers, console } = await bootFromDisk(bios.path, "bios");
      expect(console).toContain("GRUB loading");
      expect(console).toContain("grub: booting active: /Kernel/active-kernel /Kernel/active-initrd");
      // the pair blank-disk wrote has the shell initramfs: no systemd in the initrd
      expect(console).not.toContain("systemd[1]: Running in initrd.");
      expect(cmdlineOf(markers)).toBe(`BOOT_IMAGE=/Kernel/active-kernel ${GRUB_APPEND}`);
      expect(markers.imageId).toBe("system-a");
      const report = reportOf(markers);
      expect(report.outcome).toBe("handed-off");
      // the slot's signed record, as blank-disk left it, verifies with the key in BOOTEXT's config.d
      expect(report.update.slots.find((slot) => slot.label === "SYSFS")).toMatchObject({ device: "/dev/vda2", record: "valid", version: "1.0" });
      expect(report.update.slots.find((slot) => slot.label === "BACKUPFS")).toMatchObject({ device: "/dev/vda3", record: "none" });
      expect(report.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda2" });
      // config.d's server, asked from the VM: the version the disk holds is the channel's
      expect(report.update.check.decision).toBe("up-to-date");
      expect(repo.accessLog.some((line) => line.includes('"GET /channels/stable/manifest.json" 200'))).toBe(true);
      // the fleet's config file blank-disk put in the slot's record applies (50-fleet.toml: /var/log 24m)
      expect(report.tmpfs.find((entry) => entry.path === "/var/log")?.detail).toContain("size 24m");
      // nothing went wrong; the one warning is the kernel stage's: the busybox test image carries no modules at all
      expect(report.notices).toEqual([
        {
          level: "warn",
          scope: "kernel",
          message: expect.stringMatching(/^SYSFS on \/dev\/vda2 \(version 1\.0\) runs on the running kernel \S+, but its image has no \/lib\/modules\/\S+ \(it has none at all\)/),
        },
      ]);
      expect(markers.markGood).toEqual({ state: "ran", exitCode: 0 });
      // GRUB's save_env cleared the one-shot choice on BOOTEXT, in place, and kept the block's size
      const env = await bootextFile(bios.path, "/grub/grubenv");
      expect(env).toContain("saved_entry=recovery\n");
      expect(env).toContain("next_entry=\n");
      expect(env.length).toBe(1024);
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "UEFI: OVMF boots GRUB from the ESP; saved_entry=recovery boots the recovery pair",
    async () => {
      const { markers, console } = await bootFromDisk(efi.path, "efi");
      expect(console).toContain("grub: booting recovery: /Kernel/recovery-kernel /Kernel/recovery-initrd");
      // the recovery pair has the systemd initramfs: the files the recovery links name were the ones booted
      expect(console).toContain("systemd[1]: Running in initrd.");
      expect(cmdlineOf(markers)).toBe(`BOOT_IMAGE=/Kernel/recovery-kernel ${GRUB_APPEND}`);
      expect(markers.imageId).toBe("system-a");
      const report = reportOf(markers);
      expect(report.outcome).toBe("handed-off");
      // the ESP is /dev/vda1
      expect(report.update.slots.find((slot) => slot.label === "SYSFS")).toMatchObject({ device: "/dev/vda2", record: "valid", version: "1.0" });
      expect(report.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda2" });
    },
    SCENARIO_TIMEOUT_MS,
  );
});
