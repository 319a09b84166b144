// A real disk boot (issue 14, item 4): SeaBIOS runs GRUB from the disk's MBR,
// GRUB reads grub.cfg on BOOTEXT and boots the kernel and initramfs its
// Kernel/ links name, with no -kernel or -initrd. One disk, two boots that
// keep their writes: grubenv says saved_entry=recovery, next_entry=active,
// the "try the new kernel once" a reboot-mode switch will write. The first
// boot is "active" (and GRUB clears next_entry on BOOTEXT with save_env); the
// second, with nobody touching the disk, is "recovery". Then the same
// BOOTEXT layout on a disk with an EFI System Partition, booted by OVMF.

import { beforeAll, describe, expect, test } from "bun:test";
import type { BootReport } from "../../controller/boot/report.ts";
import { runCommand } from "../../qemu-harness/command.ts";
import { parseTestMarkers, type TestMarkers } from "../../qemu-harness/test-markers.ts";
import { type Vm, withVm } from "../../qemu-harness/vm.ts";
import { BOOT_TIMEOUT_MS, SCENARIO_TIMEOUT_MS, SHUTDOWN_TIMEOUT_MS } from "./fixtures.ts";
import { type GrubDisk, grubDisk } from "./grub-fixtures.ts";

let disk: GrubDisk;
beforeAll(async () => {
  disk = await grubDisk("try-once", { saved_entry: "recovery", next_entry: "active" });
  console.log(`GRUB disk built in ${disk.buildSeconds.toFixed(2)} s`);
}, 120_000);

interface Timed {
  readonly markers: TestMarkers;
  readonly console: string;
  /** Seconds from QEMU's start to each milestone. */
  readonly seconds: Readonly<Record<"grub" | "kernel" | "controller" | "done", number>>;
}

/** Boots the disk through its bootloader to the test system's poweroff, timing the milestones on the way. */
async function bootFromDisk(path = disk.layout.path, firmware: "bios" | "efi" = "bios"): Promise<Timed> {
  return withVm({ fromDisk: true, firmware, disks: [path], writeDisks: true }, async (vm: Vm) => {
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

/** grubenv as it is on BOOTEXT now, read from the disk image without mounting it. */
async function grubenvOnDisk(): Promise<string> {
  const bootext = disk.layout.partitions[1];
  if (bootext === undefined) throw new Error("the GRUB disk has no BOOTEXT partition");
  return (await runCommand(["debugfs", "-R", "cat /grub/grubenv", `${disk.layout.path}?offset=${bootext.offsetBytes}`])).stdout;
}

describe("a disk that boots through GRUB", () => {
  test(
    "next_entry=active boots the active links once, through the controller to the test system",
    async () => {
      const { markers, console } = await bootFromDisk();
      // SeaBIOS ran GRUB from the disk, GRUB spoke on the serial console and chose the entry
      expect(console).toContain("GRUB loading");
      expect(console).toContain("grub: booting active: /Kernel/active-kernel /Kernel/active-initrd");
      // active-initrd is the shell initramfs: no systemd in the initrd
      expect(console).not.toContain("systemd[1]: Running in initrd.");
      expect(cmdlineOf(markers)).toBe("BOOT_IMAGE=/Kernel/active-kernel console=ttyS0 root=controller panic=-1 test.cat=/proc/cmdline");
      expect(markers.imageId).toBe("system-a");
      expect(markers.initStarted?.path).toBe("/sbin/init");
      const report = reportOf(markers);
      expect(report.outcome).toBe("handed-off");
      // the BIOS boot partition is /dev/vda1: the controller finds its partitions by label
      expect(report.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda2" });
      expect(markers.markGood).toEqual({ state: "ran", exitCode: 0 });
      // GRUB's save_env cleared the one-shot choice on BOOTEXT, in place, and kept the block's size
      const env = await grubenvOnDisk();
      expect(env).toContain("saved_entry=recovery\n");
      expect(env).toContain("next_entry=\n");
      expect(env.length).toBe(1024);
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "with next_entry used up, saved_entry=recovery boots the recovery links",
    async () => {
      const { markers, console } = await bootFromDisk();
      expect(console).toContain("grub: booting recovery: /Kernel/recovery-kernel /Kernel/recovery-initrd");
      // recovery-initrd is the systemd initramfs: the files the recovery links name were the ones booted
      expect(console).toContain("systemd[1]: Running in initrd.");
      expect(cmdlineOf(markers)).toBe("BOOT_IMAGE=/Kernel/recovery-kernel console=ttyS0 root=controller panic=-1 test.cat=/proc/cmdline");
      expect(markers.imageId).toBe("system-a");
      expect(reportOf(markers).outcome).toBe("handed-off");
    },
    SCENARIO_TIMEOUT_MS,
  );
});

describe("the same BOOTEXT through UEFI", () => {
  test(
    "OVMF boots GRUB from the EFI System Partition, which boots the active links",
    async () => {
      const efi = await grubDisk("efi", undefined, "efi");
      console.log(`GRUB EFI disk built in ${efi.buildSeconds.toFixed(2)} s`);
      const { markers, console: text } = await bootFromDisk(efi.layout.path, "efi");
      expect(text).toContain("grub: booting active: /Kernel/active-kernel /Kernel/active-initrd");
      expect(cmdlineOf(markers)).toBe("BOOT_IMAGE=/Kernel/active-kernel console=ttyS0 root=controller panic=-1 test.cat=/proc/cmdline");
      expect(markers.imageId).toBe("system-a");
      const report = reportOf(markers);
      expect(report.outcome).toBe("handed-off");
      // the ESP is /dev/vda1
      expect(report.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda2" });
    },
    SCENARIO_TIMEOUT_MS,
  );
});
