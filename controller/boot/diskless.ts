// Diskless boots (Alchemy's PXE labs): the machine runs the image its update
// server publishes from RAM and leaves its disks alone. runBoot hands over to
// runDisklessBoot when config.d [diskless] (or `controller.diskless` on the
// kernel command line) says so, before anything touched a disk: no filesystem
// check (e2fsck writes), no slot or BOOTEXT mount, no label, no boot count, no
// overmounts (a BOOTEXT on the disk may belong to another system). Trust is as
// for an install: the manifest must be signed by a key of the machine's own
// config, for its channel, unexpired; the image must have the size and sha512
// the manifest signs (downloadVerifiedImage, shared with the install stage).
// Nothing verified, nothing boots: dracut's emergency shell, with the reason on
// the console and in the report.

import type { ResolvedConfig } from "../config/layers.ts";
import type { Config } from "../config/schema.ts";
import { describeDevices } from "../plans/devices.ts";
import { parseMemAvailable, planRam, planRamDisk, planRootFromRam, type RamNeed } from "../plans/diskless.ts";
import type { CutPoints } from "../system/cut-points.ts";
import type { Logger } from "../system/log.ts";
import type { MountRecord } from "../system/new-root-paths.ts";
import { KERNEL_MODULES, NEWROOT, PROC_MEMINFO } from "../system/paths.ts";
import type { BlockDevice, System } from "../system/system.ts";
import { resolveRepoUrl } from "../update/manifest.ts";
import { type LocalConfig, trustOf, withServerLayers } from "./boot-config.ts";
import type { BootContext } from "./boot-start.ts";
import type { DisklessReport } from "./diskless-report.ts";
import type { MountedRoot } from "./finish.ts";
import { kernelDecision, runKernelSwitchStage } from "./kernel-switch.ts";
import { executeSteps, mountTmpfs, type MountsResult } from "./mounts.ts";
import type { NetworkResult } from "./network.ts";
import type { UpdateReport } from "./report.ts";
import { type AcceptedManifest, summarizeCheck } from "./update-check.ts";
import { summarizeServerConfig } from "./update-config.ts";
import { type DownloadCounters, downloadVerifiedImage, newCounters, wholeImage } from "./image-download.ts";
import { checkServers, fetchServerConfig } from "./update-servers.ts";

const MB = 1_000_000;

export interface DisklessStageResult {
  readonly report: Omit<DisklessReport, "why">;
  readonly mounts: readonly MountRecord[];
  readonly tmpfs: MountsResult["tmpfs"];
}

/**
 * Stage "diskless": checks RAM, fetches and verifies the image into a tmpfs
 * sized for it, makes that tmpfs read-only, mounts the image read-only at the
 * new root and the config.d [tmpfs] mounts over it.
 */
export async function runDisklessStage(system: System, log: Logger, config: Config, accepted: AcceptedManifest, cuts: CutPoints): Promise<DisklessStageResult> {
  const { manifest } = accepted;
  const began = system.monotonicMs();
  const counters: DownloadCounters = newCounters();
  const image = `${config.diskless.dir}/${config.slot.image}`;
  const mounts: MountRecord[] = [];
  let ram: RamNeed | undefined;
  const result = (status: DisklessReport["status"], detail: string, tmpfs: MountsResult["tmpfs"] = []): DisklessStageResult => {
    const durationMs = Math.round(system.monotonicMs() - began);
    const throughput = counters.bytesFetched > 0 && durationMs > 0 ? counters.bytesFetched / MB / (durationMs / 1000) : undefined;
    (status === "running-from-ram" ? log.info : log.error).call(log, detail);
    const report = {
      status,
      detail,
      version: manifest.version,
      ...(status === "running-from-ram" ? { image } : {}),
      imageBytes: manifest.image.size,
      ...(ram === undefined ? {} : { ram }),
      bytesFetched: counters.bytesFetched,
      resumes: counters.resumes,
      durationMs,
      ...(throughput === undefined ? {} : { throughputMBps: Math.round(throughput * 10) / 10 }),
    };
    return { report, mounts, tmpfs };
  };

  let meminfo: string;
  try {
    meminfo = await system.readText(PROC_MEMINFO);
  } catch (error) {
    return result("refused", `Cannot run version ${manifest.version} from RAM: Cannot read ${PROC_MEMINFO}: ${(error as Error).message}`);
  }
  const available = parseMemAvailable(meminfo);
  if (!available.ok) return result("refused", `Cannot run version ${manifest.version} from RAM: ${available.problem}`);
  const plan = planRam(manifest.version, manifest.image.size, config.diskless.ram_margin_mib, available.bytes);
  ram = { imageMiB: plan.imageMiB, marginMiB: plan.marginMiB, availableMiB: plan.availableMiB, tmpfsMiB: plan.tmpfsMiB };
  if (!plan.ok) return result("refused", plan.problem);
  log.info(`${plan.availableMiB} MiB of RAM available; the image of version ${manifest.version} takes ${plan.imageMiB} MiB, ${plan.marginMiB} MiB stay free (diskless.ram_margin_mib)`);

  const loaded = await loadIntoRam({ system, log, config, accepted, cuts, image, mounts, counters }, plan.tmpfsMiB);
  if (!loaded.ok) return result("failed", `Cannot run version ${manifest.version} from RAM: ${loaded.problem}`);
  const fetched = `${(counters.bytesFetched / MB).toFixed(1)} MB fetched`;
  return result("running-from-ram", `version ${manifest.version} verified in RAM (${fetched}) and mounted read-only at ${NEWROOT}`, loaded.tmpfs);
}

