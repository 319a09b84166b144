// A Logger whose lines stay in memory, for tests that check what a stage said.

import { type LogSink, Logger } from "../controller/system/log.ts";

export class MemorySink implements LogSink {
  readonly consoleLines: string[] = [];
  readonly kmsgLines: { priority: number; line: string }[] = [];
  write(priority: number, line: string, toConsole: boolean): void {
    this.kmsgLines.push({ priority, line });
    if (toConsole) this.consoleLines.push(line);
  }
  /** All console output as one text, for toContain checks. */
  text(): string {
    return this.consoleLines.join("\n");
  }
}

export function memoryLogger(debugToConsole = false): { log: Logger; sink: MemorySink } {
  const sink = new MemorySink();
  return { log: new Logger(sink, debugToConsole), sink };
}
