// What every boot, from disks or from RAM, starts with: the clock, the stage
// "cmdline", and the context every later stage is given.

import { type Cmdline, parseCmdline } from "../config/cmdline.ts";
import type { Logger } from "../system/log.ts";
import { PROC_CMDLINE } from "../system/paths.ts";
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
  const stages: StageTiming[] = [];
  const cmdline = await readCmdline(system, stageRunner(system, baseLog, startMs, stages));
  const log = baseLog.withDebug(cmdline.debug);
  return { system, log, stage: stageRunner(system, log, startMs, stages), cmdline, startedAt, startMs, kernelUptimeAtStart, stages, decisions: [] };
}
