// `controller boot`: the stages in order, each fed by the ones before it.
// Every stage is timed, and a stage that throws is logged and replaced by a
// safe result, so one broken piece never costs the machine its boot: the
// worst case is dracut's emergency shell with a report saying why.

import { runBootextStage, type BootextResult } from "./bootext.ts";
import { type Cmdline, parseCmdline } from "./cmdline.ts";
import { cmdlineLayers, type ConfigLayer, loadInitramfsConfig, type ResolvedConfig, resolveConfig } from "./config.ts";
import { type CutPoints, cutPointsFor } from "./cut-points.ts";
import { describeDevices, runDisksStage } from "./disks.ts";
import { type HandoffResult, runHandoffStage } from "./handoff.ts";
import { type BootPlan, type HealthResult, planBoot, runHealthStage } from "./health.ts";
import type { Logger } from "./log.ts";
import { type MountsResult, runMountsStage, slotMountPoint } from "./mounts.ts";
import type { OvermountOutcome } from "./overmounts.ts";
import { runOvermountsStage } from "./overmounts.ts";
import { type NetworkResult, runNetworkStage } from "./network.ts";
import { planSwitch, runSwitchStage } from "./slot-switch.ts";
import { countBootAttempt, type HealthRecord, healthOf } from "./slot-health.ts";
import { runSlotsStage, type SlotsResult, summarizeSlot, versionOf } from "./slots.ts";
import { type CheckResult, runCheckStage, summarizeCheck } from "./update-check.ts";
import { runServerConfigStage, type ServerConfigResult } from "./update-config.ts";
import { type InstallResult, planSpare, runInstallStage } from "./update-install.ts";
import { INITRD_RELEASE, PROC_CMDLINE, REPORT_PATH } from "./paths.ts";
import { formatStatus } from "./status.ts";
import { type BootOutcome, type BootReport, REPORT_HEADER, type StageTiming, type UpdateReport, writeReport } from "./report.ts";
import type { BlockDevice, System } from "./system.ts";

