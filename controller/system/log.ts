// Console and kernel-log output. Every line starts with one prefix so a person
// can grep a serial log or `dmesg` for everything the controller said.

export const LOG_PREFIX = "controller";

export type LogLevel = "debug" | "info" | "warn" | "error";

/** syslog severities, as /dev/kmsg wants them in "<N>" */
const KMSG_SEVERITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };
/** syslog facility "daemon" (3), shifted as syslog does */
const KMSG_FACILITY = 3 << 3;

export interface LogSink {
  /**
   * One line for the kernel log, with its syslog priority, and for a person at
   * the console when `toConsole` (debug lines only go there with rd.controller.debug).
   */
  write(priority: number, line: string, toConsole: boolean): void;
}

/** A warning or error as the boot report keeps it. */
export interface Notice {
  readonly level: "warn" | "error";
  readonly scope: string;
  readonly message: string;
}

export class Logger {
  constructor(
    private readonly sink: LogSink,
    /** rd.controller.debug: debug lines go to the console too, not only to the kernel log */
    private readonly debugToConsole: boolean,
    readonly scope = "",
    /** every warning and error, shared by all scopes, for the boot report */
    readonly notices: Notice[] = [],
  ) {}

  /** A logger whose lines name a stage: "controller: mounts: ..." */
  forScope(scope: string): Logger {
    return new Logger(this.sink, this.debugToConsole, scope, this.notices);
  }

  withDebug(debugToConsole: boolean): Logger {
    return new Logger(this.sink, debugToConsole, this.scope, this.notices);
  }

  debug(message: string): void {
    this.write("debug", message);
  }
  info(message: string): void {
    this.write("info", message);
  }
  warn(message: string): void {
    this.write("warn", message);
  }
  error(message: string): void {
    this.write("error", message);
  }

  private write(level: LogLevel, message: string): void {
    if (level === "warn" || level === "error") this.notices.push({ level, scope: this.scope, message });
    const marker = level === "warn" ? "WARNING: " : level === "error" ? "ERROR: " : "";
    const scope = this.scope === "" ? "" : `${this.scope}: `;
    for (const part of message.split("\n")) {
      const line = `${LOG_PREFIX}: ${scope}${marker}${part}`;
      this.sink.write(KMSG_FACILITY | KMSG_SEVERITY[level], line, level !== "debug" || this.debugToConsole);
    }
  }
}
