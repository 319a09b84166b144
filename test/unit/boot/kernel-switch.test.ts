// Stage "kernel" in whole boots over the fake: a slot whose image carries its
// own kernel is kexec'd onto it, checked against its signed record first; the
// kexec'd boot boots on and says where it came from; everything that fails
// leaves a boot on the running kernel with the error in the report.

import { describe, expect, test } from "bun:test";
import { writeBootEntries } from "../../../controller/boot/kernel-entries.ts";
import { CONTROLLER_IDENTITY } from "../../../controller/boot/kernel-switch.ts";
import { formatStatus } from "../../../controller/boot/report-text.ts";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { type KernelPair, pairId } from "../../../controller/plans/boot-entries.ts";
import { grubenv, parseGrubenv } from "../../../controller/plans/grub-config.ts";
import { parseHealth } from "../../../controller/plans/slot-health.ts";
import { NO_CUTS } from "../../../controller/system/cut-points.ts";
import { TOOLS } from "../../../controller/system/paths.ts";
import { connectToNetwork, labMachine } from "../../fake-machine.ts";
import { type ImageKernel, imageKernelFiles, installedSlot, PUBLIC_KEY, publish, SERVER } from "../../fake-repo.ts";
import { FakeSystem, type Tree } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

const K1: ImageKernel = { release: "6.1.0-50-amd64", build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.176-1 (2026-05-01)" };
const K2: ImageKernel = { release: "6.1.0-57-amd64", build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)" };

const UPDATE_CONFIG: Tree = {
  "config.d/60-update.toml": `[update]\nservers = ["${SERVER}"]\ntrusted_keys = ["${PUBLIC_KEY}"]\n`,
};

interface MachineSpec {
  readonly cmdline?: string;
  readonly bootext?: Tree;
  readonly sysfs?: Tree;
  /** the disks as a boot before left them, instead of SYSFS, BACKUPFS and BOOTEXT */
  readonly disks?: ReturnType<FakeSystem["snapshotDevices"]>;
}

/** A machine running `running`, with 1.0 (carrying K1) on SYSFS and 0.9 on BACKUPFS. */
function machine(running: ImageKernel, spec: MachineSpec = {}): FakeSystem {
  const fake = labMachine({
    bootext: { ...UPDATE_CONFIG, ...spec.bootext },
    ...(spec.cmdline === undefined ? {} : { cmdline: spec.cmdline }),
    ...(spec.disks === undefined ? {} : { labels: [] }),
    slots: { SYSFS: spec.sysfs ?? installedSlot({ version: "1.0", kernel: K1 }), BACKUPFS: installedSlot({ version: "0.9" }) },
  });
  for (const { device, tree } of spec.disks ?? []) fake.addDevice(device, tree);
  fake.commandHandlers.set(TOOLS.fsfreeze, () => ({ stdout: "" }));
  fake.addTree("/proc/sys/kernel", { osrelease: `${running.release}\n`, version: `${running.build}\n` });
  return fake;
}

async function boot(fake: FakeSystem) {
  const { log, sink } = memoryLogger();
  const result = await runBoot(fake, log);
  return { ...result, text: sink.text() };
}

function attemptsOn(fake: FakeSystem, device: string): number | undefined {
  const entry = fake.snapshotDevices().find((disk) => disk.device.device === device)?.tree["controller/health.json"];
  const text = typeof entry === "string" ? entry : entry !== undefined && "text" in entry ? entry.text : undefined;
  const health = text === undefined ? undefined : parseHealth(text, device);
  return health?.status === "read" ? health.health.attempts : undefined;
}

describe("stage kernel: the booted slot's own kernel", () => {
  test("an update to 2.0 carrying K2, on K1: the attempt is counted, the checked copies are kexec'd with the marker and this controller's name", async () => {
    const fake = connectToNetwork(machine(K1));
    publish(fake, { version: "2.0", kernel: K2 });
    const { outcome, report, text } = await boot(fake);
    expect(report.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda2" });
    expect(attemptsOn(fake, "/dev/vda2")).toBe(1);
    expect(fake.kexecBooted).toEqual([
      {
        kernel: "/run/controller/kernel-switch/vmlinuz",
        initrd: "/run/controller/kernel-switch/initrd.img",
        cmdline: `root=controller console=ttyS0 rd.controller.kexec=slot-kernel rd.controller.kexec_by=${CONTROLLER_IDENTITY}`,
      },
    ]);
    expect(text).toContain("controller: kernel: loading kernel 6.1.0-57-amd64 with kexec");
    // the fake's kexec returns as a kernel that failed to start would: the boot goes on, on K1, and says so
    expect(outcome).toBe("handed-off");
    expect(report.kernel).toMatchObject({ outcome: "kexec-failed", mode: "kexec", running: { release: K1.release }, slotKernel: { release: K2.release } });
    expect(report.kernel?.errors).toEqual([
      "Cannot kexec SYSFS on /dev/vda2 (version 2.0)'s kernel 6.1.0-57-amd64: kexec --exec returned",
      "Cannot boot SYSFS on /dev/vda2 (version 2.0)'s own kernel: the kexec failed and BOOTEXT has no bootloader entry to reboot into; booting on the running kernel",
    ]);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
  });

  test("the kexec'd boot: on K2 it boots on, counts no second attempt, and names the controller that kexec'd", async () => {
    const first = connectToNetwork(machine(K1));
    publish(first, { version: "2.0", kernel: K2 });
    await boot(first);
    const fake = machine(K2, { cmdline: "root=controller console=ttyS0 rd.controller.kexec=slot-kernel rd.controller.kexec_by=0.9.0+abc1234", disks: first.snapshotDevices() });
    const { outcome, report, text } = await boot(fake);
    expect(outcome).toBe("handed-off");
    expect(fake.kexecBooted).toEqual([]);
    expect(report.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda2" });
    expect(attemptsOn(fake, "/dev/vda2")).toBe(1);
    expect(report.kernel).toMatchObject({ outcome: "boot-on", errors: [], cameByKexec: { marker: "slot-kernel", by: "0.9.0+abc1234" } });
    expect(text).toContain(`came by kexec from controller 0.9.0+abc1234`);
    const status = formatStatus(report);
    expect(status).toContain(`kernel: ${K2.release} ${K2.build}; the image carries ${K2.release} ${K2.build} (boot.kernel_switch "kexec": boot-on)\n`);
    expect(status).toContain(`  came by kexec (rd.controller.kexec=slot-kernel) from controller 0.9.0+abc1234; this controller ${CONTROLLER_IDENTITY}\n`);
  });

  test("a kernel in the image that is not what the record signs is never loaded", async () => {
    const fake = machine(K2, { sysfs: installedSlot({ version: "1.0", kernel: { ...K1, tamperedVmlinuz: "evil" } }) });
    const { outcome, report } = await boot(fake);
    expect(outcome).toBe("handed-off");
    expect(fake.kexecLoaded).toBeUndefined();
    expect(report.kernel?.outcome).toBe("kexec-failed");
    expect(report.kernel?.errors[0]).toContain(
      "Cannot copy /sysroot/boot/vmlinuz-6.1.0-50-amd64 to /run/controller/kernel-switch/vmlinuz: it has 4 bytes, expected 75 (the slot's image is not what its signed record says; it is not kexec'd)",
    );
    expect(report.kernel?.errors[1]).toContain("BOOTEXT has no bootloader entry to reboot into; booting on the running kernel");
  });

  test("kexec cannot load the kernel: the error names it, and the boot goes on", async () => {
    const fake = machine(K2);
    fake.kexecLoadFailure = "kexec_load failed: Operation not permitted";
    const { outcome, report } = await boot(fake);
    expect(outcome).toBe("handed-off");
    expect(fake.kexecBooted).toEqual([]);
    expect(report.kernel?.errors[0]).toContain("Cannot kexec SYSFS on /dev/vda1 (version 1.0)'s kernel 6.1.0-50-amd64: ");
    expect(report.kernel?.errors[0]).toContain("Operation not permitted");
    expect(report.kernel?.warnings).toEqual([
      "SYSFS on /dev/vda1 (version 1.0) runs on the wrong kernel 6.1.0-57-amd64, but its image has no /lib/modules/6.1.0-57-amd64 (it has only 6.1.0-50-amd64): every module the system loads after the handoff will fail (drivers, filesystems, binfmt_misc)",
    ]);
    expect(fake.peek("/run/controller/kernel-switch/vmlinuz")).toBeUndefined();
  });

  test("the slot's kernel already runs: no switch", async () => {
    const fake = machine(K1);
    const { report } = await boot(fake);
    expect(fake.kexecLoaded).toBeUndefined();
    expect(report.kernel).toMatchObject({ outcome: "boot-on", errors: [], warnings: [] });
  });

  test('boot.kernel_switch = "off": boots on, warning that the slot carries another kernel', async () => {
    const fake = machine(K2, { bootext: { "config.d/30-boot.toml": '[boot]\nkernel_switch = "off"\n' } });
    const { report } = await boot(fake);
    expect(fake.kexecLoaded).toBeUndefined();
    expect(report.kernel?.mode).toBe("off");
    expect(report.kernel?.warnings[0]).toContain('carries kernel 6.1.0-50-amd64 but boots on the running kernel: boot.kernel_switch is "off"');
  });

  test("a marker but still not the slot's kernel: never a second kexec", async () => {
    const fake = machine(K2, { cmdline: "root=controller rd.controller.kexec=slot-kernel" });
    const { report } = await boot(fake);
    expect(fake.kexecLoaded).toBeUndefined();
    expect(report.kernel?.errors[0]).toContain("not switching twice");
  });

  test("an image without a kernel and without modules for the running kernel: a loud warning", async () => {
    const fake = machine(K2, { sysfs: installedSlot({ version: "1.0" }) });
    const { report, text } = await boot(fake);
    expect(fake.kexecLoaded).toBeUndefined();
    expect(report.kernel?.warnings).toEqual([expect.stringContaining("its image has no /lib/modules/6.1.0-57-amd64 (it has none at all)")]);
    expect(text).toContain("every module the system loads after the handoff will fail");
  });

  test('reboot mode without bootloader entries on BOOTEXT: boots on, saying why', async () => {
    const fake = machine(K2, { bootext: { "config.d/30-boot.toml": '[boot]\nkernel_switch = "reboot"\n' } });
    const { report } = await boot(fake);
    expect(fake.kexecLoaded).toBeUndefined();
    expect(report.kernel?.errors[0]).toContain("BOOTEXT has no bootloader entries");
  });

  test("kexec mode on a disk with GRUB entries: the entries follow the slot before the kexec, and a kexec that returns reboots into them", async () => {
    const fake = connectToNetwork(machine(K1, { bootext: await bootextWithEntries(K1) }));
    publish(fake, { version: "2.0", kernel: K2 });
    const { outcome, report } = await boot(fake);
    expect(outcome).toBe("handed-off");
    expect(fake.kexecBooted).toHaveLength(1);
    const k2 = pairId(slotPairOf(K2));
    const k1 = pairId(slotPairOf(K1));
    expect(fake.peek("/run/controller/bootext/Kernel/active")).toBe(`<symlink → pairs/${k2}>`);
    expect(fake.peek("/run/controller/bootext/Kernel/recovery")).toBe(`<symlink → pairs/${k1}>`);
    expect(parseGrubenv(fake.peek("/run/controller/bootext/grub/grubenv") ?? "")).toEqual(new Map([["saved_entry", "recovery"], ["next_entry", "active"]]));
    expect(fake.reboots).toBe(1);
    expect(report.kernel?.errors).toEqual([
      "Cannot kexec SYSFS on /dev/vda2 (version 2.0)'s kernel 6.1.0-57-amd64: kexec --exec returned",
      "Cannot reboot into SYSFS on /dev/vda2 (version 2.0)'s kernel 6.1.0-57-amd64: the reset returned; booting on the running kernel",
    ]);
  });

  test('reboot mode: the slot\'s kernel becomes the active entry, the old one recovery, grubenv tries it once, then the reset', async () => {
    const fake = machine(K2, { bootext: { ...(await bootextWithEntries(K2)), "config.d/30-boot.toml": '[boot]\nkernel_switch = "reboot"\n' } });
    const { report } = await boot(fake);
    expect(fake.kexecLoaded).toBeUndefined();
    expect(fake.peek("/run/controller/bootext/Kernel/active")).toBe(`<symlink → pairs/${pairId(slotPairOf(K1))}>`);
    expect(fake.peek("/run/controller/bootext/Kernel/recovery")).toBe(`<symlink → pairs/${pairId(slotPairOf(K2))}>`);
    expect(fake.reboots).toBe(1);
    expect(report.kernel?.outcome).toBe("reboot-failed");
  });

  test("reboot mode counts one attempt per switch: the boot GRUB starts from the armed reboot (BOOT_IMAGE active, saved_entry recovery) counts none and is healthy; later boots count it used", async () => {
    // with health.max_attempts = 1, counting the armed boot too would roll 2.0 back before it ever ran
    const reboot = { ...(await bootextWithEntries(K1)), "config.d/30-boot.toml": '[boot]\nkernel_switch = "reboot"\n[health]\nmax_attempts = 1\n' };
    const first = connectToNetwork(machine(K1, { bootext: reboot, cmdline: "BOOT_IMAGE=/Kernel/active-kernel root=controller console=ttyS0" }));
    publish(first, { version: "2.0", kernel: K2 });
    await boot(first);
    expect(first.reboots).toBe(1);
    expect(attemptsOn(first, "/dev/vda2")).toBe(1);

    const armed = machine(K2, { cmdline: "BOOT_IMAGE=/Kernel/active-kernel root=controller console=ttyS0", disks: first.snapshotDevices() });
    const { report, text } = await boot(armed);
    expect(report.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda2" });
    expect(attemptsOn(armed, "/dev/vda2")).toBe(1);
    expect(text).toContain("controller: attempt: this boot is the one BOOTEXT's armed reboot sent GRUB to (BOOT_IMAGE=/Kernel/active-kernel, grubenv saved_entry=recovery)");
    expect(report.kernel).toMatchObject({ outcome: "boot-on", errors: [] });

    // the new system never marked itself good: GRUB boots the recovery entry, and that boot finds the one attempt used
    const recovery = machine(K1, { cmdline: "BOOT_IMAGE=/Kernel/recovery-kernel root=controller console=ttyS0", disks: armed.snapshotDevices() });
    expect((await boot(recovery)).text).toContain("ROLLBACK: rollback: SYSFS on /dev/vda2 unhealthy");
    // as does a boot that did not come from GRUB
    const other = machine(K2, { disks: armed.snapshotDevices() });
    expect((await boot(other)).text).toContain("ROLLBACK: rollback: SYSFS on /dev/vda2 unhealthy");
  });

  test("health.max_attempts = 1 gives a new kernel its one try: the kexec'd boot of 2.0 is healthy (its attempt counted before the kexec), the boot after it without a mark-good rolls back", async () => {
    const oneAttempt = { "config.d/70-health.toml": "[health]\nmax_attempts = 1\n" };
    const first = connectToNetwork(machine(K1, { bootext: oneAttempt }));
    publish(first, { version: "2.0", kernel: K2 });
    await boot(first);
    expect(attemptsOn(first, "/dev/vda2")).toBe(1);

    const kexecd = machine(K2, { cmdline: "root=controller console=ttyS0 rd.controller.kexec=slot-kernel", disks: first.snapshotDevices() });
    const arrived = await boot(kexecd);
    expect(arrived.text).not.toContain("ROLLBACK");
    expect(arrived.report.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda2" });
    expect(arrived.report.update.slots.find((slot) => slot.device === "/dev/vda2")?.conditions).toContainEqual({
      condition: "attempts",
      result: "pass",
      detail: "0 of 1 boots without a mark-good before this one, which the kernel switch counted",
    });
    expect(attemptsOn(kexecd, "/dev/vda2")).toBe(1);

    // 2.0 hung before its mark-good: the next boot, on K1 as the machine's bootloader starts it, rolls back
    const after = machine(K1, { disks: kexecd.snapshotDevices() });
    const { text, report } = await boot(after);
    expect(text).toContain("ROLLBACK: rollback: SYSFS on /dev/vda2 unhealthy; BACKUPFS on /dev/vda1 becomes SYSFS and boots");
    expect(report.boot.booted).toMatchObject({ device: "/dev/vda1" });
  });

  test("reboot mode when the active entry already is the slot's kernel, grubenv says the bootloader was sent there, and another runs: no second reboot", async () => {
    const armed = grubenv({ saved_entry: "recovery" });
    if (!armed.ok) throw new Error(armed.problem);
    const fake = machine(K2, { bootext: { ...(await bootextWithEntries(K1)), "grub/grubenv": armed.text, "config.d/30-boot.toml": '[boot]\nkernel_switch = "reboot"\n' } });
    const { report } = await boot(fake);
    expect(fake.reboots).toBe(0);
    expect(report.kernel?.errors[0]).toContain("not rebooting again");
  });

  test("reboot mode when the active entry already is the slot's kernel but no reboot was armed (a power cut before it): the reboot, armed now", async () => {
    const fake = machine(K2, { bootext: { ...(await bootextWithEntries(K1)), "config.d/30-boot.toml": '[boot]\nkernel_switch = "reboot"\n' } });
    const { report } = await boot(fake);
    expect(fake.reboots).toBe(1);
    expect(report.kernel?.reasons[1]).toContain("but the bootloader was never sent there");
    expect(parseGrubenv(fake.peek("/run/controller/bootext/grub/grubenv") ?? "").get("next_entry")).toBe("active");
  });
});

function slotPairOf(kernel: ImageKernel): KernelPair {
  const { signed } = imageKernelFiles(kernel);
  return { release: signed.release, kernel: signed.vmlinuz, initrd: signed.initrd, from: "/images/slot" };
}

/** BOOTEXT with GRUB's folder and `active` as its active kernel entry, as the controller writes them. */
async function bootextWithEntries(active: ImageKernel): Promise<Tree> {
  const scratch = new FakeSystem().addDevice({ device: "/dev/vdz", label: "BOOTEXT", fsType: "ext4" }, { ...UPDATE_CONFIG, "grub/grub.cfg": "# grub.cfg\n" });
  scratch.addTree("/images/slot", imageKernelFiles(active).tree).addTree("/mnt", {});
  scratch.commandHandlers.set(TOOLS.fsfreeze, () => ({ stdout: "" }));
  await scratch.mount({ kind: "filesystem", source: "/dev/vdz", target: "/mnt", fsType: "ext4", options: ["rw"] });
  await writeBootEntries(scratch, memoryLogger().log, { mountPoint: "/mnt", readOnly: false }, slotPairOf(active), undefined, NO_CUTS);
  return scratch.snapshotDevices()[0]?.tree ?? {};
}
