// What the boot does once the slot to boot is chosen and verified, when that
// slot's image carries its own kernel (issue 14, "Boot the slot's own
// kernel"): boot on, kexec the slot's kernel, or write it to BOOTEXT as the
// bootloader's active entry and reboot. Pure: every input is plain data that a
// stage read before (the running kernel from /proc, the slot's signed record,
// boot.kernel_switch, the command line, BOOTEXT's entries), and the plan
// carries the reasons as sentences for the console and the report;
// boot/kernel-switch.ts carries the plan out.
//
// Never a loop: a kexec'd boot carries the kexec marker, and that boot never
// kexecs again (nor does Heddle's stage); a reboot is planned only until the
// bootloader has been sent to the slot's kernel once (grubenv's saved_entry
// "recovery", which only a healthy system's mark-good takes back), so a
// bootloader that boots another kernel anyway costs one reboot, never more.

import { editCmdline } from "../config/cmdline.ts";
import { KERNEL_SWITCH_MODES } from "../config/schema.ts";
import { type KernelIdentity, compareKernels, kernelIdentityOf } from "../update/kernel-release.ts";
import type { SignedKernel } from "../update/manifest.ts";
import { KERNEL_LINKS } from "./grub-config.ts";
import { KERNEL_CMDLINE_MAX_BYTES, KEXEC_BY, KEXEC_MARKER } from "./kexec-cmdline.ts";

/** boot.kernel_switch: how the boot gets onto the slot's own kernel. */
export type KernelSwitchMode = (typeof KERNEL_SWITCH_MODES)[number];

/** The marker's value when the controller kexecs a slot's kernel (a Heddle update's kexec puts the update's name there). */
export const SLOT_KERNEL_MARKER_VALUE = "slot-kernel";


export interface KernelSwitchInput {
  readonly mode: KernelSwitchMode;
  /** the running kernel (/proc/sys/kernel/osrelease and version); undefined when they could not be read */
  readonly running: KernelIdentity | undefined;
  /** the chosen slot, for the sentences: "SYSFS on /dev/vda2 (version 2.0)" */
  readonly slot: string;
  /** the kernel the slot's verified record signs; undefined: its image carries none (or its manifest is format 1) */
  readonly slotKernel: SignedKernel | undefined;
  /** the kernel releases the slot's image has modules for, when known: the warning when none is the running kernel's */
  readonly slotModules?: readonly string[];
  /** this boot's command line as the kernel got it (/proc/cmdline) */
  readonly cmdline: string;
  /** this controller as rd.controller.kexec_by names it (VERSION+COMMIT), for the kexec'd boot's report */
  readonly controller?: string;
  /** the kexec marker's value on this boot's command line: a controller before this one already kexec'd */
  readonly markerFrom: string | undefined;
  /**
   * BOOTEXT's bootloader entries: whether the active pair exists, whether it is already the slot's kernel and initrd,
   * and whether a reboot into it was armed before (grubenv's saved_entry is "recovery": the bootloader has been sent there once since)
   */
  readonly bootEntry: { readonly exists: false } | { readonly exists: true; readonly matchesSlot: boolean; readonly rebootArmed: boolean };
}

/** A file inside the slot's image, with what its signed record says it must be. */
export type BootFile = SignedKernel["vmlinuz"];

/** What to do when the kexec cannot load or returns. */
export type KexecFallback =
  | { readonly action: "reboot"; readonly why: string }
  | { readonly action: "boot-on"; readonly error: string };

export type KernelSwitchPlan =
  | {
      readonly action: "boot-on";
      /** bring BOOTEXT's active/recovery pair in step with the slot (kernel written, nothing rebooted), so the next cold boot needs no switch */
      readonly bringEntriesInStep: boolean;
      readonly reasons: readonly string[];
      readonly warnings: readonly string[];
      /** said on the console and in the report as an error: a switch that was due and cannot happen */
      readonly errors: readonly string[];
    }
  | {
      readonly action: "kexec";
      readonly release: string;
      /** verified against their signed size and sha512 before kexec loads them */
      readonly kernel: BootFile;
      readonly initrd: BootFile;
      /** this boot's command line with the marker */
      readonly cmdline: string;
      /** before the kexec: so the next cold boot needs none, and is the pair a fallback reboot boots */
      readonly bringEntriesInStep: boolean;
      /** the attempt is counted before the kexec: a kernel that panics or hangs still uses up the slot's attempts */
      readonly countAttemptFirst: true;
      readonly fallback: KexecFallback;
      readonly reasons: readonly string[];
      readonly warnings: readonly string[];
    }
  | {
      readonly action: "write-entries-then-reboot";
      readonly release: string;
      readonly kernel: BootFile;
      readonly initrd: BootFile;
      readonly countAttemptFirst: true;
      readonly reasons: readonly string[];
      readonly warnings: readonly string[];
    };

