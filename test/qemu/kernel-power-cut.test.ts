// The power-cut proof of the kernel switch (issue 14): QEMU is killed (SIGKILL,
// no shutdown of any kind) at each of KERNEL_SWITCH_CUT_POINTS, and the machine
// then boots from its disk through GRUB, on its own, until Debian's systemd
// starts. Every row must end on a verified system running the kernel its own
// image carries, with at most the one reboot a switch takes, no rollback and
// no error or warning of the kernel stage. What booted is read from the last
// kernel's controller lines (the slot, its health checks with the image hash,
// the kernel match, the handoff); kernel-switch.test.ts checks the rest of a
// Debian boot on the same kernels.
//
// The machine: a GRUB disk (BIOS) whose SYSFS holds debian-2.0 (kernel K2, its
// signed record, just installed) and BACKUPFS debian-1.0 (K1, marked good);
// BOOTEXT's active entry is still K1's pair, its recovery entry an older pair.
// So its next boot runs K1 and the kernel stage switches to K2:
// every row in reboot mode, where all the points are reached (the BOOTEXT
// entries, grubenv, the attempt before the reset), and the attempt before a
// kexec in kexec mode (its entry writes are the same steps as reboot mode's).
//
// The boot that is cut starts K1 and debian-1.0's initrd with QEMU's -kernel,
// the same bytes GRUB's active entry holds: the cut point goes on the kernel
// command line, and GRUB's own command line lives on BOOTEXT, whose state is
// what the rows test. It resumes a VM state saved once per mode at dracut's
// pre-mount break, before the controller starts (saved-cut-boot.ts), on a copy
// of the disk it was saved with. Every boot after the cut is GRUB's, from
// nothing. Two VMs at a time.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GRUB_DIR, grubenv } from "../../controller/plans/grub-config.ts";
import { type KernelSwitchCutPoint, KERNEL_SWITCH_CUT_POINTS } from "../../controller/system/cut-points.ts";
import { addGrubLoader, buildGrubDisk } from "../../qemu-harness/grub-disk.ts";
import { withVm } from "../../qemu-harness/vm.ts";
import { hostFile, writeKernelDir } from "../../scripts/disk/kernel-pair.ts";
import { DEBIAN, publishDebianImages } from "./debian-fixtures.ts";
import { ARTIFACTS, runFolder, textTable } from "./fixtures.ts";
import { GRUB_APPEND } from "./grub-fixtures.ts";
import { cutFromSavedBoot, type SavedCutBoot, saveCutBoot } from "./saved-cut-boot.ts";
import { MARKED_GOOD, slotFolder } from "./update-fixtures.ts";

const PARALLEL_VMS = 2;
/** KERNEL_POWER_CUT_POINTS=kernel-entry-active-switched reruns only those rows (both modes) */
const ONLY_POINTS = process.env.KERNEL_POWER_CUT_POINTS?.split(",");
/** A Debian boot through GRUB under TCG, with a kernel switch on the way, on a host running another VM. */
const BOOT_TIMEOUT_MS = 600_000;
const SHUTDOWN_TIMEOUT_MS = 180_000;
const REBOOT_LINE = "controller: kernel: rebooting into BOOTEXT's active entry";
/** systemd's banner: the controller handed off to Debian's init */
const SYSTEMD_STARTED = /Welcome to .*Debian/;

type Mode = "reboot" | "kexec";
interface Cut {
  readonly point: KernelSwitchCutPoint;
  readonly mode: Mode;
}
const CUTS: readonly Cut[] = [
  ...KERNEL_SWITCH_CUT_POINTS.map((point) => ({ point, mode: "reboot" as const })),
  { point: "kernel-switch-attempt-written", mode: "kexec" },
];

interface World {
  readonly k1: string;
  readonly k2: string;
  readonly work: string;
  /** each mode's disk, with the cut boot saved at the break */
  readonly saved: Readonly<Record<Mode, SavedCutBoot>>;
}

