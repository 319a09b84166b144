import { describe, expect, test } from "bun:test";
import { KERNEL_SWITCH_DEFAULT, KERNEL_SWITCH_MODES } from "../../../controller/config/schema.ts";
import {
  arrivedByArmedReboot,
  type KernelSwitchInput,
  type KernelSwitchMode,
  type KernelSwitchPlan,
  planKernelSwitch,
  slotKexecCmdline,
} from "../../../controller/plans/kernel-switch.ts";
import { KERNEL_CMDLINE_MAX_BYTES } from "../../../controller/plans/kexec-cmdline.ts";
import type { KernelIdentity } from "../../../controller/update/kernel-release.ts";
import type { SignedKernel } from "../../../controller/update/manifest.ts";

const BUILD_1 = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)";
const BUILD_2 = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.193-1 (2026-12-03)";
const K2 = "6.1.0-58-amd64";
const SLOT = "SYSFS on /dev/vda2 (version 2.0)";
const CMDLINE = "console=ttyS0 root=controller panic=10 quiet\n";

const slotKernel: SignedKernel = {
  release: K2,
  build: BUILD_2,
  vmlinuz: { path: `/boot/vmlinuz-${K2}`, size: 8_000_000, sha512: "b".repeat(128) },
  initrd: { path: `/boot/initrd.img-${K2}`, size: 30_000_000, sha512: "c".repeat(128) },
};

/** The running kernels the plan can meet, against the slot's kernel K2 (build 2). */
const RUNNING: Record<string, KernelIdentity | undefined> = {
  "the slot's": { release: K2, build: BUILD_2 },
  "the slot's release, build unknown": { release: K2 },
  "another release": { release: "6.1.0-57-amd64", build: BUILD_1 },
  "the slot's release, another build": { release: K2, build: BUILD_1 },
  unknown: undefined,
};

const ENTRIES: Record<string, KernelSwitchInput["bootEntry"]> = {
  none: { exists: false },
  "the slot's": { exists: true, matchesSlot: true, rebootArmed: false },
  "the slot's, a reboot armed before": { exists: true, matchesSlot: true, rebootArmed: true },
  "another kernel's": { exists: true, matchesSlot: false, rebootArmed: false },
  "another kernel's, a reboot armed before": { exists: true, matchesSlot: false, rebootArmed: true },
};

function input(overrides: Partial<KernelSwitchInput> = {}): KernelSwitchInput {
  return {
    mode: "kexec",
    running: RUNNING["another release"],
    slot: SLOT,
    slotKernel,
    cmdline: CMDLINE,
    markerFrom: undefined,
    bootEntry: { exists: false },
    ...overrides,
  };
}

/**
 * The decision table of docs/issue-14/plans14.md, written out on its own: the
 * action for one combination, and the fallback of a kexec.
 */
function expected(mode: KernelSwitchMode, running: string, hasKernel: boolean, marker: boolean, entry: string): string {
  if (!hasKernel || mode === "off") return "boot-on";
  const same = running === "the slot's" || running === "the slot's release, build unknown";
  if (same || marker) return "boot-on";
  // a reboot until the bootloader was sent to the slot's kernel once
  if (mode === "reboot") return entry === "none" || entry === "the slot's, a reboot armed before" ? "boot-on" : "write-entries-then-reboot";
  return entry === "none" ? "kexec, else boot on" : "kexec, else reboot";
}

function actionOf(plan: KernelSwitchPlan): string {
  if (plan.action !== "kexec") return plan.action;
  return plan.fallback.action === "reboot" ? "kexec, else reboot" : "kexec, else boot on";
}

