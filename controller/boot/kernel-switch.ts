// Stage "kernel": once the slot to boot is mounted and its attempt counted,
// boot on, or get onto the kernel its own image carries (issue 14): kexec it,
// or write it to BOOTEXT as the bootloader's active entry and reboot.
// plans/kernel-switch.ts decides from plain data read here; this file reads
// that data and carries the plan out. The kernel and initrd are copied to
// the initramfs's tmpfs while their sha512 is checked against the slot's
// signed record, and kexec loads the copies: what boots is what was checked.
// Whatever fails, the boot goes on on the running kernel, with the error on
// the console and in the report.

import type { Cmdline } from "../config/cmdline.ts";
import type { Config } from "../config/schema.ts";
import { type BootEntriesState, bootEntryFor, type KernelPair, pairId } from "../plans/boot-entries.ts";
import {
  arrivedByArmedReboot,
  type BootFile,
  type KernelSwitchInput,
  type KernelSwitchPlan,
  modulesWarning,
  planKernelSwitch,
  SLOT_KERNEL_MARKER_VALUE,
} from "../plans/kernel-switch.ts";
import { KEXEC_MARKER } from "../plans/kexec-cmdline.ts";
import type { InspectedSlot } from "../plans/slot.ts";
import type { CutPoints } from "../system/cut-points.ts";
import type { Logger } from "../system/log.ts";
import { KERNEL_SWITCH_DIR, NEWROOT, PROC_KERNEL_OSRELEASE, PROC_KERNEL_VERSION } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import { COMMIT, VERSION } from "../system/version.ts";
import { compareKernels, type KernelIdentity, kernelIdentityOf, runningKernel } from "../update/kernel-release.ts";
import type { SignedKernel } from "../update/manifest.ts";
import { copyVerified } from "./copy-verified.ts";
import { armRebootIntoActive, type MountedBootext, readActiveLink, readBootEntries, readGrubenv, writeBootEntries } from "./kernel-entries.ts";

/** This controller as the next one names it: rd.controller.kexec_by=VERSION+COMMIT. */
export const CONTROLLER_IDENTITY = `${VERSION}+${COMMIT}`;

export interface KernelSwitchResult {
  /** boot-on: this kernel boots the slot. kexec-failed and reboot-failed: the switch was due and could not happen, so it boots on. */
  readonly outcome: "boot-on" | "kexec-failed" | "reboot-failed";
  readonly mode: Config["boot"]["kernel_switch"];
  readonly running?: KernelIdentity;
  /** the kernel the slot's signed record names; absent when its image carries none */
  readonly slotKernel?: { readonly release: string; readonly build?: string };
  /** this boot was started by a controller's kexec of the slot's kernel, and which controller that was */
  readonly cameByKexec?: { readonly marker: string; readonly by?: string };
  readonly reasons: readonly string[];
  readonly warnings: readonly string[];
  readonly errors: readonly string[];
}

export interface KernelSwitchInputs {
  readonly config: Config;
  readonly cmdline: Cmdline;
  /** "SYSFS on /dev/vda2 (version 2.0)" */
  readonly slot: string;
  readonly slotKernel: SignedKernel | undefined;
  /** BOOTEXT while it is mounted: its bootloader entries, and read-only around a kexec or reboot so the next kernel finds it clean */
  readonly bootext: MountedBootext | undefined;
  readonly cuts: CutPoints;
}

async function readRunningKernel(system: System, log: Logger): Promise<KernelIdentity | undefined> {
  try {
    const osrelease = await system.readText(PROC_KERNEL_OSRELEASE);
    const version = await system.readText(PROC_KERNEL_VERSION).catch(() => undefined);
    const running = runningKernel(osrelease, version);
    if ("problem" in running) {
      log.warn(`Cannot tell which kernel runs: ${running.problem}`);
      return undefined;
    }
    return running;
  } catch (error) {
    log.warn(`Cannot read ${PROC_KERNEL_OSRELEASE}: ${(error as Error).message}`);
    return undefined;
  }
}

/** The kernel releases the mounted image has modules for (/lib/modules/*); undefined when that cannot be read. */
async function moduleReleases(system: System): Promise<string[] | undefined> {
  const dir = `${NEWROOT}/lib/modules`;
  if ((await system.lstat(dir)) === undefined) return [];
  return system.readdir(dir).catch(() => undefined);
}

