// `controller boot`: the stages in order, each fed by the ones before it.
// Every stage is timed, and a stage that throws is logged and replaced by a
// safe result, so one broken piece never costs the machine its boot: the
// worst case is dracut's emergency shell with a report saying why.

import { type BootContext, type BootResult, finishBoot } from "./finish.ts";
import { runBootextStage, type BootextResult } from "./bootext.ts";
import { type Cmdline, parseCmdline } from "../config/cmdline.ts";
import { cmdlineLayers, type ConfigLayer, loadInitramfsConfig, type ResolvedConfig, resolveConfig } from "../config/layers.ts";
import { type CutPoints, cutPointsFor } from "../system/cut-points.ts";
import { describeDevices } from "../plans/devices.ts";
import { runDisksStage } from "./disks.ts";
import { disklessReason, runDisklessBoot } from "./diskless.ts";
import { type HeddleResult, runHeddleStage } from "./heddle.ts";
import { type BootPlan, planBoot } from "../plans/boot-order.ts";
import { type HealthResult, runHealthStage } from "./health.ts";
import type { Logger } from "../system/log.ts";
import { type MountsResult, runMountsStage } from "./mounts.ts";
import { slotMountPoint } from "../plans/mounts.ts";
import type { OvermountOutcome } from "./overmounts.ts";
import { runOvermountsStage } from "./overmounts.ts";
import { type NetworkResult, runNetworkStage } from "./network.ts";
import { networkNeed } from "../plans/network-need.ts";
import { planSwitch, slotsWithWrittenLabels, withWrittenLabels } from "../plans/labels.ts";
import { runSwitchStage } from "./slot-switch.ts";
import { countBootAttempt } from "./slot-health.ts";
import { type HealthRecord, healthOf } from "../plans/slot-health.ts";
import { type InspectedSlot, summarizeSlot, versionFloor, versionOf } from "../plans/slot.ts";
import { reinspectSlot, runSlotsStage, type SlotsResult } from "./slots.ts";
import { type CheckResult, runCheckStage, summarizeCheck } from "./update-check.ts";
import { runServerConfigStage, type ServerConfigResult, summarizeServerConfig } from "./update-config.ts";
import { type InstallResult, runInstallStage } from "./update-install.ts";
import { planSpare } from "../plans/spare.ts";
import { INITRD_RELEASE, PROC_CMDLINE } from "../system/paths.ts";
import type { StageTiming, UpdateReport } from "./report.ts";
import type { BlockDevice, System } from "../system/system.ts";

function logConfig(log: Logger, resolved: ResolvedConfig, previous: readonly string[] = []): void {
  for (const problem of resolved.problems) if (!previous.includes(problem)) log.error(`${problem}; that file is ignored, the boot goes on without it`);
}

async function kernelUptime(system: System): Promise<number | undefined> {
  try {
    return Number.parseFloat((await system.readText("/proc/uptime")).split(" ")[0] ?? "");
  } catch {
    return undefined;
  }
}

/** `controller boot` mounts over /sysroot and writes to /etc: only ever in an initramfs, never in a running system. */
export async function isInitramfs(system: System): Promise<boolean> {
  return (await system.lstat(INITRD_RELEASE)) !== undefined;
}

export interface BootOptions {
  /** where to stop dead, for the power-cut tests; by default rd.controller.cut= on the command line says */
  readonly cuts?: CutPoints;
}

