// The end of every boot, from disks or from RAM: the Alchemy flags' services
// (ssh, lldpd), then either "nothing bootable" (the report on the console and
// dracut's emergency shell, with ssh still running for whoever must look) or
// command_url=, the wait for the person logged in over ssh, and the handoff.
// Both ways of booting (disk-mount.ts, diskless.ts) hand over here with what they
// mounted, so the report is put together in one place.

import type { Cmdline } from "../config/cmdline.ts";
import type { ResolvedConfig } from "../config/layers.ts";
import { REPORT_PATH } from "../system/paths.ts";
import type { BootContext } from "./boot-start.ts";
import { type CommandResult, runCommandStage } from "./command-url.ts";
import { type HandoffResult, runHandoffStage } from "./handoff.ts";
import type { NetworkResult } from "./network.ts";
import type { TrustPolicy } from "./remote-content.ts";
import { formatStatus } from "./report-text.ts";
import { type BootOutcome, type BootReport, countSubprocesses, describeSubprocesses, REPORT_HEADER, writeReport } from "./report.ts";
import { runWaitStage, type WaitResult } from "./services-wait.ts";
import { runServicesStage, type ServicesResult, stopServices } from "./services.ts";

export interface BootResult {
  readonly outcome: BootOutcome;
  readonly report: BootReport;
}

/** The parts of the report that depend on how the root was found. */
export type RootReport = Pick<BootReport, "partitions" | "bootext" | "update" | "boot" | "mounts" | "tmpfs" | "overmounts"> &
  Partial<Pick<BootReport, "heddle" | "diskless" | "machineId" | "kernel">>;

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

/** What the end of the boot adds to the report as it goes: the report is saved before the handoff and after it. */
interface Ending {
  readonly services: ServicesResult;
  servicesStopped?: string[];
  command?: CommandResult;
  waited?: WaitResult | undefined;
  handoff?: HandoffResult | undefined;
}

function reportOf(context: BootContext, root: MountedRoot, ending: Ending): BootReport {
  const { resolved } = root;
  const { services, servicesStopped, command, waited, handoff } = ending;
  return {
    ...REPORT_HEADER,
    startedAt: context.startedAt.toISOString(),
    finishedAt: context.system.wallClock().toISOString(),
    ...(context.kernelUptimeAtStart === undefined ? {} : { kernelUptimeAtStart: context.kernelUptimeAtStart }),
    ...(context.kernelUptimeAtProcessStart === undefined ? {} : { kernelUptimeAtProcessStart: context.kernelUptimeAtProcessStart }),
    outcome: outcomeOf(root),
    decisions: context.decisions,
    cmdline: context.cmdline,
    config: { values: resolved.config, provenance: resolved.provenance, layers: resolved.layers, problems: resolved.problems },
    ...root.report,
    ...(Object.keys(services.report).length === 0 ? {} : { services: { ...services.report, ...(servicesStopped === undefined ? {} : { stopped: servicesStopped }) } }),
    ...(command === undefined ? {} : { command }),
    ...(waited === undefined ? {} : { wait: waited }),
    ...(handoff === undefined ? {} : { handoff }),
    notices: context.log.notices,
    stages: context.stages,
    subprocesses: countSubprocesses(context.system.subprocesses()),
  };
}

function outcomeOf(root: MountedRoot): BootOutcome {
  return root.nothingBootable === undefined ? "handed-off" : "nothing-bootable";
}

/** Writes the report and returns it; a report that cannot be written is an error, not the end of the boot. */
async function saveReport(context: BootContext, report: BootReport): Promise<BootReport> {
  try {
    await writeReport(context.system, report);
  } catch (error) {
    context.log.error(`Cannot write the boot report: ${(error as Error).message}`);
  }
  return report;
}

/** The report on the console and dracut's emergency shell, with ssh still running for whoever must look. */
async function dropToShell(context: BootContext, nothingBootable: readonly string[], save: () => Promise<BootReport>): Promise<BootResult> {
  const { log, decisions } = context;
  decisions.push("nothing bootable: dropping to dracut's emergency shell");
  log.error([...nothingBootable, `The boot report is ${REPORT_PATH}.`].join("\n"));
  const saved = await save();
  // for the person at dracut's emergency shell: everything the controller knows, on the screen
  for (const line of formatStatus(saved).trimEnd().split("\n")) log.forScope("report").info(line);
  return { outcome: "nothing-bootable", report: saved };
}

/** Stages "command", "wait" and "stop-services": what happens in the initramfs before the handoff. */
async function beforeHandoff(context: BootContext, root: MountedRoot, ending: Ending): Promise<void> {
  const { system, stage, cmdline } = context;
  const config = root.resolved.config;
  const { services } = ending;
  const commandUrl = cmdline.commandUrl;
  if (commandUrl !== undefined) {
    const failedCommand: CommandResult = { url: commandUrl, status: "failed", detail: "the command stage failed" };
    ending.command = await stage("command", failedCommand, (stageLog) => runCommandStage(system, stageLog, commandUrl, config, root.trust));
  }
  if (services.report.ssh?.status === "running") ending.waited = await stage("wait", undefined, (stageLog) => runWaitStage(system, stageLog, config, services.report));
  if (services.running.length > 0) ending.servicesStopped = await stage("stop-services", [], (stageLog) => stopServices(stageLog, services.running));
}

/** Stages "services", then "command", "wait", "stop-services" and "handoff", or dracut's emergency shell when nothing is mounted. */
export async function finishBoot(context: BootContext, root: MountedRoot): Promise<BootResult> {
  const { system, log, stage, cmdline, decisions } = context;
  const config = root.resolved.config;
  const noServices: ServicesResult = { report: {}, running: [] };
  const services = wantsServices(cmdline)
    ? await stage("services", noServices, (stageLog) => runServicesStage(system, stageLog, cmdline, config, root.trust, root.network))
    : noServices;
  const ending: Ending = { services };
  const save = () => saveReport(context, reportOf(context, root, ending));
  if (root.nothingBootable !== undefined) return dropToShell(context, root.nothingBootable, save);

  await beforeHandoff(context, root, ending);
  const configured = { path: config.boot.real_init, source: `boot.real_init from ${root.resolved.provenance["boot.real_init"] ?? "config"}` };
  ending.handoff = await stage("handoff", undefined, (stageLog) => runHandoffStage(system, stageLog, cmdline, configured, save));
  if (ending.handoff !== undefined) decisions.push(`init ${ending.handoff.init.path} (${ending.handoff.init.source})`);
  const subprocesses = describeSubprocesses(countSubprocesses(system.subprocesses()));
  log.info(`done in ${Math.round(system.monotonicMs() - context.startMs)} ms, ${subprocesses}; report in ${REPORT_PATH}`);
  return { outcome: outcomeOf(root), report: await save() };
}
