// Where the commands' output goes, and how a line of it is printed.

/** Where a command's output goes: the process's stdout and stderr, or a test's memory. */
export interface CommandOutput {
  out(text: string): void;
  err(text: string): void;
}

export const PROCESS_OUTPUT: CommandOutput = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** `text` on stdout as one or more whole lines: a newline is added unless it ends in one. */
export function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}