describe("planKernelSwitch: every combination of mode, running kernel, slot kernel, marker and bootloader entry", () => {
  const rows: string[] = [];
  for (const mode of KERNEL_SWITCH_MODES) {
    for (const [runningName, running] of Object.entries(RUNNING)) {
      for (const hasKernel of [true, false]) {
        for (const marker of [false, true]) {
          for (const [entryName, bootEntry] of Object.entries(ENTRIES)) {
            const name = `${mode}, running ${runningName}, ${hasKernel ? "slot kernel" : "no slot kernel"}, ${marker ? "marker" : "no marker"}, entry ${entryName}`;
            rows.push(name);
            test(name, () => {
              const plan = planKernelSwitch(
                input({ mode, running, slotKernel: hasKernel ? slotKernel : undefined, markerFrom: marker ? "slot-kernel" : undefined, bootEntry }),
              );
              expect(actionOf(plan)).toBe(expected(mode, runningName, hasKernel, marker, entryName));
              // every plan says why, in sentences
              expect(plan.reasons.length + (plan.action === "boot-on" ? plan.errors.length : 0)).toBeGreaterThan(0);
              // never a second switch on a boot that came by kexec
              if (marker) expect(plan.action).toBe("boot-on");
              // BOOTEXT is written only when a switch is on, the slot has a kernel and the active entry is another's
              const behind = mode !== "off" && hasKernel && entryName.startsWith("another kernel's");
              if (plan.action !== "write-entries-then-reboot") expect(plan.bringEntriesInStep).toBe(behind);
              if (plan.action === "write-entries-then-reboot") expect(mode !== "off" && hasKernel && entryName !== "none").toBe(true);
              // the attempt is counted before the kernel leaves
              if (plan.action !== "boot-on") expect(plan.countAttemptFirst).toBe(true);
              // a switch that is needed and does not happen is an error; nothing else is
              const same = runningName === "the slot's" || runningName === "the slot's release, build unknown";
              const needed = mode !== "off" && hasKernel && !same;
              if (plan.action === "boot-on") expect(plan.errors.length > 0).toBe(needed);
              if (plan.action === "kexec") {
                expect(plan.cmdline).toBe("console=ttyS0 root=controller panic=10 quiet rd.controller.kexec=slot-kernel");
                expect(plan.kernel).toEqual(slotKernel.vmlinuz);
                expect(plan.initrd).toEqual(slotKernel.initrd);
              }
            });
          }
        }
      }
    }
  }
  test("the table has every combination", () => {
    expect(rows).toHaveLength(3 * 5 * 2 * 2 * 5);
    expect(new Set(rows).size).toBe(rows.length);
  });
});

