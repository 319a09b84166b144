// `controller boot`: the stages in order, each fed by the ones before it. The
// early stages and the end (finish.ts) are the same for every boot; between
// them the root comes from the slot partitions or, for a diskless boot, from RAM.

import { disklessReason } from "../plans/diskless.ts";
import { type CutPoints, cutPointsFor } from "../system/cut-points.ts";
import type { Logger } from "../system/log.ts";
import { INITRD_RELEASE } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import { type LocalConfig, readEarlyConfig } from "./boot-config.ts";
import { type BootContext, startBoot } from "./boot-start.ts";
import { checkHealth, inspectSlots, readBootext, runHeddle } from "./disk-boot.ts";
import { mountSlot } from "./disk-mount.ts";
import { updateSlots } from "./disk-update.ts";
import { runDisklessBoot } from "./diskless.ts";
import { runDisksStage } from "./disks.ts";
import { type BootResult, finishBoot, type MountedRoot } from "./finish.ts";

/** `controller boot` mounts over /sysroot and writes to /etc: only ever in an initramfs, never in a running system. */
export async function isInitramfs(system: System): Promise<boolean> {
  return (await system.lstat(INITRD_RELEASE)) !== undefined;
}

export interface BootOptions {
  /** where to stop dead, for the power-cut tests; by default rd.controller.cut= on the command line says */
  readonly cuts?: CutPoints;
}

export async function runBoot(system: System, baseLog: Logger, options: BootOptions = {}): Promise<BootResult> {
  const context = await startBoot(system, baseLog); // cmdline
  const cuts = options.cuts ?? cutPointsFor(system, context.log, context.cmdline.cut);
  const early = await readEarlyConfig(context); // config
  const root = await mountRoot(context, early, cuts);
  return finishBoot(context, root); // services, command, wait, stop-services, handoff
}

/** From the disks stage to the new root at /sysroot: from the slot partitions, or from RAM. */
async function mountRoot(context: BootContext, early: LocalConfig, cuts: CutPoints): Promise<MountedRoot> {
  const { config, provenance } = early.resolved;
  // a diskless boot decides before any disk is touched; BOOTEXT's config cannot choose it
  const alwaysDiskless = disklessReason(config, provenance, undefined);
  if (alwaysDiskless !== undefined) return runDisklessBoot(context, { early, devices: undefined, why: alwaysDiskless, cuts });
  const devices = await context.stage("disks", [], (stageLog) => runDisksStage(context.system, stageLog, config));
  const noSlotsDiskless = disklessReason(config, provenance, devices);
  if (noSlotsDiskless !== undefined) return runDisklessBoot(context, { early, devices, why: noSlotsDiskless, cuts });

  const local = await readBootext(context, early, devices, cuts); // bootext
  const inspected = await inspectSlots(await runHeddle(local)); // heddle, slots
  const checked = await checkHealth(inspected); // health
  const updated = await updateSlots(checked); // network, check, server-config, install, switch
  return mountSlot(updated); // mounts, overmounts, attempt
}
