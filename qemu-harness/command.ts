// The one way the harness starts other programs. Whatever goes wrong, the error
// names the exact command (pasteable into a shell) and carries its stderr, so a
// failing test says what was run and why it failed without a rerun.

import type { BunFile, Subprocess } from "bun";
import { formatArgv } from "../controller/system/exec.ts";

export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    detail: string,
  ) {
    const trimmed = stderr.trimEnd();
    super(
      `command failed (${detail}): ${formatArgv(argv)}` +
        (trimmed === "" ? "\n(no stderr)" : `\nstderr:\n${trimmed}`),
    );
    this.name = "CommandError";
  }
}

export interface RunOptions {
  /** Text fed to the command's standard input; without it stdin is empty. */
  readonly stdin?: string;
  /** Write standard output to this file (binary, e.g. `unsquashfs -cat`) instead of returning it; stdout is then "". */
  readonly stdoutFile?: string;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Run a command to completion; throws CommandError unless it exits with 0. */
export async function runCommand(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const child = spawnOrThrow(argv, () =>
    Bun.spawn([...argv], {
      stdin: options.stdin === undefined ? "ignore" : new Blob([options.stdin]),
      stdout: options.stdoutFile === undefined ? "pipe" : Bun.file(options.stdoutFile),
      stderr: "pipe",
    }),
  );
  const [stdout, stderr, exitCode] = await Promise.all([
    child.stdout instanceof ReadableStream ? new Response(child.stdout).text() : "",
    new Response(child.stderr).text(),
    child.exited,
  ]);
  if (exitCode !== 0) {
    const detail = child.signalCode === null ? `exit code ${exitCode}` : `killed by ${String(child.signalCode)}`;
    console.error(`harness: command failed: ${formatArgv(argv)}`);
    throw new CommandError(argv, exitCode, stderr, detail);
  }
  return { stdout, stderr };
}

/** A long-running child (QEMU) whose console the caller reads and writes through pipes. */
/**
 * A child whose standard output goes to a regular file instead of a pipe: a
 * writer never finds a file full, so nothing it writes is dropped however slow
 * the reader is (QEMU's serial port drops bytes when its output would block).
 */
export function spawnWithOutputFile(argv: readonly string[], outputFile: string): Subprocess<"pipe", BunFile, "pipe"> {
  return spawnOrThrow(argv, () => Bun.spawn([...argv], { stdin: "pipe", stdout: Bun.file(outputFile), stderr: "pipe" }));
}

/** A child that shares this process's terminal (a person types into it); resolves with its exit code. */
export function runAttached(argv: readonly string[]): Promise<number> {
  return spawnOrThrow(argv, () => Bun.spawn([...argv], { stdin: "inherit", stdout: "inherit", stderr: "inherit" }))
    .exited;
}

/** Bun.spawn throws synchronously when the program cannot be started (not on PATH, not executable). */
function spawnOrThrow<T>(argv: readonly string[], spawn: () => T): T {
  try {
    return spawn();
  } catch (cause) {
    console.error(`harness: could not start: ${formatArgv(argv)}`);
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new CommandError(argv, null, "", `could not start ${JSON.stringify(argv[0] ?? "")}: ${reason}`);
  }
}