let world: World;
beforeAll(async () => {
  const work = join(await runFolder(), "kernel-power-cut");
  await mkdir(work, { recursive: true });
  const { publicKey, v1, v2 } = await publishDebianImages(work);
  // just installed: no health record yet, as the install leaves it
  const sysfs = await slotFolder(join(work, "sysfs-v2"), { image: DEBIAN.v2, repo: v2.repo });
  const backup = await slotFolder(join(work, "backup-v1"), { image: DEBIAN.v1, repo: v1.repo, health: MARKED_GOOD });
  // GRUB's entries as an earlier update left them: active K1's pair (the bytes of debian-1.0's /boot, so the
  // pair the controller names for that image), recovery the pair the disk was made with (scripts/blank-disk's
  // default: the project's kernel with the shell initramfs); so the switch to K2 moves both links
  const k1Pair = { release: v1.release, kernel: await hostFile(DEBIAN.v1Kernel, "kernel"), initrd: await hostFile(DEBIAN.v1Initrd, "initrd"), from: "" };
  const madeWith = { release: v2.release, kernel: await hostFile(ARTIFACTS.kernel, "kernel"), initrd: await hostFile(ARTIFACTS.initramfs.shell, "initramfs"), from: "" };
  const disk = async (mode: Mode) => {
    const bootext = join(work, `bootext-${mode}`);
    await mkdir(join(bootext, "config.d"), { recursive: true });
    await writeFile(join(bootext, "config.d/60-fleet.toml"), `[update]\ntrusted_keys = ["${publicKey}"]\n`);
    await writeFile(join(bootext, "config.d/30-boot.toml"), `[boot]\nkernel_switch = "${mode}"\n`);
    await writeKernelDir(bootext, k1Pair, madeWith);
    await addGrubLoader(bootext, { append: GRUB_APPEND, firmware: "bios" });
    const env = grubenv({});
    if (!env.ok) throw new Error(env.problem);
    await writeFile(join(bootext, GRUB_DIR, "grubenv"), env.text);
    const path = join(work, `base-${mode}.img`);
    const grubWork = join(work, `grub-${mode}`);
    await mkdir(grubWork, { recursive: true });
    // a slot holds one 235 MiB image; BOOTEXT three pairs of about 100 MB while the switch writes the third
    await buildGrubDisk(path, grubWork, [
      { label: "SYSFS", sizeMiB: 400, content: sysfs },
      { label: "BACKUPFS", sizeMiB: 400, content: backup },
      { label: "BOOTEXT", sizeMiB: 512, content: bootext },
    ]);
    return path;
  };
  // the boot every row's cut resumes: K1 and debian-1.0's initrd, as GRUB's active entry starts them
  const save = async (mode: Mode) =>
    saveCutBoot({ kernel: DEBIAN.v1Kernel, initrd: DEBIAN.v1Initrd, append: GRUB_APPEND, disks: [await disk(mode)] }, work, `saved-${mode}`, BOOT_TIMEOUT_MS);
  const [reboot, kexec] = await Promise.all([save("reboot"), save("kexec")]);
  world = { k1: v1.release, k2: v2.release, work, saved: { reboot, kexec } };
}, 600_000 + BOOT_TIMEOUT_MS);

interface Row {
  readonly cut: Cut;
  readonly reached: string;
  /** each boot after the cut: GRUB's entry, the kernels, and how it ended */
  readonly boots: readonly string[];
  readonly ended: string;
  readonly problems: string[];
}
const rows: Row[] = [];

afterAll(() => {
  if (rows.length === 0) return;
  const table = [
    ["cut point", "mode", "cut", "boots after it (GRUB entry: kernels)", "ended on", "result"],
    ...rows.map((row) => [row.cut.point, row.cut.mode, row.reached, row.boots.join("; "), row.ended, row.problems.length === 0 ? "pass" : `FAIL: ${row.problems.join("; ")}`]),
  ];
  console.log(`\nkernel-switch power-cut table:\n${textTable(table)}\n`);
});

/** "active: 6.1.0-50-amd64 → 6.1.0-57-amd64 (kexec)": which entry GRUB booted and every kernel banner of the boot. */
function describeBoot(console: string, rebooted: boolean): string {
  const entry = /grub: booting (\w+)/.exec(console)?.[1] ?? "no GRUB line";
  const kernels = [...console.matchAll(/Linux version (\S+) /g)].map((match) => match[1]);
  return `${entry}: ${kernels.join(" → ") || "no kernel"}${kernels.length > 1 ? " (kexec)" : ""}${rebooted ? ", reboot" : ""}`;
}

/**
 * What the last kernel's controller said of the boot it carried out, from its
 * own console lines: the slot it booted, that its health checks passed (the
 * image hashed against its signed sha512 among them), that the running kernel
 * is the slot's, and the handoff.
 */
