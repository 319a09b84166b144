// The one function through which the controller starts a subprocess: it logs
// the argv, enforces a time limit and puts the command's stderr into the error,
// so a failed mount says why on the console instead of "exit status 32".

import type { Logger } from "./log.ts";
import type { ExecOptions, ExecResult } from "./system.ts";

/** Lines that say what went wrong: a tool such as kexec prints its reason, then pages of debug output. */
const TELLING = /\b(error|failed|fatal|cannot|can't|denied|not permitted|invalid|no such)\b/i;

/** The last five lines of stderr that say what went wrong, or its last five lines when none does. */
function telling(lines: readonly string[]): readonly string[] {
  const reasons = lines.filter((line) => TELLING.test(line));
  return (reasons.length > 0 ? reasons : lines).slice(-5);
}

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    reason: string,
  ) {
    const detail = stderr.trim() === "" ? "" : `: ${telling(stderr.trim().split("\n")).join(" | ")}`;
    super(`Cannot run \`${formatArgv(argv)}\`: ${reason}${detail}`);
    this.name = "CommandError";
  }
}

/** One word quoted so that a POSIX shell reads it back unchanged. */
export function shellQuote(word: string): string {
  // "=" may not lead a word: zsh expands "=name" to a program's path.
  if (/^[A-Za-z0-9_\-+.,:/@%][A-Za-z0-9_\-+=.,:/@%]*$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** argv as one line a person can paste into a shell. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map(shellQuote).join(" ");
}

export interface RunOptions extends ExecOptions {
  /**
   * Hand the command's standard output to this function piece by piece as it
   * comes, instead of capturing it (stdout is then ""): for output too large
   * to hold, such as a file `unsquashfs -cat` reads out of an image.
   */
  readonly onStdout?: (chunk: Uint8Array) => void;
}

export async function runCommand(
  log: Logger,
  defaultTimeoutMs: number,
  argv: readonly string[],
  options: RunOptions = {},
): Promise<ExecResult> {
  log.debug(`exec: ${formatArgv(argv)}`);
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  let child;
  try {
    child = Bun.spawn([...argv], {
      stdin: "ignore",
      stdout: options.stdoutFile === undefined ? "pipe" : Bun.file(options.stdoutFile),
      stderr: "pipe",
      timeout: timeoutMs,
      killSignal: "SIGKILL",
    });
  } catch (error) {
    throw new CommandError(argv, null, "", `it could not be started (${(error as Error).message})`);
  }
  const { onStdout } = options;
  const [stdout, stderr, exitCode] = await Promise.all([
    !(child.stdout instanceof ReadableStream) ? Promise.resolve("")
    : onStdout === undefined ? new Response(child.stdout).text()
    : streamOut(child.stdout, onStdout),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  if (child.signalCode !== null) {
    const reason =
      child.signalCode === "SIGKILL" ? `it took longer than ${timeoutMs / 1000} s and was killed` : `killed by ${child.signalCode}`;
    throw new CommandError(argv, null, stderr, reason);
  }
  if (exitCode !== 0) throw new CommandError(argv, exitCode, stderr, `exit status ${exitCode}`);
  return { stdout };
}

async function streamOut(stream: ReadableStream<Uint8Array>, onStdout: (chunk: Uint8Array) => void): Promise<string> {
  for await (const chunk of stream) onStdout(chunk);
  return "";
}