/** Copies `file` of the mounted image to `to`, checked against the signed record on the way. */
function copyFromImage(system: System, file: BootFile, to: string): Promise<void> {
  return copyVerified(system, { from: `${NEWROOT}${file.path}`, to, size: file.size, sha512: file.sha512 }, "it is not kexec'd");
}

/** The slot's kernel as BOOTEXT's entries name a pair: its files are read from the image at /sysroot. */
function slotPair(kernel: SignedKernel): KernelPair {
  return { release: kernel.release, kernel: kernel.vmlinuz, initrd: kernel.initrd, from: NEWROOT };
}

interface ReadEntries {
  readonly state: BootEntriesState;
  /** grubenv's saved_entry is "recovery": a reboot into the active entry was armed, and the bootloader has booted since */
  readonly rebootArmed: boolean;
}

/** BOOTEXT's entries and grubenv, read only when they can matter: a slot kernel to switch to, and a mode that may write them. */
async function readEntries(system: System, log: Logger, inputs: KernelSwitchInputs): Promise<ReadEntries | undefined> {
  const { bootext, slotKernel, config } = inputs;
  if (bootext === undefined || slotKernel === undefined || config.boot.kernel_switch === "off") return undefined;
  try {
    const state = await readBootEntries(system, bootext.mountPoint);
    return { state, rebootArmed: (await readGrubenv(system, bootext.mountPoint))?.get("saved_entry") === "recovery" };
  } catch (error) {
    log.warn(`Cannot read BOOTEXT's kernel entries: ${(error as Error).message}; going on as if there were none`);
    return undefined;
  }
}

/** The plan's view of BOOTEXT's active entry. */
function bootEntryInput(entries: ReadEntries | undefined, slotKernel: SignedKernel | undefined): KernelSwitchInput["bootEntry"] {
  if (entries === undefined || slotKernel === undefined) return { exists: false };
  const entry = bootEntryFor(entries.state, slotPair(slotKernel));
  return entry.exists ? { ...entry, rebootArmed: entries.rebootArmed } : entry;
}

/** Whether this boot is the one a reboot-mode switch armed (plans/kernel-switch.ts arrivedByArmedReboot); whatever cannot be read says no, the safe side. */
async function cameByArmedReboot(system: System, log: Logger, cmdline: Cmdline, bootext: MountedBootext, slotKernel: SignedKernel): Promise<boolean> {
  try {
    const savedEntry = (await readGrubenv(system, bootext.mountPoint))?.get("saved_entry");
    const active = await readActiveLink(system, bootext.mountPoint);
    return arrivedByArmedReboot({ bootImage: cmdline.bootImage, savedEntry, activePair: active.pair, slotPair: pairId(slotPair(slotKernel)) });
  } catch (error) {
    log.warn(`Cannot tell whether BOOTEXT's armed reboot started this boot: ${(error as Error).message}; counting its attempt`);
    return false;
  }
}

/** The slot whose attempt the controller before this boot counted, and how this boot came. */
export interface CountedEarly {
  readonly device: string;
  readonly how: "kexec" | "armed-reboot";
}

/**
 * The slot whose boot attempt the controller before this boot already counted:
 * a kernel switch counts it before its kexec or reboot, so a kernel that panics
 * still uses one up. On the boot that arrives (the kexec marker, or the boot
 * BOOTEXT's armed reboot started) that slot is the one labelled SYSFS whose
 * signed kernel runs now; its health check leaves that boot out and the
 * attempt stage does not count it again, so a switch costs one attempt and
 * health.max_attempts = 1 still gives a new kernel its try. Read only on a
 * boot with the marker or GRUB's BOOT_IMAGE=; anything unreadable is no.
 */
export async function slotCountedEarly(
  system: System,
  log: Logger,
  cmdline: Cmdline,
  bootext: MountedBootext | undefined,
  slots: readonly InspectedSlot[],
  systemLabel: string,
): Promise<CountedEarly | undefined> {
  const kexecd = cmdline.heddle.kexecFrom === SLOT_KERNEL_MARKER_VALUE;
  if (!kexecd && (cmdline.bootImage === undefined || bootext === undefined)) return undefined;
  const sysfs = slots.find((slot) => slot.device.label === systemLabel);
  const kernel = sysfs?.record.status === "valid" ? sysfs.record.manifest.kernel : undefined;
  if (sysfs === undefined || kernel === undefined) return undefined;
  const running = await readRunningKernel(system, log);
  if (running === undefined || !compareKernels(running, kernelIdentityOf(kernel)).same) return undefined;
  if (kexecd) return { device: sysfs.device.device, how: "kexec" };
  if (bootext !== undefined && (await cameByArmedReboot(system, log, cmdline, bootext, kernel))) return { device: sysfs.device.device, how: "armed-reboot" };
  return undefined;
}

