// Stage "command": command_url=URL fetches a script and runs it with sh before
// the handoff, after the system is mounted at /sysroot (a lab machine's
// burn-in, an inventory upload). It runs as root, so it must be signed by a
// trusted key (remote-content.ts) unless remote.allow_unsigned. Its output
// goes to the console line by line as it comes, and (capped) into the report
// with its exit status; it may run remote.command_timeout_seconds at most. A
// script that fails, hangs or cannot be fetched is logged, and the boot goes on.

import type { Config } from "../config/schema.ts";
import { capOutput, newLines } from "../plans/command-output.ts";
import { CommandError } from "../system/exec.ts";
import type { Logger } from "../system/log.ts";
import { COMMAND_DIR, COMMAND_OUTPUT, COMMAND_SCRIPT, TOOLS } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import { COMMAND_SCRIPT_MAX_BYTES } from "../update/limits.ts";
import { fetchSignedContent, type TrustPolicy } from "./remote-content.ts";

/** How much of the output goes into the report and onto the console; the whole of it stays in COMMAND_OUTPUT. */
export const COMMAND_OUTPUT_REPORT_BYTES = 16 * 1024;
/** How often the output file is read for new lines while the script runs. */
const OUTPUT_POLL_MS = 500;

export interface CommandResult {
  readonly url: string;
  /** "unreachable" and "refused": it did not run; "succeeded", "failed" (non-zero exit), "timed-out" (killed at the limit) */
  readonly status: "unreachable" | "refused" | "succeeded" | "failed" | "timed-out";
  /** the trusted key that signed it; absent when it did not run or ran unsigned (remote.allow_unsigned) */
  readonly signedBy?: string;
  /** null when it was killed */
  readonly exitStatus?: number | null;
  /** the first COMMAND_OUTPUT_REPORT_BYTES of what it printed (stdout and stderr together) */
  readonly output?: string;
  readonly outputTruncated?: boolean;
  readonly durationMs?: number;
  readonly detail: string;
}

export async function runCommandStage(system: System, log: Logger, url: string, config: Config, policy: TrustPolicy): Promise<CommandResult> {
  const fetched = await fetchSignedContent(system, log, config, url, "command", COMMAND_SCRIPT_MAX_BYTES, policy);
  if (!fetched.ok) {
    log.error(`${fetched.problem}; the boot goes on without running it`);
    return { url, status: fetched.kind, detail: fetched.problem };
  }
  const signed = fetched.signedBy === undefined ? {} : { signedBy: fetched.signedBy };
  await system.mkdir(COMMAND_DIR);
  await system.writeBytes(COMMAND_SCRIPT, fetched.bytes);
  await system.remove(COMMAND_OUTPUT);
  await system.writeText(COMMAND_OUTPUT, "");

  const timeoutMs = config.remote.command_timeout_seconds * 1000;
  log.info(`running ${url} (${fetched.bytes.length} bytes${fetched.signedBy === undefined ? ", unsigned" : ", signed by a trusted key"}) with sh, for at most ${config.remote.command_timeout_seconds} s`);
  const start = system.monotonicMs();
  // stderr joins stdout in one file, so the console shows them in the order the script printed them
  const run = system
    .exec([TOOLS.shell, "-c", 'exec sh "$0" 2>&1', COMMAND_SCRIPT], { stdoutFile: COMMAND_OUTPUT, timeoutMs })
    .then(
      () => ({ error: undefined }),
      (error: unknown) => ({ error }),
    );

  let offset = 0;
  let shown = 0;
  let cutNoticed = false;
  const showNewLines = async (final: boolean) => {
    let text: string;
    try {
      text = await system.readText(COMMAND_OUTPUT);
    } catch {
      return;
    }
    // at the end a last line without a line break counts too
    const { lines, next } = newLines(final ? `${text}\n` : text, offset);
    offset = next;
    for (const line of lines) {
      shown += line.length + 1;
      if (shown <= COMMAND_OUTPUT_REPORT_BYTES) log.info(`| ${line}`);
      else if (!cutNoticed) {
        cutNoticed = true;
        log.info(`| ... (more output than the ${COMMAND_OUTPUT_REPORT_BYTES} bytes shown here; all of it is in ${COMMAND_OUTPUT})`);
      }
    }
  };
  let outcome: { error: unknown } | undefined;
  while (outcome === undefined) {
    outcome = await Promise.race([run, system.sleep(OUTPUT_POLL_MS).then(() => undefined)]);
    await showNewLines(outcome !== undefined);
  }

  const durationMs = Math.round(system.monotonicMs() - start);
  let fullOutput = "";
  try {
    fullOutput = await system.readText(COMMAND_OUTPUT);
  } catch {
    // the script may have removed its own output file; the console has what it printed
  }
  const { output, truncated } = capOutput(fullOutput, COMMAND_OUTPUT_REPORT_BYTES);
  const ran = { ...signed, output, outputTruncated: truncated, durationMs };
  const error = outcome.error;
  if (error === undefined) {
    const detail = `${url} exited with status 0 after ${(durationMs / 1000).toFixed(1)} s`;
    log.info(detail);
    return { url, status: "succeeded", exitStatus: 0, ...ran, detail };
  }
  const exitStatus = error instanceof CommandError ? error.exitCode : null;
  if (exitStatus === null && durationMs >= timeoutMs) {
    const detail = `${url} ran longer than remote.command_timeout_seconds (${config.remote.command_timeout_seconds} s) and was killed; the boot goes on`;
    log.error(detail);
    return { url, status: "timed-out", exitStatus: null, ...ran, detail };
  }
  const detail =
    exitStatus === null
      ? `${url} could not run or was killed: ${(error as Error).message}; the boot goes on`
      : `${url} exited with status ${exitStatus} after ${(durationMs / 1000).toFixed(1)} s; the boot goes on`;
  log.error(detail);
  return { url, status: "failed", exitStatus, ...ran, detail };
}
