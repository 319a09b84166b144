// Every stage is timed, and a stage that throws is logged and replaced by a
// safe result, so one broken piece never costs the machine its boot: the
// worst case is dracut's emergency shell with a report saying why.

import type { Logger } from "../system/log.ts";
import type { System } from "../system/system.ts";
import type { StageTiming } from "./report.ts";

/** Runs one stage with its own log scope and timing; on a throw, logs it and returns `fallback`. */
export type StageRunner = <T>(name: string, fallback: T, body: (log: Logger) => Promise<T> | T) => Promise<T>;

/** A StageRunner whose stages log in scopes of `log` and add their timings, since `startMs`, to `stages`. */
export function stageRunner(system: System, log: Logger, startMs: number, stages: StageTiming[]): StageRunner {
  return async <T>(name: string, fallback: T, body: (log: Logger) => Promise<T> | T): Promise<T> => {
    const began = system.monotonicMs();
    const stageLog = log.forScope(name);
    const timing = () => ({ stage: name, startMs: Math.round(began - startMs), durationMs: Math.round(system.monotonicMs() - began) });
    try {
      const result = await body(stageLog);
      stages.push({ ...timing(), outcome: "ok" });
      return result;
    } catch (error) {
      const message = (error as Error).message;
      stageLog.error(`stage ${name} failed: ${message}; going on without it`);
      stages.push({ ...timing(), outcome: "failed", error: message });
      return fallback;
    }
  };
}