describe("planKernelSwitch: what each plan says", () => {
  test("kexec with entries behind: counted, entries written, kexec, and a reboot if it fails", () => {
    expect(planKernelSwitch(input({ bootEntry: { exists: true, matchesSlot: false, rebootArmed: false } }))).toEqual({
      action: "kexec",
      release: K2,
      kernel: slotKernel.vmlinuz,
      initrd: slotKernel.initrd,
      cmdline: "console=ttyS0 root=controller panic=10 quiet rd.controller.kexec=slot-kernel",
      bringEntriesInStep: true,
      countAttemptFirst: true,
      fallback: { action: "reboot", why: `the kexec failed: rebooting into BOOTEXT's active entry, ${SLOT}'s kernel ${K2}` },
      reasons: [
        `the running kernel is 6.1.0-57-amd64 (${BUILD_1}), the slot's is ${K2} (${BUILD_2})`,
        `boot.kernel_switch is "kexec": the boot attempt is counted, then ${SLOT}'s kernel ${K2} is kexec'd with rd.controller.kexec=slot-kernel`,
        "BOOTEXT's active entry is not yet the slot's kernel: it is written now, the previous pair kept as the recovery entry",
      ],
      warnings: [],
    });
  });

  test("kexec without a bootloader: a failed kexec boots on, with an error", () => {
    const plan = planKernelSwitch(input());
    expect(plan).toMatchObject({
      action: "kexec",
      bringEntriesInStep: false,
      fallback: { action: "boot-on", error: `Cannot boot ${SLOT}'s own kernel: the kexec failed and BOOTEXT has no bootloader entry to reboot into; booting on the running kernel` },
    });
  });

  test("the second controller, after the kexec: boots on, says it came by kexec", () => {
    expect(planKernelSwitch(input({ running: RUNNING["the slot's"], markerFrom: "slot-kernel" }))).toEqual({
      action: "boot-on",
      bringEntriesInStep: false,
      reasons: ["this boot came by kexec (rd.controller.kexec=slot-kernel)", `the running kernel is the slot's: ${K2} (${BUILD_2}), same release and build`],
      warnings: [],
      errors: [],
    });
  });

  test("a marker, yet the wrong kernel: no second kexec, an error, entries still brought in step", () => {
    const plan = planKernelSwitch(input({ markerFrom: "lab-2026.12", bootEntry: { exists: true, matchesSlot: false, rebootArmed: false }, slotModules: [K2] }));
    expect(plan).toEqual({
      action: "boot-on",
      bringEntriesInStep: true,
      reasons: [
        "this boot came by kexec (rd.controller.kexec=lab-2026.12)",
        "BOOTEXT's active entry is not yet the slot's kernel: it is written now, the previous pair kept as the recovery entry",
      ],
      warnings: [
        `${SLOT} runs on the wrong kernel 6.1.0-57-amd64, but its image has no /lib/modules/6.1.0-57-amd64 (it has only ${K2}): every module the system loads after the handoff will fail (drivers, filesystems, binfmt_misc)`,
      ],
      errors: [
        `Cannot boot ${SLOT}'s own kernel: the running kernel is 6.1.0-57-amd64 (${BUILD_1}), the slot's is ${K2} (${BUILD_2}), yet a controller before this one already switched by kexec (rd.controller.kexec=lab-2026.12); not switching twice: booting on the running kernel`,
      ],
    });
  });

  /** The reboot plan, with the sentence that says why. */
  const rebootPlan = (why: string): KernelSwitchPlan => ({
    action: "write-entries-then-reboot",
    release: K2,
    kernel: slotKernel.vmlinuz,
    initrd: slotKernel.initrd,
    countAttemptFirst: true,
    reasons: [`the running kernel is 6.1.0-57-amd64 (${BUILD_1}), the slot's is ${K2} (${BUILD_2})`, why],
    warnings: [],
  });

  test("reboot: entries written, then the reboot", () => {
    expect(planKernelSwitch(input({ mode: "reboot", bootEntry: { exists: true, matchesSlot: false, rebootArmed: false } }))).toEqual(
      rebootPlan(`boot.kernel_switch is "reboot": ${SLOT}'s kernel ${K2} becomes BOOTEXT's active entry (the previous pair the recovery entry), then the machine reboots into it`),
    );
  });

  test("reboot, the active entry already is the slot's kernel and the bootloader was sent there: never a second reboot", () => {
    const plan = planKernelSwitch(input({ mode: "reboot", bootEntry: { exists: true, matchesSlot: true, rebootArmed: true } }));
    expect(plan).toMatchObject({ action: "boot-on", bringEntriesInStep: false, errors: [expect.stringContaining("not rebooting again: booting on the running kernel")] });
  });

  test("reboot, the active entry already is the slot's kernel but no reboot was armed (a cut before it): the reboot", () => {
    expect(planKernelSwitch(input({ mode: "reboot", bootEntry: { exists: true, matchesSlot: true, rebootArmed: false } }))).toEqual(
      rebootPlan(`BOOTEXT's active entry already is ${SLOT}'s kernel ${K2}, but the bootloader was never sent there (grubenv's saved_entry is not "recovery"): the machine reboots into it`),
    );
  });

  test("reboot without a bootloader: an error that names kexec as the way", () => {
    const plan = planKernelSwitch(input({ mode: "reboot" }));
    expect(plan).toMatchObject({
      action: "boot-on",
      errors: [`Cannot boot ${SLOT}'s own kernel by reboot: BOOTEXT has no bootloader entries (Kernel/active-kernel) for a bootloader to boot; booting on the running kernel (boot.kernel_switch = "kexec" needs no bootloader)`],
    });
  });

  test("off: touches nothing, warns that the slot's kernel is not the one running", () => {
    expect(planKernelSwitch(input({ mode: "off", bootEntry: { exists: true, matchesSlot: false, rebootArmed: false } }))).toEqual({
      action: "boot-on",
      bringEntriesInStep: false,
      reasons: ['boot.kernel_switch is "off": no kernel switch, BOOTEXT\'s entries untouched'],
      warnings: [`${SLOT} carries kernel ${K2} but boots on the running kernel: boot.kernel_switch is "off" (the running kernel is 6.1.0-57-amd64 (${BUILD_1}), the slot's is ${K2} (${BUILD_2}))`],
      errors: [],
    });
    expect(planKernelSwitch(input({ mode: "off", running: RUNNING["the slot's"] }))).toMatchObject({ warnings: [] });
  });

  test("an image without a kernel: boots on the running kernel, loudly when it has no modules for it", () => {
    expect(planKernelSwitch(input({ slotKernel: undefined, slotModules: ["6.1.0-57-amd64"] }))).toEqual({
      action: "boot-on",
      bringEntriesInStep: false,
      reasons: [`${SLOT} carries no kernel of its own: it boots on the running kernel 6.1.0-57-amd64, as before`],
      warnings: [],
      errors: [],
    });
    expect(planKernelSwitch(input({ slotKernel: undefined, slotModules: [] }))).toMatchObject({
      warnings: [`${SLOT} runs on the running kernel 6.1.0-57-amd64, but its image has no /lib/modules/6.1.0-57-amd64 (it has none at all): every module the system loads after the handoff will fail (drivers, filesystems, binfmt_misc)`],
    });
    expect(planKernelSwitch(input({ slotKernel: undefined, slotModules: [K2, "6.1.0-28-amd64"] }))).toMatchObject({ warnings: [expect.stringContaining(`(it has only ${K2}, 6.1.0-28-amd64)`)] });
    // modules not listed, or the running kernel unknown: nothing to warn about
    expect(planKernelSwitch(input({ slotKernel: undefined }))).toMatchObject({ warnings: [] });
    expect(planKernelSwitch(input({ slotKernel: undefined, running: undefined, slotModules: [] }))).toMatchObject({ warnings: [], reasons: [`${SLOT} carries no kernel of its own: it boots on the running kernel, as before`] });
  });

  test("the running kernel unknown: switch (the marker stops any loop), and the reason says it was not known", () => {
    expect(planKernelSwitch(input({ running: undefined }))).toMatchObject({ action: "kexec", reasons: [expect.stringContaining("the running kernel could not be read"), expect.any(String)] });
  });

  test("a command line too long for the marker: the kexec's fallback right away", () => {
    const long = `root=controller ${"x".repeat(KERNEL_CMDLINE_MAX_BYTES - 20)}`;
    expect(planKernelSwitch(input({ cmdline: long }))).toMatchObject({
      action: "boot-on",
      errors: [expect.stringContaining("Cannot kexec: the command line would be")],
    });
    expect(planKernelSwitch(input({ cmdline: long, bootEntry: { exists: true, matchesSlot: false, rebootArmed: false } }))).toMatchObject({
      action: "write-entries-then-reboot",
      reasons: [expect.any(String), expect.stringContaining("rebooting into BOOTEXT's active entry instead")],
    });
  });
});