/** Stage "kernel". Returns only when this kernel boots the slot: a kexec or reboot that works never returns. */
export async function runKernelSwitchStage(system: System, log: Logger, inputs: KernelSwitchInputs): Promise<KernelSwitchResult> {
  const { config, cmdline, slot, slotKernel } = inputs;
  const running = await readRunningKernel(system, log);
  const markerFrom = cmdline.heddle.kexecFrom;
  const slotModules = await moduleReleases(system);
  const modules = { slot, ...(slotModules === undefined ? {} : { slotModules }) };
  const entries = await readEntries(system, log, inputs);
  const plan = planKernelSwitch({
    mode: config.boot.kernel_switch,
    running,
    ...modules,
    slotKernel,
    cmdline: cmdline.raw,
    controller: CONTROLLER_IDENTITY,
    markerFrom,
    bootEntry: bootEntryInput(entries, slotKernel),
  });
  for (const reason of plan.reasons) log.info(reason);
  for (const warning of plan.warnings) log.warn(warning);
  const base = {
    mode: config.boot.kernel_switch,
    ...(running === undefined ? {} : { running }),
    ...(slotKernel === undefined ? {} : { slotKernel: { release: slotKernel.release, ...(slotKernel.build === undefined ? {} : { build: slotKernel.build }) } }),
    ...(markerFrom === undefined ? {} : { cameByKexec: { marker: markerFrom, ...(cmdline.kexecBy === undefined ? {} : { by: cmdline.kexecBy }) } }),
    reasons: plan.reasons,
    warnings: plan.warnings,
  };
  if (markerFrom === SLOT_KERNEL_MARKER_VALUE) log.info(`this controller (${CONTROLLER_IDENTITY}) came by kexec from controller ${cmdline.kexecBy ?? "(not named)"}`);
  const errors: string[] = plan.action === "boot-on" ? [...plan.errors] : [];
  const fail = (error: string) => {
    log.error(error);
    errors.push(error);
  };
  // the bootloader's entries follow the slot on this boot, so the next cold boot needs no switch
  const inStep = plan.action === "write-entries-then-reboot" || !plan.bringEntriesInStep || (await writeEntries(system, log, inputs, entries?.state, fail));
  if (plan.action === "boot-on") {
    for (const error of plan.errors) log.error(error);
    return { ...base, outcome: "boot-on", errors };
  }
  if (plan.action === "write-entries-then-reboot") {
    const written = await writeEntries(system, log, inputs, entries?.state, fail);
    if (written) await rebootIntoActive(system, log, inputs, plan.release, fail);
    return { ...base, ...onWrongKernel(log, base.warnings, modules, running), outcome: "reboot-failed", errors };
  }
  fail(await kexecSlotKernel(system, log, plan, inputs));
  if (plan.fallback.action === "reboot" && inStep) {
    log.warn(plan.fallback.why);
    await rebootIntoActive(system, log, inputs, plan.release, fail);
  } else {
    fail(plan.fallback.action === "boot-on" ? plan.fallback.error : `Cannot reboot into BOOTEXT's active entry: it could not be written on this boot; booting on the running kernel`);
  }
  return { ...base, ...onWrongKernel(log, base.warnings, modules, running), outcome: "kexec-failed", errors };
}

/** The line the boot report's decisions keep of the stage. */
export function kernelDecision(result: KernelSwitchResult): string {
  return `kernel: ${result.outcome}: ${[...result.reasons, ...result.errors].join("; ")}`;
}

/** A switch that was due and failed leaves the slot on the wrong kernel: the modules warning, loud, as for an image without a kernel. */
function onWrongKernel(log: Logger, warnings: readonly string[], slot: Pick<KernelSwitchInput, "slot" | "slotModules">, running: KernelIdentity | undefined): { warnings: readonly string[] } {
  const missing = modulesWarning(slot, running, "the wrong kernel");
  for (const warning of missing) log.warn(warning);
  return { warnings: [...warnings, ...missing] };
}

