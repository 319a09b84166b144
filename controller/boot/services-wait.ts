// Stage "wait": with `ssh` running, hold the handoff so the person who logs in
// can look at the mounted system (/sysroot), until they run `controller
// continue` or ssh.wait_seconds pass. Every wait has a deadline: nobody
// logging in costs the machine wait_seconds, never its boot.

import type { Config } from "../config/schema.ts";
import type { Logger } from "../system/log.ts";
import { CONTINUE_FILE } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import type { ServicesReport } from "./services.ts";

const POLL_MS = 1000;
/** A reminder on the console this often, so whoever looks at it knows why the boot stands still. */
const REMINDER_MS = 60_000;

export interface WaitResult {
  /** "continue": someone ran `controller continue`; "deadline": ssh.wait_seconds passed */
  readonly endedBy: "continue" | "deadline";
  readonly waitedMs: number;
  readonly detail: string;
}

/** undefined when there is nothing to wait for: no SSH server runs. */
export async function runWaitStage(system: System, log: Logger, config: Config, services: ServicesReport): Promise<WaitResult | undefined> {
  if (services.ssh?.status !== "running") {
    log.info("nothing to wait for: no SSH server runs");
    return undefined;
  }
  // a file left from before (a second `controller boot` in the same initramfs) must not end this wait
  await system.remove(CONTINUE_FILE);
  const start = system.monotonicMs();
  const deadline = start + config.ssh.wait_seconds * 1000;
  log.info(
    `waiting up to ${config.ssh.wait_seconds} s (ssh.wait_seconds) before the handoff: log in with ${services.ssh.login ?? `ssh on port ${services.ssh.port}`}; ` +
      "the system is mounted at /sysroot; run `controller continue` there to go on",
  );
  let nextReminder = start + REMINDER_MS;
  for (;;) {
    if ((await system.lstat(CONTINUE_FILE)) !== undefined) {
      const waitedMs = Math.round(system.monotonicMs() - start);
      const detail = `\`controller continue\` after ${Math.round(waitedMs / 1000)} s`;
      log.info(`${detail}: going on`);
      return { endedBy: "continue", waitedMs, detail };
    }
    const now = system.monotonicMs();
    if (now >= deadline) break;
    if (now >= nextReminder) {
      log.info(`still waiting for \`controller continue\`: ${Math.ceil((deadline - now) / 1000)} s left`);
      nextReminder += REMINDER_MS;
    }
    await system.sleep(Math.min(POLL_MS, deadline - now));
  }
  const waitedMs = Math.round(system.monotonicMs() - start);
  const detail = `no \`controller continue\` within ${config.ssh.wait_seconds} s (ssh.wait_seconds)`;
  log.warn(`${detail}: going on`);
  return { endedBy: "deadline", waitedMs, detail };
}