describe("slotKexecCmdline", () => {
  test("this boot's line, an old marker replaced, the marker before init's arguments", () => {
    expect(slotKexecCmdline("root=controller rd.controller.kexec=u2 quiet -- single")).toEqual({ ok: true, cmdline: "root=controller quiet rd.controller.kexec=slot-kernel -- single" });
    expect(slotKexecCmdline("")).toEqual({ ok: true, cmdline: "rd.controller.kexec=slot-kernel" });
    // Heddle's flags stay: the marker alone keeps Heddle's stage from kexec'ing
    expect(slotKexecCmdline("heddle_update=u2")).toEqual({ ok: true, cmdline: "heddle_update=u2 rd.controller.kexec=slot-kernel" });
  });
  test("exactly at the kernel's limit, and one byte over", () => {
    const marker = " rd.controller.kexec=slot-kernel";
    expect(slotKexecCmdline("x".repeat(KERNEL_CMDLINE_MAX_BYTES - marker.length))).toMatchObject({ ok: true });
    expect(slotKexecCmdline("x".repeat(KERNEL_CMDLINE_MAX_BYTES - marker.length + 1))).toEqual({
      ok: false,
      problem: `Cannot kexec: the command line would be ${KERNEL_CMDLINE_MAX_BYTES + 1} bytes, the kernel takes at most ${KERNEL_CMDLINE_MAX_BYTES}`,
    });
  });
});

test("the proposed boot.kernel_switch: three modes, kexec by default", () => {
  expect([...KERNEL_SWITCH_MODES]).toEqual(["kexec", "reboot", "off"]);
  expect(KERNEL_SWITCH_DEFAULT).toBe("kexec");
});

describe("arrivedByArmedReboot: the one boot whose attempt the switching boot counted", () => {
  const armed = { bootImage: "/Kernel/active-kernel", savedEntry: "recovery", activePair: "K2-pair", slotPair: "K2-pair" };
  test("GRUB loaded the active entry, its lasting choice is still recovery, and the active entry is the slot's kernel", () => {
    expect(arrivedByArmedReboot(armed)).toBe(true);
  });
  test("anything else counts the attempt", () => {
    expect(arrivedByArmedReboot({ ...armed, bootImage: "/Kernel/recovery-kernel" })).toBe(false);
    expect(arrivedByArmedReboot({ ...armed, bootImage: undefined })).toBe(false);
    expect(arrivedByArmedReboot({ ...armed, bootImage: "/vmlinuz" })).toBe(false);
    expect(arrivedByArmedReboot({ ...armed, savedEntry: "active" })).toBe(false);
    expect(arrivedByArmedReboot({ ...armed, savedEntry: undefined })).toBe(false);
    expect(arrivedByArmedReboot({ ...armed, activePair: "K1-pair" })).toBe(false);
    expect(arrivedByArmedReboot({ ...armed, activePair: undefined })).toBe(false);
    expect(arrivedByArmedReboot({ ...armed, slotPair: undefined, activePair: undefined })).toBe(false);
  });
});