/** Makes the slot's kernel BOOTEXT's active entry; false (with the error said) when that failed. */
async function writeEntries(system: System, log: Logger, inputs: KernelSwitchInputs, known: BootEntriesState | undefined, fail: (error: string) => void): Promise<boolean> {
  const { bootext, slotKernel } = inputs;
  if (bootext === undefined || slotKernel === undefined) return false;
  try {
    await writeBootEntries(system, log, bootext, slotPair(slotKernel), undefined, inputs.cuts, known);
    return true;
  } catch (error) {
    fail(`Cannot write ${inputs.slot}'s kernel ${slotKernel.release} to BOOTEXT's bootloader entries: ${(error as Error).message}`);
    return false;
  }
}

/** grubenv says boot the active entry once, BOOTEXT is left clean, and the machine resets; returns only when that failed. */
async function rebootIntoActive(system: System, log: Logger, inputs: KernelSwitchInputs, release: string, fail: (error: string) => void): Promise<void> {
  const { bootext } = inputs;
  if (bootext === undefined) return;
  try {
    await armRebootIntoActive(system, log, bootext, inputs.cuts);
    await inputs.cuts.reach("kernel-switch-attempt-written");
    if (!bootext.readOnly) await system.remount(bootext.mountPoint, true);
    log.info(`rebooting into BOOTEXT's active entry, kernel ${release}`);
    await system.reboot();
    if (!bootext.readOnly) await system.remount(bootext.mountPoint, false);
    fail(`Cannot reboot into ${inputs.slot}'s kernel ${release}: the reset returned; booting on the running kernel`);
  } catch (error) {
    fail(`Cannot reboot into ${inputs.slot}'s kernel ${release}: ${(error as Error).message}; booting on the running kernel`);
  }
}

/** Verifies, loads and boots the slot's kernel; returns why not when any step fails. */
async function kexecSlotKernel(system: System, log: Logger, plan: Extract<KernelSwitchPlan, { action: "kexec" }>, inputs: KernelSwitchInputs): Promise<string> {
  const kernel = `${KERNEL_SWITCH_DIR}/vmlinuz`;
  const initrd = `${KERNEL_SWITCH_DIR}/initrd.img`;
  const { cmdline } = plan;
  try {
    await system.mkdir(KERNEL_SWITCH_DIR);
    log.info(`copying and checking ${plan.kernel.path} (${plan.kernel.size} bytes) and ${plan.initrd.path} (${plan.initrd.size} bytes) against the signed record`);
    await copyFromImage(system, plan.kernel, kernel);
    await copyFromImage(system, plan.initrd, initrd);
    log.info(`loading kernel ${plan.release} with kexec, command line: ${cmdline}`);
    await system.kexecLoad({ kernel, initrd, cmdline });
  } catch (error) {
    await system.remove(KERNEL_SWITCH_DIR).catch(() => undefined);
    return `Cannot kexec ${inputs.slot}'s kernel ${plan.release}: ${(error as Error).message}`;
  }
  await system.remove(KERNEL_SWITCH_DIR).catch(() => undefined);
  await inputs.cuts.reach("kernel-switch-attempt-written");
  // kexec neither syncs nor unmounts: the slot is read-only again since its attempt was counted; BOOTEXT is made so too
  const writable = inputs.bootext !== undefined && !inputs.bootext.readOnly ? inputs.bootext.mountPoint : undefined;
  if (writable !== undefined) await system.remount(writable, true).catch((error: Error) => log.warn(`Cannot make BOOTEXT read-only before the kexec: ${error.message}`));
  log.info(`booting kernel ${plan.release} with kexec (${KEXEC_MARKER}=${SLOT_KERNEL_MARKER_VALUE})`);
  try {
    await system.kexecBoot();
  } catch (error) {
    return `Cannot kexec ${inputs.slot}'s kernel ${plan.release}: kexec --exec failed: ${(error as Error).message}`;
  } finally {
    if (writable !== undefined) await system.remount(writable, false).catch(() => undefined);
  }
  return `Cannot kexec ${inputs.slot}'s kernel ${plan.release}: kexec --exec returned`;
}