function lastController(console: string): { kernel?: string; version?: string; healthy: boolean; kernelMatches: boolean; handedOff: boolean } {
  const banners = [...console.matchAll(/Linux version (\S+) /g)];
  const last = banners.at(-1);
  const text = last === undefined ? console : console.slice(last.index);
  const sysfs = /controller: slots: SYSFS on (\S+): version (\S+)/.exec(text);
  const device = sysfs?.[1] ?? "?";
  return {
    ...(last?.[1] === undefined ? {} : { kernel: last[1] }),
    ...(sysfs?.[2] === undefined ? {} : { version: sysfs[2] }),
    healthy: text.includes(`controller: health: SYSFS on ${device} is healthy`) && text.includes(`controller: health: boot SYSFS on ${device}`),
    kernelMatches: last?.[1] !== undefined && text.includes(`controller: kernel: the running kernel is the slot's: ${last[1]} `),
    handedOff: text.includes("controller: handoff: handing off to /sbin/init"),
  };
}

async function cutAndRecover(cut: Cut): Promise<Row> {
  const disk = join(world.work, `cut-${cut.mode}-${cut.point}.qcow2`);
  const problems: string[] = [];
  const boots: string[] = [];
  let reached = "not reached";
  let ended = "nothing";
  try {
    await cutFromSavedBoot(world.saved[cut.mode], disk, cut.point, BOOT_TIMEOUT_MS);
    reached = "killed there";
    // a switch takes one reboot at most; a third boot would be a loop
    for (let boot = 1; boot <= 3; boot++) {
      const started = performance.now();
      const { console, rebooted } = await withVm({ fromDisk: true, firmware: "bios", disks: [disk], diskFormat: "qcow2", writeDisks: true }, async (vm) => {
        const end = await vm.waitFor(new RegExp(`${SYSTEMD_STARTED.source}|${REBOOT_LINE}`), BOOT_TIMEOUT_MS);
        const reset = end[0] === REBOOT_LINE;
        // QEMU runs with -no-reboot: the reset ends this VM, and the next start is the reboot
        if (reset) await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
        return { console: vm.console(), rebooted: reset };
      });
      await Bun.write(join(await runFolder(), `kernel-power-cut-${cut.mode}-${cut.point}-boot${boot}.txt`), console);
      boots.push(`${describeBoot(console, rebooted)} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
      if (console.includes("ROLLBACK")) problems.push(`boot ${boot} rolled back`);
      for (const error of console.matchAll(/controller: kernel: (ERROR|WARNING): .*/g)) problems.push(`boot ${boot}: ${error[0]}`);
      if (rebooted) {
        if (boot === 2) problems.push("a second reboot: one switch takes one");
        continue;
      }
      const last = lastController(console);
      ended = `${last.kernel ?? "?"}: ${last.version ?? "no version"}, ${last.healthy ? "verified" : "NOT verified"}`;
      if (last.kernel !== world.k2) problems.push(`runs kernel ${last.kernel ?? "?"}, expected debian-2.0's ${world.k2}`);
      if (last.version !== "2.0") problems.push(`SYSFS's version is ${last.version ?? "not said"}, expected 2.0`);
      if (!last.healthy) problems.push("the controller did not say SYSFS is healthy (its image checked against the signed sha512)");
      if (!last.kernelMatches) problems.push(`the kernel stage did not say the running kernel is the slot's ${world.k2}`);
      if (!last.handedOff) problems.push("no handoff to Debian's init");
      break;
    }
    return { cut, reached, boots, ended, problems };
  } catch (error) {
    problems.push((error as Error).message.split("\n")[0] ?? "failed");
    return { cut, reached, boots, ended, problems };
  } finally {
    await rm(disk, { force: true });
  }
}

test(
  `a power cut at each of the ${KERNEL_SWITCH_CUT_POINTS.length} cut points of a kernel switch leaves a machine that boots, through GRUB and on its own, the verified new system on its own kernel`,
  async () => {
    expect(ONLY_POINTS?.filter((point) => !(KERNEL_SWITCH_CUT_POINTS as readonly string[]).includes(point)) ?? []).toEqual([]);
    // every point has a row
    expect(KERNEL_SWITCH_CUT_POINTS.filter((point) => !CUTS.some((cut) => cut.point === point))).toEqual([]);
    const queue = CUTS.filter((cut) => ONLY_POINTS === undefined || ONLY_POINTS.includes(cut.point));
    const worker = async () => {
      for (let cut = queue.shift(); cut !== undefined; cut = queue.shift()) rows.push(await cutAndRecover(cut));
    };
    await Promise.all(Array.from({ length: PARALLEL_VMS }, worker));
    rows.sort((a, b) => CUTS.indexOf(a.cut) - CUTS.indexOf(b.cut));
    expect(rows.filter((row) => row.problems.length > 0)).toEqual([]);
  },
  Math.ceil(CUTS.length / PARALLEL_VMS) * 4 * BOOT_TIMEOUT_MS,
);