/** What the diskless stage works with; `mounts` and `counters` grow as it goes. */
interface RamLoad {
  readonly system: System;
  readonly log: Logger;
  readonly config: Config;
  readonly accepted: AcceptedManifest;
  readonly cuts: CutPoints;
  /** where the image goes, in the tmpfs */
  readonly image: string;
  readonly mounts: MountRecord[];
  readonly counters: DownloadCounters;
}

type Loaded = { readonly ok: true; readonly tmpfs: MountsResult["tmpfs"] } | { readonly ok: false; readonly problem: string };

/** The image fetched and verified into a tmpfs of `tmpfsMiB`, then read-only at the new root with the config.d [tmpfs] mounts over it. */
async function loadIntoRam(load: RamLoad, tmpfsMiB: number): Promise<Loaded> {
  const { system, log, config, accepted, cuts, image, mounts, counters } = load;
  const { manifest } = accepted;
  const dir = config.diskless.dir;
  try {
    await system.loadKernelModules(KERNEL_MODULES);
  } catch (error) {
    // built in, or already loaded: the loop mount below says if one is really missing
    log.warn(`Cannot load kernel modules ${KERNEL_MODULES.join(", ")}: ${(error as Error).message}`);
  }
  await executeSteps(system, log, planRamDisk(dir, tmpfsMiB), mounts);
  const url = resolveRepoUrl(accepted.server, manifest.image.url);
  log.info(`fetching version ${manifest.version} (${(manifest.image.size / MB).toFixed(1)} MB) from ${url} into RAM at ${dir}`);
  const verified = await downloadVerifiedImage(system, log, config, wholeImage(url, manifest.image), image, manifest.image, `RAM (${dir})`, 0, counters, cuts);
  if (!verified.ok) {
    // the RAM goes back to whoever uses the emergency shell
    await system.unmount(dir);
    mounts.length = 0;
    return { ok: false, problem: verified.problem };
  }
  // what the running system is made of cannot be changed under it
  await system.remount(dir, true);
  await executeSteps(system, log, planRootFromRam(image), mounts);
  return { ok: true, tmpfs: await mountTmpfs(system, log, config, mounts) };
}

export interface DisklessBootOptions {
  /** the initramfs's config.d and the command line's overrides: the only local config of a diskless boot */
  readonly early: LocalConfig;
  /** the filesystems listed for the report; undefined when the disks stage did not run */
  readonly devices: readonly BlockDevice[] | undefined;
  /** disklessReason's answer */
  readonly why: string;
  readonly cuts: CutPoints;
}

/** What became of the version the servers offered: the config in force, and the image in RAM or why there is none. */
interface RamRoot {
  readonly resolved: ResolvedConfig;
  readonly stageResult?: DisklessStageResult;
  readonly problem?: string;
}

/** Stage "disks" for the report only: listing labels reads, it writes nothing. */
function listDisksLeftAlone(context: BootContext): Promise<readonly BlockDevice[]> {
  return context.stage("disks", [], async (stageLog) => {
    const listed = await context.system.listBlockDevices();
    stageLog.info(`filesystems seen, left alone: ${describeDevices(listed)}`);
    return listed;
  });
}

