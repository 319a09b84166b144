// The end of every boot, from disks or from RAM: the Alchemy flags' services
// (ssh, lldpd), then either "nothing bootable" (the report on the console and
// dracut's emergency shell, with ssh still running for whoever must look) or
// command_url=, the wait for the person logged in over ssh, and the handoff.
// Both ways of booting (boot.ts, diskless.ts) hand over here with what they
// mounted, so the report is put together in one place.

import type { Cmdline } from "../config/cmdline.ts";
import type { ResolvedConfig } from "../config/layers.ts";
import { type CommandResult, runCommandStage } from "./command-url.ts";
import { type HandoffResult, runHandoffStage } from "./handoff.ts";
import type { Logger } from "../system/log.ts";
import type { NetworkResult } from "./network.ts";
import { REPORT_PATH } from "../system/paths.ts";
import type { TrustPolicy } from "./remote-content.ts";
import { type BootOutcome, type BootReport, REPORT_HEADER, type StageTiming, writeReport } from "./report.ts";
import { runServicesStage, type ServicesResult, stopServices } from "./services.ts";
import { runWaitStage, type WaitResult } from "./services-wait.ts";
import { formatStatus } from "./report-text.ts";
import type { System } from "../system/system.ts";

export interface BootResult {
  readonly outcome: BootOutcome;
  readonly report: BootReport;
}

/** Runs one stage with its own log scope and timing; on a throw, logs it and returns `fallback`. */
export type StageRunner = <T>(name: string, fallback: T, body: (log: Logger) => Promise<T> | T) => Promise<T>;

/** What every boot shares from its first stage on: runBoot makes it. */
export interface BootContext {
  readonly system: System;
  readonly log: Logger;
  readonly stage: StageRunner;
  readonly cmdline: Cmdline;
  readonly startedAt: Date;
  readonly startMs: number;
  readonly kernelUptimeAtStart: number | undefined;
  readonly stages: readonly StageTiming[];
  /** the report's decisions, added to by every part of the boot */
  readonly decisions: string[];
}

/** The parts of the report that depend on how the root was found. */
export type RootReport = Pick<BootReport, "partitions" | "bootext" | "update" | "boot" | "mounts" | "tmpfs" | "overmounts"> &
  Partial<Pick<BootReport, "heddle" | "diskless" | "machineId">>;

/** What a boot from disks or from RAM hands over to finishBoot. */
export interface MountedRoot {
  /** this boot's config, with whatever the server's config added */
  readonly resolved: ResolvedConfig;
  /** who may sign command_url= and ssh_keys_url= content: the machine's own config says */
  readonly trust: TrustPolicy;
  readonly network: NetworkResult;
  readonly report: RootReport;
  /** undefined when a system is mounted at /sysroot; else the lines that say why not */
  readonly nothingBootable?: readonly string[];
}

/** The services the command line asks for, before anything else, so a machine that cannot boot can still be reached. */
function wantsServices(cmdline: Cmdline): boolean {
  return cmdline.ssh || cmdline.lldpd || cmdline.sshKeysUrl !== undefined;
}

export async function finishBoot(context: BootContext, root: MountedRoot): Promise<BootResult> {
  const { system, log, stage, cmdline, decisions } = context;
  const config = root.resolved.config;
  const noServices: ServicesResult = { report: {}, running: [] };
  const services = wantsServices(cmdline)
    ? await stage("services", noServices, (stageLog) => runServicesStage(system, stageLog, cmdline, config, root.trust, root.network))
    : noServices;
  let servicesStopped: string[] | undefined;
  let command: CommandResult | undefined;
  let waited: WaitResult | undefined;
  let handoff: HandoffResult | undefined;
  const outcome: BootOutcome = root.nothingBootable === undefined ? "handed-off" : "nothing-bootable";

  const report = (): BootReport => ({
    ...REPORT_HEADER,
    startedAt: context.startedAt.toISOString(),
    finishedAt: system.wallClock().toISOString(),
    ...(context.kernelUptimeAtStart === undefined ? {} : { kernelUptimeAtStart: context.kernelUptimeAtStart }),
    outcome,
    decisions,
    cmdline,
    config: { values: config, provenance: root.resolved.provenance, layers: root.resolved.layers, problems: root.resolved.problems },
    ...root.report,
    ...(Object.keys(services.report).length === 0 ? {} : { services: { ...services.report, ...(servicesStopped === undefined ? {} : { stopped: servicesStopped }) } }),
    ...(command === undefined ? {} : { command }),
    ...(waited === undefined ? {} : { wait: waited }),
    ...(handoff === undefined ? {} : { handoff }),
    notices: log.notices,
    stages: context.stages,
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

  if (root.nothingBootable !== undefined) {
    decisions.push("nothing bootable: dropping to dracut's emergency shell");
    log.error([...root.nothingBootable, `The boot report is ${REPORT_PATH}.`].join("\n"));
    const saved = await save();
    // for the person at dracut's emergency shell: everything the controller knows, on the screen
    for (const line of formatStatus(saved).trimEnd().split("\n")) log.forScope("report").info(line);
    return { outcome, report: saved };
  }

  const commandUrl = cmdline.commandUrl;
  if (commandUrl !== undefined) {
    const failedCommand: CommandResult = { url: commandUrl, status: "failed", detail: "the command stage failed" };
    command = await stage("command", failedCommand, (stageLog) => runCommandStage(system, stageLog, commandUrl, config, root.trust));
  }
  if (services.report.ssh?.status === "running") waited = await stage("wait", undefined, (stageLog) => runWaitStage(system, stageLog, config, services.report));
  if (services.running.length > 0) servicesStopped = await stage("stop-services", [], (stageLog) => stopServices(stageLog, services.running));

  const configured = { path: config.boot.real_init, source: `boot.real_init from ${root.resolved.provenance["boot.real_init"] ?? "config"}` };
  handoff = await stage("handoff", undefined, (stageLog) => runHandoffStage(system, stageLog, cmdline, configured, save));
  if (handoff !== undefined) decisions.push(`init ${handoff.init.path} (${handoff.init.source})`);
  log.info(`done in ${Math.round(system.monotonicMs() - context.startMs)} ms; report in ${REPORT_PATH}`);
  return { outcome, report: await save() };
}