export async function runBoot(system: System, baseLog: Logger, options: BootOptions = {}): Promise<BootResult> {
  const startedAt = system.wallClock();
  const startMs = system.monotonicMs();
  const kernelUptimeAtStart = await kernelUptime(system);
  const stages: StageTiming[] = [];
  let log = baseLog;

  /** Runs one stage with its own log scope and timing; on a throw, logs it and returns `fallback`. */
  async function stage<T>(name: string, fallback: T, body: (log: Logger) => Promise<T> | T): Promise<T> {
    const began = system.monotonicMs();
    const stageLog = log.forScope(name);
    const timing = () => ({ stage: name, startMs: Math.round(began - startMs), durationMs: Math.round(system.monotonicMs() - began) });
    try {
      const result = await body(stageLog);
      stages.push({ ...timing(), outcome: "ok" });
      return result;
    } catch (error) {
      const message = (error as Error).message;
      stageLog.error(`stage ${name} failed: ${message}; going on without it`);
      stages.push({ ...timing(), outcome: "failed", error: message });
      return fallback;
    }
  }

  const cmdline: Cmdline = await stage("cmdline", parseCmdline(""), async (stageLog) => {
    const parsed = parseCmdline(await system.readText(PROC_CMDLINE));
    for (const warning of parsed.warnings) stageLog.warn(warning);
    const flags = [
      parsed.shell && "shell",
      parsed.realInit !== undefined && `real_init=${parsed.realInit}`,
      parsed.debug && "rd.controller.debug",
      parsed.net && "net",
      parsed.ssh && "ssh",
      parsed.lldpd && "lldpd",
      parsed.sshKeysUrl !== undefined && `ssh_keys_url=${parsed.sshKeysUrl}`,
      parsed.commandUrl !== undefined && `command_url=${parsed.commandUrl}`,
    ].filter(Boolean);
    stageLog.info(`root=${parsed.root ?? "(none)"}, ${parsed.configOverrides.length} config overrides${flags.length > 0 ? `, ${flags.join(", ")}` : ""}`);
    return parsed;
  });
  log = log.withDebug(cmdline.debug);
  const decisions: string[] = [];
  const context: BootContext = { system, log, stage, cmdline, startedAt, startMs, kernelUptimeAtStart, stages, decisions };
  const cuts = options.cuts ?? cutPointsFor(system, log, cmdline.cut);

  // First the layers that need no disk, to know which labels to look for; BOOTEXT's come later.
  const early = await stage("config", { layers: [] as ConfigLayer[], resolved: resolveConfig([]) }, async (stageLog) => {
    const layers = [...(await loadInitramfsConfig(system)), ...cmdlineLayers(cmdline.configOverrides)];
    const resolvedEarly = resolveConfig(layers);
    logConfig(stageLog, resolvedEarly);
    const applied = resolvedEarly.layers.filter((layer) => layer.status === "applied").length - 1;
    stageLog.info(`${applied} config layers applied over the built-in defaults, ${resolvedEarly.problems.length} problems`);
    return { layers, resolved: resolvedEarly };
  });
  let resolved = early.resolved;
  system.setCommandTimeout(resolved.config.timeouts.command_seconds * 1000);

  // a diskless boot decides before any disk is touched; BOOTEXT's config cannot choose it
  const diskless = (why: string, listed: readonly BlockDevice[] | undefined) =>
    runDisklessBoot(context, { layers: early.layers, resolved, devices: listed, why, cuts });
  const alwaysDiskless = disklessReason(resolved.config, resolved.provenance, undefined);
  if (alwaysDiskless !== undefined) return diskless(alwaysDiskless, undefined);

  let devices: BlockDevice[] = await stage("disks", [], (stageLog) => runDisksStage(system, stageLog, resolved.config));
  const noSlotsDiskless = disklessReason(resolved.config, resolved.provenance, devices);
  if (noSlotsDiskless !== undefined) return diskless(noSlotsDiskless, devices);

  const noBootext: BootextResult = { readOnly: resolved.config.bootext.read_only, layers: [] };
  const bootext = await stage("bootext", noBootext, (stageLog) => runBootextStage(system, stageLog, devices, resolved.config));
  const localLayers = [...early.layers, ...bootext.layers];
  if (bootext.layers.length > 0) {
    resolved = resolveConfig(localLayers);
    logConfig(log.forScope("bootext"), resolved, early.resolved.problems);
    system.setCommandTimeout(resolved.config.timeouts.command_seconds * 1000);
  }
  // Trust comes from the machine itself (initramfs, BOOTEXT, command line), never from what a slot or server says.
  const local = resolved;
  const trustedKeys = local.config.update.trusted_keys;
  // the name that picks the server's per-machine config: a DHCP server could set the hostname, and a server's config could name another machine
  const machineName = local.config.update.machine_name;

  // Heddle's updates boot with kexec before anything on the disks is touched; this returns only when none does.
  const noHeddle: HeddleResult = { updates: [], skipped: [], questions: [], status: "installed", reason: "the heddle stage failed: booting the installed system" };
  const heddle = await stage("heddle", noHeddle, (stageLog) => runHeddleStage(system, stageLog, cmdline, local.config, bootext, devices));

  const noSlots: SlotsResult = { slots: [], devices, repairs: [], configLayers: [] };
  const slots = await stage("slots", noSlots, (stageLog) => runSlotsStage(system, stageLog, devices, local.config));
  devices = [...slots.devices];
  /** the config of this boot: the local layers and the server's, kept on the slot or fetched now */
  const applyServerConfig = (serverLayers: readonly ConfigLayer[], scope: string) => {
    if (serverLayers.length === 0) return;
    const previous = resolved.problems;
    resolved = resolveConfig([...localLayers, ...serverLayers]);
    logConfig(log.forScope(scope), resolved, previous);
    if (resolved.config.update.trusted_keys.join() !== trustedKeys.join()) {
      log.forScope(scope).warn("the server's config sets update.trusted_keys: ignored, the keys the machine trusts come from its own config");
    }
    if (resolved.config.update.machine_name !== machineName) {
      log.forScope(scope).warn("the server's config sets update.machine_name: ignored, the name that picks a machine's config comes from its own config");
    }
    system.setCommandTimeout(resolved.config.timeouts.command_seconds * 1000);
  };
  applyServerConfig(slots.configLayers, "slots");

  decisions.push(`heddle: ${heddle.reason}`);
  const basePlan = planBoot(devices, resolved.config);
  const noHealth: HealthResult = { plan: { ...basePlan, relabels: [] }, verdicts: [], slots: slots.slots, devices };
  const health = await stage("health", noHealth, (stageLog) => runHealthStage(system, stageLog, slots.slots, devices, resolved.config));
  devices = [...health.devices];
  const verdictOf = (device: string) => health.verdicts.find((verdict) => verdict.device === device);
  /** the slots as the health stage left them; an install replaces the spare with what it wrote to it */
  let slotsNow: readonly InspectedSlot[] = health.slots;
  /** the slot an install wrote to: the health conditions checked on its old system say nothing of the new one */
  let rewritten: string | undefined;
  /** The slots as they are on the disks now, for the report and `controller status`: labels as written, records as read. */
  const slotSummaries = () => {
    const labels = new Map(devices.flatMap((device) => (device.label === undefined ? [] : [[device.device, device.label] as const])));
    return slotsWithWrittenLabels(slotsNow, labels, resolved.config).map((slot) =>
      summarizeSlot(slot, slot.device.device === rewritten ? undefined : verdictOf(slot.device.device)?.conditions),
    );
  };
  // the slot that boots unless an update changes it
  const bootingCandidate = health.plan.candidates[0];
  const booting = health.slots.find((slot) => slot.device.device === bootingCandidate?.device);

  /** Network, check, server config, install and switch: what the update servers change about this boot. */
  const runUpdate = async (): Promise<Omit<UpdateReport, "slots">> => {
    const before = resolved.config;
    const versions = {
      installed: booting === undefined ? undefined : versionOf(booting),
      // every slot: a SYSFS whose record was lost must not let a replayed old manifest overwrite a newer BACKUPFS
      floor: versionFloor(health.slots.map((slot) => ({ name: `${slot.device.label} on ${slot.device.device}`, record: slot.record }))),
    };
    const noNetwork: NetworkResult = { status: "down", macs: [], detail: "the network stage failed" };
    const network = await stage("network", noNetwork, (stageLog) => runNetworkStage(system, stageLog, before, networkNeed(before, cmdline)));
    const noCheck: CheckResult = { decision: "unreachable", reason: "the check stage failed", attempts: [] };
    const check = await stage("check", noCheck, (stageLog) => runCheckStage(system, stageLog, before, network, versions, trustedKeys));
    decisions.push(`update: ${check.reason}`);
    const report: Omit<UpdateReport, "slots"> = { repairs: slots.repairs, network, check: summarizeCheck(check) };
    const accepted = check.accepted;
    if (accepted === undefined) return report;

    const noServerConfig: ServerConfigResult = { status: "failed", problem: "the server-config stage failed" };
    const serverConfig = await stage("server-config", noServerConfig, (stageLog) => runServerConfigStage(system, stageLog, before, accepted, { macs: network.macs, name: machineName }));
    report.serverConfig = summarizeServerConfig(serverConfig);
    if (serverConfig.status !== "fetched") {
      if (check.decision === "install") decisions.push(`update: version ${accepted.manifest.version} not installed: its config files could not be fetched`);
      return report;
    }
    if (check.decision === "up-to-date") {
      applyServerConfig(serverConfig.layers, "server-config");
      return report;
    }

    // the last healthy system is never overwritten: only a system that said it came up healthy makes room
    const bootingHealth = booting === undefined ? undefined : healthOf(booting.health);
    const whyNot =
      booting === undefined
        ? "no slot boots to vouch for the spare"
        : verdictOf(booting.device.device)?.healthy === false
          ? `the running system (${booting.device.label} on ${booting.device.device}) failed its health check`
          : bootingHealth?.markedGood !== true
            ? `the running system (${booting.device.label} on ${booting.device.device}) has not been marked good yet`
            : undefined;
    if (booting === undefined || whyNot !== undefined) {
      const reason = `version ${accepted.manifest.version} waits: ${whyNot}, and the spare slot may hold the last healthy one`;
      log.forScope("install").warn(reason);
      decisions.push(`update: ${reason}`);
      return report;
    }
    const spare = planSpare(health.slots, booting.device.device, before);
    if (!spare.ok) {
      log.forScope("install").error(spare.reason);
      decisions.push(`update: ${spare.reason}`);
      return report;
    }
    const noInstall: InstallResult = {
      status: "failed",
      detail: "the install stage failed",
      version: accepted.manifest.version,
      bytesFetched: 0,
      resumedFromByte: 0,
      resumes: 0,
      durationMs: 0,
    };
    const install = await stage("install", noInstall, (stageLog) => runInstallStage(system, stageLog, before, accepted, serverConfig.files, spare.spare, cuts));
    report.install = install;
    if (install.label !== undefined) devices = withWrittenLabels(devices, new Map([[spare.spare.device.device, install.label]]));
    const spareNow = await reinspectSlot(system, spare.spare, local.config);
    slotsNow = slotsNow.map((slot) => (slot.device.device === spareNow.device.device ? spareNow : slot));
    rewritten = spareNow.device.device;
    decisions.push(`update: ${install.detail}`);
    if (install.status !== "installed") return report;

    const installed = { ...spare.spare.device, label: install.label ?? spare.spare.device.label };
    const steps = planSwitch(installed, booting.device, before);
    devices = await stage("switch", devices, (stageLog) => runSwitchStage(system, stageLog, steps, devices, cuts));
    report.switched = steps.map((step) => `${step.device.device} ${step.device.label ?? "(no label)"} -> ${step.to}`);
    decisions.push(`update: version ${accepted.manifest.version} on ${installed.device} is now ${before.labels.system}`);
    applyServerConfig(serverConfig.layers, "server-config");
    return report;
  };
  const update: UpdateReport = { ...(await runUpdate()), slots: slotSummaries() };
  const config = resolved.config;

  // after a switch the new system, verified as it was installed, boots first
  const plan: BootPlan = update.switched === undefined ? health.plan : planBoot(devices, config);
  const noMounts: MountsResult = { mounts: [], failedSlots: [], tmpfs: [] };
  const mounted = await stage("mounts", noMounts, (stageLog) => runMountsStage(system, stageLog, config, plan.candidates, bootext, cuts));
  const mounts = [...mounted.mounts];
  decisions.push(...plan.decisions);

  let overmounts: OvermountOutcome[] = [];
  let bootedHealth: HealthRecord | undefined;
  const booted = mounted.booted;
  if (booted !== undefined) {
    decisions.push(`booted ${booted.label} (${booted.role}) from ${booted.device}`);
    overmounts = await stage("overmounts", [], (stageLog) => runOvermountsStage(system, stageLog, config, bootext.mountPoint, mounts));
    bootedHealth = await stage("attempt", undefined, async (stageLog) => {
      const counted = await countBootAttempt(system, slotMountPoint(booted), `${booted.label} on ${booted.device}`, cuts);
      stageLog.info(`boot ${counted.attempts} of ${config.health.max_attempts} on ${booted.label} without a mark-good`);
      return counted;
    });
  }
  const failed = mounted.failedSlots.map(({ candidate, error }) => `${candidate.label} on ${candidate.device}: ${error}`);
  return finishBoot(context, {
    resolved,
    // content from command_url= and ssh_keys_url= is trusted as the machine's own config says, never a server's
    trust: { trustedKeys, allowUnsigned: local.config.remote.allow_unsigned },
    network: update.network,
    report: {
      partitions: devices,
      bootext: { readOnly: bootext.readOnly, ...(bootext.device === undefined ? {} : { device: bootext.device, mountPoint: bootext.mountPoint }) },
      heddle,
      update,
      boot: {
        ...plan,
        failedSlots: mounted.failedSlots,
        ...(booted === undefined ? {} : { booted }),
        ...(bootedHealth === undefined ? {} : { health: bootedHealth }),
      },
      mounts,
      tmpfs: mounted.tmpfs,
      ...(mounted.machineId === undefined ? {} : { machineId: mounted.machineId }),
      overmounts,
    },
    ...(booted === undefined
      ? {
          nothingBootable: [
            "NOTHING TO BOOT.",
            `Looked for partitions labelled ${config.labels.system} or ${config.labels.backup}.`,
            `Filesystems seen: ${describeDevices(devices)}.`,
            ...(failed.length > 0 ? [`Tried and failed: ${failed.join("; ")}.`] : []),
          ],
        }
      : {}),
  });
}
