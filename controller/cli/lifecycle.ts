// The booted system's side of a slot's life cycle (plans/slot-health.ts): once it is
// up it says so (`controller mark-good`), and as it shuts down it says that too
// (`controller mark-shutdown`). The controller mounted the booted slot's
// partition read-only at SLOT_MOUNT/LABEL in the initramfs, and that mount moved
// into the booted system with /run, so health.json is written there: the slot
// is remounted read-write for the one write and read-only again right after,
// because the running system's image lives on it. mark-good also gives GRUB
// back its lasting choice of the active entry after a reboot into a new kernel
// (boot/kernel-entries.ts settleGrubenv).

import { type BootedKernel, type GrubenvSettled, settleGrubenv } from "../boot/kernel-entries.ts";
import type { BootReport } from "../boot/report.ts";
import { HEALTH_FILE, type LiveHealth, readHealth, writeHealth } from "../boot/slot-health.ts";
import { RECORD_MANIFEST } from "../boot/slot-records.ts";
import type { SenderPorts } from "../fleet/report-sender.ts";
import { pairId } from "../plans/boot-entries.ts";
import { afterMarkGood, afterMarkShutdown, type HealthRecord, healthOf } from "../plans/slot-health.ts";
import { PROC_KERNEL_OSRELEASE, PROC_KERNEL_VERSION, REPORT_PATH, SLOT_MOUNT } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import { compareKernels, kernelIdentityOf, runningKernel } from "../update/kernel-release.ts";
import { MANIFEST_MAX_BYTES, parseManifest } from "../update/manifest.ts";
import { type CommandOutput, PROCESS_OUTPUT } from "./output.ts";
import { thisMachine } from "./this-machine.ts";

export type LifecycleAction = "good" | "shutdown";

export interface MarkResult {
  /** "LABEL on DEVICE" */
  readonly slot: string;
  readonly health: HealthRecord;
  /** why the health.json found there could not be read, when it was replaced by a fresh record */
  readonly replaced?: string;
}

