// What every boot, from disks or from RAM, starts with: the clock, the stage
// "cmdline", and the context every later stage is given.

import { type Cmdline, parseCmdline } from "../config/cmdline.ts";
import type { Logger } from "../system/log.ts";
import { PROC_CMDLINE, PROC_SELF_STAT } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import type { StageTiming } from "./report.ts";
import { type StageRunner, stageRunner } from "./stage-runner.ts";

/** What every boot shares from its first stage on: startBoot makes it. */
export interface BootContext {
  readonly system: System;
  readonly log: Logger;
  readonly stage: StageRunner;
  readonly cmdline: Cmdline;
  readonly startedAt: Date;
  readonly startMs: number;
  readonly kernelUptimeAtStart: number | undefined;
  /** when the kernel made the controller's process: bun's own start is the time from here to kernelUptimeAtStart */
  readonly kernelUptimeAtProcessStart: number | undefined;
  readonly stages: readonly StageTiming[];
  /** the report's decisions, added to by every part of the boot */
  readonly decisions: string[];
}

async function kernelUptime(system: System): Promise<number | undefined> {
  try {
    return Number.parseFloat((await system.readText("/proc/uptime")).split(" ")[0] ?? "");
  } catch {
    return undefined;
  }
}

/** USER_HZ: the unit of /proc/PID/stat's times, 100 on every Linux architecture the controller runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** Field 22 of /proc/self/stat, starttime, in seconds: after the command name, which may hold spaces and parentheses. */
export function processStartUptime(stat: string): number | undefined {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state)
  const ticks = Number.parseInt(fields[22 - 3] ?? "", 10);
  return Number.isFinite(ticks) ? ticks / CLOCK_TICKS_PER_SECOND : undefined;
}

async function processStart(system: System): Promise<number | undefined> {
  try {
    return processStartUptime(await system.readText(PROC_SELF_STAT));
  } catch {
    return undefined;
  }
}

/** Stage "cmdline": the kernel command line, and on the console what it asks for. */
function readCmdline(system: System, stage: StageRunner): Promise<Cmdline> {
  return stage("cmdline", parseCmdline(""), async (stageLog) => {
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
}

/** Starts the clock and runs stage "cmdline"; its rd.controller.debug holds for every stage after it. */
export async function startBoot(system: System, baseLog: Logger): Promise<BootContext> {
  const startedAt = system.wallClock();
  const startMs = system.monotonicMs();
  const kernelUptimeAtStart = await kernelUptime(system);
  const kernelUptimeAtProcessStart = await processStart(system);
  const stages: StageTiming[] = [];
  const cmdline = await readCmdline(system, stageRunner(system, baseLog, startMs, stages));
  const log = baseLog.withDebug(cmdline.debug);
  return { system, log, stage: stageRunner(system, log, startMs, stages), cmdline, startedAt, startMs, kernelUptimeAtStart, kernelUptimeAtProcessStart, stages, decisions: [] };
}