/** What a boot knows of how GRUB started it, for arrivedByArmedReboot. */
export interface GrubArrival {
  /** GRUB's BOOT_IMAGE= on the command line */
  readonly bootImage: string | undefined;
  /** grubenv's saved_entry */
  readonly savedEntry: string | undefined;
  /** the pair BOOTEXT's active link names */
  readonly activePair: string | undefined;
  /** the booted slot's kernel as a pair id; undefined when its image carries none */
  readonly slotPair: string | undefined;
}

/**
 * Pure: this boot is the one a reboot-mode switch sent GRUB to
 * (armRebootIntoActive: next_entry=active once, saved_entry=recovery), so the
 * boot before it already counted this attempt: GRUB loaded the active entry's
 * kernel while its lasting choice is still recovery, and the active entry is
 * the booted slot's kernel. Only that one boot matches: GRUB spends next_entry,
 * and later boots load the recovery entry (a person choosing "active" at GRUB's
 * menu matches too, and is at the machine).
 */
export function arrivedByArmedReboot(arrival: GrubArrival): boolean {
  return arrival.bootImage === `/${KERNEL_LINKS.activeKernel}` && arrival.savedEntry === "recovery" && arrival.slotPair !== undefined && arrival.activePair === arrival.slotPair;
}

/** The kexec'd kernel's command line: this boot's, any old marker replaced by ours (and by who kexec'd, when known). */
export function slotKexecCmdline(current: string, controller?: string): { readonly ok: true; readonly cmdline: string } | { readonly ok: false; readonly problem: string } {
  const added = [`${KEXEC_MARKER}=${SLOT_KERNEL_MARKER_VALUE}`, ...(controller === undefined ? [] : [`${KEXEC_BY}=${controller}`])];
  const cmdline = editCmdline(current.replace(/\s+$/, ""), (name) => name === KEXEC_MARKER || name === KEXEC_BY, added);
  const bytes = Buffer.byteLength(cmdline);
  if (bytes > KERNEL_CMDLINE_MAX_BYTES) {
    return { ok: false, problem: `Cannot kexec: the command line would be ${bytes} bytes, the kernel takes at most ${KERNEL_CMDLINE_MAX_BYTES}` };
  }
  return { ok: true, cmdline };
}

/** Pure: the loud warning when the slot boots on a kernel its image has no modules for; none when it has them or either side is unknown. */
export function modulesWarning(input: Pick<KernelSwitchInput, "slot" | "slotModules">, running: KernelIdentity | undefined, kernelWord: string): string[] {
  if (running === undefined || input.slotModules === undefined || input.slotModules.includes(running.release)) return [];
  const have = input.slotModules.length === 0 ? "none at all" : `only ${input.slotModules.join(", ")}`;
  return [
    `${input.slot} runs on ${kernelWord} ${running.release}, but its image has no /lib/modules/${running.release} (it has ${have}): ` +
      "every module the system loads after the handoff will fail (drivers, filesystems, binfmt_misc)",
  ];
}