interface MountedSlot {
  /** "LABEL on DEVICE", for messages */
  readonly name: string;
  /** where the slot partition is mounted */
  readonly dir: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The booted slot as the report names it, checked to be still mounted where
 * the controller mounted it; throws with a message that says what is missing.
 * `report` is the parsed report.json, not trusted to have any shape.
 */
async function mountedBootedSlot(system: System, report: unknown): Promise<MountedSlot> {
  const boot = isRecord(report) ? report["boot"] : undefined;
  const booted = isRecord(boot) ? boot["booted"] : undefined;
  if (booted === undefined) {
    const outcome = isRecord(report) ? report["outcome"] : undefined;
    throw new Error(`${REPORT_PATH} says nothing booted: got outcome ${JSON.stringify(outcome)} and no boot.booted`);
  }
  const label = isRecord(booted) ? booted["label"] : undefined;
  const device = isRecord(booted) ? booted["device"] : undefined;
  const image = isRecord(booted) ? booted["image"] : undefined;
  if (typeof label !== "string" || typeof device !== "string" || typeof image !== "string") {
    throw new Error(`${REPORT_PATH}: key boot.booted: expected label, device and image, got ${JSON.stringify(booted)}`);
  }
  const name = `${label} on ${device}`;
  const dir = `${SLOT_MOUNT}/${label}`;
  // The image is what the running system is loop-mounted from: if it is not there, neither is the slot's mount.
  const found = await system.lstat(image);
  if (found?.type !== "file") {
    throw new Error(`${name} is not mounted at ${dir}: expected its system image at ${image}, got ${found === undefined ? "nothing" : `a ${found.type}`}`);
  }
  return { name, dir };
}

/** The booted slot's health.json as it is now; never throws, so `controller status` always prints. undefined when nothing booted. */
export async function readLiveHealth(system: System, report: BootReport): Promise<LiveHealth | undefined> {
  if (report.boot.booted === undefined) return undefined;
  try {
    const slot = await mountedBootedSlot(system, report);
    return await readHealth(system, slot.dir, slot.dir);
  } catch (error) {
    return { status: "unavailable", problem: messageOf(error) };
  }
}

async function readReport(system: System): Promise<unknown> {
  let text: string;
  try {
    text = await system.readText(REPORT_PATH);
  } catch (error) {
    throw new Error(`this system was not booted by the controller, or /run was cleared: there is no boot report at ${REPORT_PATH} (got ${messageOf(error)})`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${REPORT_PATH}: Cannot read it as JSON: ${messageOf(error)}`);
  }
}

/**
 * Records in the booted slot's health.json that the system came up healthy
 * ("good") or is shutting down cleanly ("shutdown"). The slot is read-only
 * again afterwards whatever happened in between.
 */
export async function markBootedSlot(system: System, action: LifecycleAction, now: Date): Promise<MarkResult> {
  const doing = action === "good" ? "mark the booted slot good" : "record the clean shutdown of the booted slot";
  let slot: MountedSlot;
  try {
    slot = await mountedBootedSlot(system, await readReport(system));
  } catch (error) {
    throw new Error(`Cannot ${doing}: ${messageOf(error)}`);
  }
  // read while still read-only: the less time the slot spends writable, the better
  const read = await readHealth(system, slot.dir, slot.dir);
  const before = healthOf(read);
  const health = action === "good" ? afterMarkGood(before, now) : afterMarkShutdown(before);

  try {
    await system.remount(slot.dir, false);
  } catch (error) {
    throw new Error(`Cannot ${doing}: Cannot make ${slot.name} writable at ${slot.dir}: ${messageOf(error)}`);
  }
  // The running system's image lives on this partition: it is made read-only again whether the write worked or
  // not, and a failure to do that is reported first, with the write's own error if there was one.
  let writeProblem: string | undefined;
  try {
    await writeHealth(system, slot.dir, health);
  } catch (error) {
    writeProblem = `Cannot write ${slot.dir}/${HEALTH_FILE}: ${messageOf(error)}`;
  }
  try {
    // also flushes the write to the disk
    await system.remount(slot.dir, true);
  } catch (error) {
    const also = writeProblem === undefined ? "" : `; before that: ${writeProblem}`;
    throw new Error(`Cannot ${doing}: Cannot make ${slot.name} read-only again at ${slot.dir}, it stays writable until the next boot: ${messageOf(error)}${also}`);
  }
  if (writeProblem !== undefined) throw new Error(`Cannot ${doing}: ${writeProblem}`);
  return { slot: slot.name, health, ...(read.status === "invalid" ? { replaced: read.problem } : {}) };
}

/**
 * After mark-good: GRUB's lasting choice goes back to the active entry when
 * that is the booted slot's kernel and the system runs on it (a reboot into a
 * new kernel left grubenv on recovery). undefined when this boot mounted no
 * BOOTEXT. The slot's manifest is read without checking its signature again:
 * the controller checked it on this boot, and it only decides whether grubenv
 * names the entry that is already the running slot's.
 */
async function settleGrubenvAfterMarkGood(system: System): Promise<GrubenvSettled | undefined> {
  const report = await readReport(system);
  const bootext = isRecord(report) ? report["bootext"] : undefined;
  const mountPoint = isRecord(bootext) ? bootext["mountPoint"] : undefined;
  if (typeof mountPoint !== "string") return undefined;
  const bootedKernel = async (): Promise<BootedKernel> => {
    const slot = await mountedBootedSlot(system, report);
    const manifestPath = `${slot.dir}/${RECORD_MANIFEST}`;
    const parsed = parseManifest(await system.readBytes(manifestPath, MANIFEST_MAX_BYTES), manifestPath);
    if (!parsed.ok) throw new Error(`Cannot tell the booted slot's kernel: ${parsed.problems.join("; ")}`);
    const kernel = parsed.manifest.kernel;
    if (kernel === undefined) return { notRunning: "the booted slot's image carries no kernel" };
    const running = runningKernel(await system.readText(PROC_KERNEL_OSRELEASE), await system.readText(PROC_KERNEL_VERSION).catch(() => undefined));
    if ("problem" in running) return { notRunning: running.problem };
    const comparison = compareKernels(running, kernelIdentityOf(kernel));
    if (!comparison.same) return { notRunning: `${comparison.why}: the system came up on another entry` };
    return { runs: pairId({ release: kernel.release, kernel: kernel.vmlinuz, initrd: kernel.initrd }) };
  };
  return settleGrubenv(system, { mountPoint, readOnly: isRecord(bootext) && bootext["readOnly"] !== false }, bootedKernel);
}

/** A diskless boot (diskless.ts) runs from RAM: no slot, so no life cycle to record. */
async function runsFromRam(system: System): Promise<boolean> {
  try {
    const report = await readReport(system);
    const diskless = isRecord(report) ? report["diskless"] : undefined;
    return isRecord(diskless) && diskless["status"] === "running-from-ram";
  } catch {
    // markBootedSlot says what is wrong with the report
    return false;
  }
}

const LIFECYCLE_COMMANDS: ReadonlyMap<string, LifecycleAction> = new Map<string, LifecycleAction>([
  ["mark-good", "good"],
  ["mark-shutdown", "shutdown"],
]);

/** How a lifecycle command reaches the fleet server, as the sender does: the tests give their own. */
export type FleetFetch = SenderPorts["fetch"];

/**
 * When this boot's config names a fleet server, the mark's envelope goes there
 * too (fleet/report-sender.ts reportLifecycle): mark-good queues it for the
 * running sender, mark-shutdown tries once, briefly. Whatever happens there,
 * the mark stands and the exit status is the mark's.
 */
async function reportToFleet(system: System, action: LifecycleAction, output: CommandOutput, fleetFetch: FleetFetch): Promise<void> {
  const report = await readReport(system).catch(() => undefined);
  // loaded here, not at the top: main.ts imports every command, and `controller boot` sends no reports
  const { reportLifecycle } = await import("../fleet/report-sender.ts");
  const log = (line: string) => output.out(`controller: ${line}\n`);
  await reportLifecycle({ system, fetch: fleetFetch, random: Math.random, log }, action === "good" ? "mark-good" : "mark-shutdown", report);
}

/** `controller mark-good` and `controller mark-shutdown`; `args` starts with the command. Exit status 0, 1 when it failed, 2 for wrong arguments. */
export async function runLifecycleCommand(
  args: readonly string[],
  system: System,
  output: CommandOutput = PROCESS_OUTPUT,
  fleetFetch: FleetFetch = (url, init) => fetch(url, init),
): Promise<number> {
  const [command = "", ...rest] = args;
  const action = LIFECYCLE_COMMANDS.get(command);
  if (action === undefined) {
    output.err(`Cannot run ${JSON.stringify(command)}: expected mark-good or mark-shutdown\n`);
    return 2;
  }
  if (rest.length > 0) {
    output.err(`${command} takes no arguments, got ${rest.map((arg) => JSON.stringify(arg)).join(" ")}\n`);
    return 2;
  }
  if (await runsFromRam(system)) {
    output.out(`controller: nothing to record: this system runs from RAM (a diskless boot), and no slot keeps its boots\n`);
    await reportToFleet(system, action, output, fleetFetch);
    return 0;
  }
  try {
    const result = await markBootedSlot(system, action, system.wallClock());
    if (result.replaced !== undefined) output.err(`controller: WARNING: ${result.replaced}; replaced it with a fresh record\n`);
    const what = action === "good" ? "marked good" : "marked shut down cleanly";
    output.out(`controller: ${result.slot} ${what} (attempts ${result.health.attempts})\n`);
  } catch (error) {
    output.err(`controller: ${messageOf(error)}\n`);
    return 1;
  }
  await reportToFleet(system, action, output, fleetFetch);
  if (action !== "good") return 0;
  try {
    const settled = await settleGrubenvAfterMarkGood(system);
    if (settled?.changed === true) output.out(`controller: ${settled.detail}\n`);
    return 0;
  } catch (error) {
    output.err(`controller: the slot is marked good, but Cannot make GRUB boot the active entry again: ${messageOf(error)}\n`);
    return 1;
  }
}

export function markGoodCommand(args: readonly string[]): Promise<number> {
  return runLifecycleCommand(["mark-good", ...args], thisMachine().system);
}

export function markShutdownCommand(args: readonly string[]): Promise<number> {
  return runLifecycleCommand(["mark-shutdown", ...args], thisMachine().system);
}