/** Stages "server-config" and "diskless": the accepted version's config files, then its image into RAM. */
async function runAccepted(context: BootContext, options: DisklessBootOptions, accepted: AcceptedManifest, network: NetworkResult, update: UpdateReport): Promise<RamRoot> {
  const { early, cuts } = options;
  const serverConfig = await fetchServerConfig(context, early.resolved.config, accepted, network, early);
  update.serverConfig = summarizeServerConfig(serverConfig);
  if (serverConfig.status !== "fetched") {
    return { resolved: early.resolved, problem: `version ${accepted.manifest.version} is not run: its config files could not be fetched (${serverConfig.problem})` };
  }
  // the server's config applies to this boot only: a diskless machine keeps it nowhere
  const resolved = serverConfig.layers.length === 0 ? early.resolved : withServerLayers(context, early, serverConfig.layers, "server-config");
  const config = resolved.config;
  const stageResult = await context.stage("diskless", undefined, (stageLog) => runDisklessStage(context.system, stageLog, config, accepted, cuts));
  if (stageResult === undefined) return { resolved, problem: `version ${accepted.manifest.version} is not run: the diskless stage failed` };
  return { resolved, stageResult, ...(stageResult.report.status === "running-from-ram" ? {} : { problem: stageResult.report.detail }) };
}

/**
 * The boot from the disks stage on when it runs from RAM: network, check,
 * server-config, diskless; finishBoot then ends it as a disk boot (services,
 * command, wait, handoff). Nothing verified: nothing-bootable, for dracut's emergency shell.
 */
export async function runDisklessBoot(context: BootContext, options: DisklessBootOptions): Promise<MountedRoot> {
  const { log, decisions } = context;
  const { early, why } = options;
  decisions.push(`diskless: ${why}; the disks are not touched`);
  log.forScope("diskless").info(`running from RAM: ${why}; no disk is checked, mounted or written`);
  const devices = options.devices ?? (await listDisksLeftAlone(context));

  // nothing is installed: any version the servers sign for the channel will do
  const { network, check } = await checkServers(context, early.resolved.config, { installed: undefined, floor: undefined }, early);
  const update: UpdateReport = { slots: [], repairs: [], network, check: summarizeCheck(check) };
  const accepted = check.accepted;
  const ram: RamRoot =
    accepted === undefined ? { resolved: early.resolved, problem: `no verified system to run from RAM: ${check.reason}` } : await runAccepted(context, options, accepted, network, update);
  const { stageResult, problem } = ram;
  const diskless: DisklessReport =
    stageResult === undefined ? { why, status: "failed", detail: problem ?? "nothing verified", bytesFetched: 0, resumes: 0, durationMs: 0 } : { why, ...stageResult.report };
  if (problem === undefined) decisions.push(`booted version ${diskless.version} from RAM (${diskless.image})`);
  else decisions.push(`nothing bootable: ${problem}`);
  // the image in RAM may carry its own kernel: the PXE server then only serves a bootstrap kernel and initramfs
  const kernel =
    problem === undefined && accepted !== undefined
      ? await context.stage("kernel", undefined, (stageLog) =>
          runKernelSwitchStage(context.system, stageLog, {
            config: ram.resolved.config,
            cmdline: context.cmdline,
            slot: `the diskless image (version ${accepted.manifest.version})`,
            slotKernel: accepted.manifest.kernel,
            bootext: undefined,
            cuts: options.cuts,
          }),
        )
      : undefined;
  if (kernel !== undefined) decisions.push(kernelDecision(kernel));

  return {
    resolved: ram.resolved,
    trust: trustOf(early),
    network,
    report: {
      partitions: devices,
      bootext: { readOnly: true },
      update,
      boot: { candidates: [], decisions: [], warnings: [], failedSlots: [] },
      diskless,
      mounts: stageResult?.mounts ?? [],
      tmpfs: stageResult?.tmpfs ?? [],
      overmounts: [],
      ...(kernel === undefined ? {} : { kernel }),
    },
    ...(problem === undefined ? {} : { nothingBootable: ["NOTHING TO BOOT FROM RAM.", `${problem}.`, "The disks were not touched."] }),
  };
}