/** Pure: what to do about the slot's kernel. Every combination of the inputs is tested in test/unit/plans/kernel-switch.test.ts. */
export function planKernelSwitch(input: KernelSwitchInput): KernelSwitchPlan {
  const { mode, running, slot, slotKernel, markerFrom, bootEntry } = input;
  const bootOn = (parts: { reasons: string[]; warnings?: string[]; errors?: string[]; bringEntriesInStep?: boolean }): KernelSwitchPlan => ({
    action: "boot-on",
    bringEntriesInStep: parts.bringEntriesInStep ?? false,
    reasons: parts.reasons,
    warnings: parts.warnings ?? [],
    errors: parts.errors ?? [],
  });
  const cameBy = markerFrom === undefined ? [] : [`this boot came by kexec (${KEXEC_MARKER}=${markerFrom})`];

  if (slotKernel === undefined) {
    return bootOn({
      reasons: [...cameBy, `${slot} carries no kernel of its own: it boots on the running kernel${running === undefined ? "" : ` ${running.release}`}, as before`],
      warnings: modulesWarning(input, running, "the running kernel"),
    });
  }
  const comparison = running === undefined ? undefined : compareKernels(running, kernelIdentityOf(slotKernel));
  const unknown = "the running kernel could not be read (/proc/sys/kernel/osrelease)";
  const entriesBehind = bootEntry.exists && !bootEntry.matchesSlot;
  const inStep = entriesBehind ? ["BOOTEXT's active entry is not yet the slot's kernel: it is written now, the previous pair kept as the recovery entry"] : [];

  if (mode === "off") {
    const mismatch = comparison?.same === true ? [] : [`${slot} carries kernel ${slotKernel.release} but boots on the running kernel: boot.kernel_switch is "off" (${comparison?.why ?? unknown})`];
    return bootOn({
      reasons: [...cameBy, `boot.kernel_switch is "off": no kernel switch, BOOTEXT's entries untouched`],
      warnings: [...mismatch, ...modulesWarning(input, running, "the running kernel")],
    });
  }

  if (comparison?.same === true) {
    return bootOn({ reasons: [...cameBy, comparison.why, ...inStep], bringEntriesInStep: entriesBehind });
  }
  const why = comparison?.why ?? unknown;
  const files = { release: slotKernel.release, kernel: slotKernel.vmlinuz, initrd: slotKernel.initrd };

  if (markerFrom !== undefined) {
    // a controller before this one already switched, and still this is not the slot's kernel: kexec'ing again could loop forever
    return bootOn({
      reasons: [...cameBy, ...inStep],
      bringEntriesInStep: entriesBehind,
      errors: [`Cannot boot ${slot}'s own kernel: ${why}, yet a controller before this one already switched by kexec (${KEXEC_MARKER}=${markerFrom}); not switching twice: booting on the running kernel`],
      warnings: modulesWarning(input, running, "the wrong kernel"),
    });
  }

  if (mode === "reboot") {
    if (!bootEntry.exists) {
      return bootOn({
        reasons: [why],
        errors: [`Cannot boot ${slot}'s own kernel by reboot: BOOTEXT has no bootloader entries (Kernel/active-kernel) for a bootloader to boot; booting on the running kernel (boot.kernel_switch = "kexec" needs no bootloader)`],
        warnings: modulesWarning(input, running, "the wrong kernel"),
      });
    }
    if (bootEntry.matchesSlot && bootEntry.rebootArmed) {
      // the bootloader was sent to this kernel and booted another (its recovery entry, PXE, a person's choice): another reboot would change nothing
      return bootOn({
        reasons: [why],
        errors: [
          `Cannot boot ${slot}'s own kernel by reboot: BOOTEXT's active entry already is its kernel ${slotKernel.release} and grubenv says the bootloader was sent there, yet another kernel runs ` +
            "(the bootloader booted another entry, or this boot did not come from the disk's bootloader); not rebooting again: booting on the running kernel",
        ],
        warnings: modulesWarning(input, running, "the wrong kernel"),
      });
    }
    const reboot = bootEntry.matchesSlot
      ? // a power cut after the active link was switched and before the reboot was armed: the bootloader may still have booted the old pair
        `BOOTEXT's active entry already is ${slot}'s kernel ${slotKernel.release}, but the bootloader was never sent there (grubenv's saved_entry is not "recovery"): the machine reboots into it`
      : `boot.kernel_switch is "reboot": ${slot}'s kernel ${slotKernel.release} becomes BOOTEXT's active entry (the previous pair the recovery entry), then the machine reboots into it`;
    return { action: "write-entries-then-reboot", ...files, countAttemptFirst: true, reasons: [why, reboot], warnings: [] };
  }

  // kexec
  const fallback: KexecFallback = bootEntry.exists
    ? { action: "reboot", why: `the kexec failed: rebooting into BOOTEXT's active entry, ${slot}'s kernel ${slotKernel.release}` }
    : { action: "boot-on", error: `Cannot boot ${slot}'s own kernel: the kexec failed and BOOTEXT has no bootloader entry to reboot into; booting on the running kernel` };
  const built = slotKexecCmdline(input.cmdline, input.controller);
  if (!built.ok) {
    // the same fallback as a kexec that fails to load: nothing was kexec'd
    if (fallback.action === "reboot") {
      return {
        action: "write-entries-then-reboot",
        ...files,
        countAttemptFirst: true,
        reasons: [why, `${built.problem}: rebooting into BOOTEXT's active entry instead`],
        warnings: [],
      };
    }
    return bootOn({ reasons: [why], errors: [`Cannot boot ${slot}'s own kernel: ${built.problem}; booting on the running kernel`], warnings: modulesWarning(input, running, "the wrong kernel") });
  }
  return {
    action: "kexec",
    ...files,
    cmdline: built.cmdline,
    bringEntriesInStep: entriesBehind,
    countAttemptFirst: true,
    fallback,
    reasons: [why, `boot.kernel_switch is "kexec": the boot attempt is counted, then ${slot}'s kernel ${slotKernel.release} is kexec'd with ${KEXEC_MARKER}=${SLOT_KERNEL_MARKER_VALUE}`, ...inStep],
    warnings: [],
  };
}