export interface BootResult {
  readonly outcome: BootOutcome;
  readonly report: BootReport;
}

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
    const flags = [parsed.shell && "shell", parsed.realInit !== undefined && `real_init=${parsed.realInit}`, parsed.debug && "rd.controller.debug"].filter(Boolean);
    stageLog.info(`root=${parsed.root ?? "(none)"}, ${parsed.configOverrides.length} config overrides${flags.length > 0 ? `, ${flags.join(", ")}` : ""}`);
    return parsed;
  });
  log = log.withDebug(cmdline.debug);
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

  let devices: BlockDevice[] = await stage("disks", [], (stageLog) => runDisksStage(system, stageLog, resolved.config));

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
    system.setCommandTimeout(resolved.config.timeouts.command_seconds * 1000);
  };
  applyServerConfig(slots.configLayers, "slots");

  const decisions: string[] = [];
  const basePlan = planBoot(devices, resolved.config);
  const noHealth: HealthResult = { plan: { ...basePlan, relabels: [] }, verdicts: [], slots: slots.slots, devices };
  const health = await stage("health", noHealth, (stageLog) => runHealthStage(system, stageLog, slots.slots, devices, resolved.config));
  devices = [...health.devices];
  const verdictOf = (device: string) => health.verdicts.find((verdict) => verdict.device === device);
  const slotSummaries = () => health.slots.map((slot) => summarizeSlot(slot, verdictOf(slot.device.device)?.conditions));
  // the slot that boots unless an update changes it
  const bootingCandidate = health.plan.candidates[0];
  const booting = health.slots.find((slot) => slot.device.device === bootingCandidate?.device);

  /** Network, check, server config, install and switch: what the update servers change about this boot. */
  const runUpdate = async (): Promise<UpdateReport> => {
    const before = resolved.config;
    const installedVersion = booting === undefined ? undefined : versionOf(booting);
    const noNetwork: NetworkResult = { status: "down", macs: [], detail: "the network stage failed" };
    const network = await stage("network", noNetwork, (stageLog) => runNetworkStage(system, stageLog, before));
    const noCheck: CheckResult = { decision: "unreachable", reason: "the check stage failed", attempts: [] };
    const check = await stage("check", noCheck, (stageLog) => runCheckStage(system, stageLog, before, network, installedVersion, trustedKeys));
    decisions.push(`update: ${check.reason}`);
    const report: UpdateReport = { slots: slotSummaries(), repairs: slots.repairs, network, check: summarizeCheck(check) };
    const accepted = check.accepted;
    if (accepted === undefined) return report;

    const noServerConfig: ServerConfigResult = { status: "failed", problem: "the server-config stage failed" };
    const serverConfig = await stage("server-config", noServerConfig, (stageLog) => runServerConfigStage(system, stageLog, before, accepted, network));
    report.serverConfig =
      serverConfig.status === "fetched" ? { status: "fetched", files: serverConfig.files.map(({ name, sha512 }) => ({ name, sha512 })) } : serverConfig;
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
    if (booting === undefined || bootingHealth?.markedGood !== true || verdictOf(booting.device.device)?.healthy === false) {
      const which = booting === undefined ? "nothing" : `${booting.device.label} on ${booting.device.device}`;
      const reason = `version ${accepted.manifest.version} waits: the running system (${which}) has not been marked good yet, and the spare slot may hold the last healthy one`;
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
    decisions.push(`update: ${install.detail}`);
    if (install.status !== "installed") return report;

    const installed = { ...spare.spare.device, label: install.label ?? spare.spare.device.label };
    const steps = planSwitch(installed, booting.device, before);
    devices = await stage("switch", devices, (stageLog) => runSwitchStage(system, stageLog, steps, cuts));
    report.switched = steps.map((step) => `${step.device.device} ${step.device.label ?? "(no label)"} -> ${step.to}`);
    decisions.push(`update: version ${accepted.manifest.version} on ${installed.device} is now ${before.labels.system}`);
    applyServerConfig(serverConfig.layers, "server-config");
    return report;
  };
  const update = await runUpdate();
  const config = resolved.config;

  // after a switch the new system, verified as it was installed, boots first
  const plan: BootPlan = update.switched === undefined ? health.plan : planBoot(devices, config);

  const noMounts: MountsResult = { mounts: [], failedSlots: [], tmpfs: [] };
  const mounted = await stage("mounts", noMounts, (stageLog) => runMountsStage(system, stageLog, config, plan.candidates));
  const mounts = [...mounted.mounts];
  decisions.push(...plan.decisions);

  let overmounts: OvermountOutcome[] = [];
  let handoff: HandoffResult | undefined;
  let bootedHealth: HealthRecord | undefined;
  let outcome: BootOutcome;

  const report = (): BootReport => ({
    ...REPORT_HEADER,
    startedAt: startedAt.toISOString(),
    finishedAt: system.wallClock().toISOString(),
    ...(kernelUptimeAtStart === undefined ? {} : { kernelUptimeAtStart }),
    outcome,
    decisions,
    cmdline,
    config: { values: config, provenance: resolved.provenance, layers: resolved.layers, problems: resolved.problems },
    partitions: devices,
    bootext: { readOnly: bootext.readOnly, ...(bootext.device === undefined ? {} : { device: bootext.device, mountPoint: bootext.mountPoint }) },
    update,
    boot: {
      ...plan,
      failedSlots: mounted.failedSlots,
      ...(mounted.booted === undefined ? {} : { booted: mounted.booted }),
      ...(bootedHealth === undefined ? {} : { health: bootedHealth }),
    },
    mounts,
    tmpfs: mounted.tmpfs,
    overmounts,
    ...(handoff === undefined ? {} : { handoff }),
    notices: log.notices,
    stages,
  });
  /** Writes the report as it stands and returns it; a report that cannot be written is an error, not the end of the boot. */
  const save = async (): Promise<BootReport> => {
    const current = report();
    try {
      await writeReport(system, current);
    } catch (error) {
      log.error(`Cannot write the boot report: ${(error as Error).message}`);
    }
    return current;
  };

  if (mounted.booted === undefined) {
    outcome = "nothing-bootable";
    const failed = mounted.failedSlots.map(({ candidate, error }) => `${candidate.label} on ${candidate.device}: ${error}`);
    decisions.push("nothing bootable: dropping to dracut's emergency shell");
    log.error(
      [
        "NOTHING TO BOOT.",
        `Looked for partitions labelled ${config.labels.system} or ${config.labels.backup}.`,
        `Filesystems seen: ${describeDevices(devices)}.`,
        ...(failed.length > 0 ? [`Tried and failed: ${failed.join("; ")}.`] : []),
        `The boot report is ${REPORT_PATH}.`,
      ].join("\n"),
    );
    const saved = await save();
    // for the person at dracut's emergency shell: everything the controller knows, on the screen
    for (const line of formatStatus(saved).trimEnd().split("\n")) log.forScope("report").info(line);
    return { outcome, report: saved };
  }

  outcome = "handed-off";
  const booted = mounted.booted;
  decisions.push(`booted ${booted.label} (${booted.role}) from ${booted.device}`);
  overmounts = await stage("overmounts", [], (stageLog) => runOvermountsStage(system, stageLog, config, bootext.mountPoint, mounts));
  bootedHealth = await stage("attempt", undefined, async (stageLog) => {
    const counted = await countBootAttempt(system, slotMountPoint(booted), `${booted.label} on ${booted.device}`, cuts);
    stageLog.info(`boot ${counted.attempts} of ${config.health.max_attempts} on ${booted.label} without a mark-good`);
    return counted;
  });

  const configured = { path: config.boot.real_init, source: `boot.real_init from ${resolved.provenance["boot.real_init"] ?? "config"}` };
  handoff = await stage("handoff", undefined, (stageLog) => runHandoffStage(system, stageLog, cmdline, configured, save));
  if (handoff !== undefined) decisions.push(`init ${handoff.init.path} (${handoff.init.source})`);
  log.info(`done in ${Math.round(system.monotonicMs() - startMs)} ms; report in ${REPORT_PATH}`);
  return { outcome, report: await save() };
}
