// The machine a command runs on: the System port over Linux, and the Logger it
// logs to (the kernel log, and the console). Commands it runs get the default
// timeouts.command_seconds until a config says otherwise (the boot reads one).

import { DEFAULT_CONFIG } from "../config/schema.ts";
import { LinuxLogSink, LinuxSystem } from "../system/linux-system.ts";
import { Logger } from "../system/log.ts";

export interface ThisMachine {
  readonly system: LinuxSystem;
  readonly log: Logger;
}

export function thisMachine(): ThisMachine {
  const log = new Logger(new LinuxLogSink(), false);
  const system = new LinuxSystem(log, DEFAULT_CONFIG.timeouts.command_seconds * 1000);
  return { system, log };
}
