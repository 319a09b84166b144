// A boot from the slot partitions, once the disks are listed and no diskless
// boot was chosen: the state its phases hand on, each adding what it learnt,
// and the phases up to the health check (bootext, heddle, slots, health).
// disk-update.ts and disk-mount.ts carry it on.

import type { ConfigLayer, ResolvedConfig } from "../config/layers.ts";
import { planBoot, type SlotVerdict } from "../plans/boot-order.ts";
import { slotsWithWrittenLabels } from "../plans/labels.ts";
import { type InspectedSlot, type SlotSummary, summarizeSlot } from "../plans/slot.ts";
import type { CutPoints } from "../system/cut-points.ts";
import type { BlockDevice } from "../system/system.ts";
import { type LocalConfig, withBootextLayers, withServerLayers } from "./boot-config.ts";
import type { BootContext } from "./boot-start.ts";
import { type BootextResult, runBootextStage } from "./bootext.ts";
import { type HealthResult, runHealthStage } from "./health.ts";
import { type CountedEarly, slotCountedEarly } from "./kernel-switch.ts";
import { type HeddleResult, runHeddleStage } from "./heddle.ts";
import { KeptSlotMount } from "./kept-slot-mount.ts";
import type { UpdateReport } from "./report.ts";
import { runSlotsStage, type SlotsResult } from "./slots.ts";

/** What a boot from the disks knows after the bootext stage; each phase hands on a copy with what it added. */
export interface DiskBoot {
  readonly context: BootContext;
  readonly cuts: CutPoints;
  /** the machine's own config (initramfs, command line, BOOTEXT): trust comes from it, never from what a slot or server says */
  readonly local: LocalConfig;
  /** the config of this boot: the local layers and the server's, kept on the slot or fetched now */
  readonly resolved: ResolvedConfig;
  /** the filesystems, with the labels written so far */
  readonly devices: readonly BlockDevice[];
  readonly bootext: BootextResult;
  /** the slot expected to boot, mounted once from the slots stage to the mounts stage */
  readonly kept: KeptSlotMount;
}

export interface HeddleChecked extends DiskBoot {
  readonly heddle: HeddleResult;
}

export interface SlotsInspected extends HeddleChecked {
  readonly slots: SlotsResult;
}

export interface HealthChecked extends SlotsInspected {
  readonly health: HealthResult;
  /** the slot that boots unless an update changes it */
  readonly booting: InspectedSlot | undefined;
  /** the slots as the health stage left them; an install replaces the spare with what it wrote to it */
  readonly slotsNow: readonly InspectedSlot[];
  /** the slot an install wrote to: the health conditions checked on its old system say nothing of the new one */
  readonly rewritten?: string;
  /** the slot whose attempt the controller before this boot counted (a kernel switch) */
  readonly countedEarly?: CountedEarly;
}

export interface SlotsUpdated extends HealthChecked {
  readonly update: UpdateReport;
}

/** Stage "bootext": BOOTEXT mounted, and its config.d over the early layers. */
export async function readBootext(context: BootContext, early: LocalConfig, devices: readonly BlockDevice[], cuts: CutPoints): Promise<DiskBoot> {
  const noBootext: BootextResult = { readOnly: early.resolved.config.bootext.read_only, layers: [] };
  const bootext = await context.stage("bootext", noBootext, (stageLog) => runBootextStage(context.system, stageLog, devices, early.resolved.config));
  const local = withBootextLayers(context, early, bootext);
  return { context, cuts, local, resolved: local.resolved, devices, bootext, kept: new KeptSlotMount(context.system) };
}

/** Stage "heddle": Heddle's updates boot with kexec before anything on the disks is touched; this returns only when none does. */
export async function runHeddle(boot: DiskBoot): Promise<HeddleChecked> {
  const { context, local, bootext, devices } = boot;
  const noHeddle: HeddleResult = { updates: [], skipped: [], questions: [], status: "installed", reason: "the heddle stage failed: booting the installed system" };
  const heddle = await context.stage("heddle", noHeddle, (stageLog) => runHeddleStage(context.system, stageLog, context.cmdline, local.resolved.config, bootext, devices));
  context.decisions.push(`heddle: ${heddle.reason}`);
  return { ...boot, heddle };
}

/** Stage "slots": what each slot partition records, and the server's config kept on the SYSFS that will boot. */
export async function inspectSlots(boot: HeddleChecked): Promise<SlotsInspected> {
  const { context, local, devices } = boot;
  const noSlots: SlotsResult = { slots: [], devices, repairs: [], configLayers: [] };
  const slots = await context.stage("slots", noSlots, (stageLog) => runSlotsStage(context.system, stageLog, boot.kept, devices, local.resolved.config));
  return withServerConfig({ ...boot, slots, devices: slots.devices }, slots.configLayers, "slots");
}

/** Stage "health": which slots may boot, in the order to try them, once their health conditions are checked. */
export async function checkHealth(boot: SlotsInspected): Promise<HealthChecked> {
  const { context, resolved, slots, devices } = boot;
  const basePlan = planBoot(devices, resolved.config);
  const noHealth: HealthResult = { plan: { ...basePlan, relabels: [] }, verdicts: [], slots: slots.slots, devices };
  let countedEarly: CountedEarly | undefined;
  const health = await context.stage("health", noHealth, async (stageLog) => {
    const mounted = boot.bootext.mountPoint === undefined ? undefined : { mountPoint: boot.bootext.mountPoint, readOnly: boot.bootext.readOnly };
    countedEarly = await slotCountedEarly(context.system, stageLog, context.cmdline, mounted, slots.slots, resolved.config.labels.system);
    return runHealthStage(context.system, stageLog, boot.kept, slots.slots, devices, resolved.config, countedEarly?.device);
  });
  const bootingCandidate = health.plan.candidates[0];
  const booting = health.slots.find((slot) => slot.device.device === bootingCandidate?.device);
  return { ...boot, health, devices: health.devices, booting, slotsNow: health.slots, ...(countedEarly === undefined ? {} : { countedEarly }) };
}

/** The config of this boot: the local layers and the server's, kept on the slot or fetched now. */
export function withServerConfig<T extends DiskBoot>(boot: T, serverLayers: readonly ConfigLayer[], scope: string): T {
  if (serverLayers.length === 0) return boot;
  const { context, local } = boot;
  const resolved = withServerLayers(context, local, serverLayers, scope, boot.resolved.problems);
  if (resolved.config.update.machine_name !== local.resolved.config.update.machine_name) {
    context.log.forScope(scope).warn("the server's config sets update.machine_name: ignored, the name that picks a machine's config comes from its own config");
  }
  return { ...boot, resolved };
}

export function verdictOf(health: HealthResult, device: string): SlotVerdict | undefined {
  return health.verdicts.find((verdict) => verdict.device === device);
}

/** The slots as they are on the disks now, for the report and `controller status`: labels as written, records as read. */
export function slotSummaries(boot: HealthChecked): SlotSummary[] {
  const labels = new Map(boot.devices.flatMap((device) => (device.label === undefined ? [] : [[device.device, device.label] as const])));
  return slotsWithWrittenLabels(boot.slotsNow, labels, boot.resolved.config).map((slot) =>
    summarizeSlot(slot, slot.device.device === boot.rewritten ? undefined : verdictOf(boot.health, slot.device.device)?.conditions),
  );
}
