// Whether an update may be written into the spare slot on this boot. The last
// healthy system is never overwritten: only a system that said it came up
// healthy makes room.

import type { BlockDevice } from "../system/system.ts";

/** The system that boots, as far as it vouches for the spare slot. */
export interface RunningSystem {
  readonly device: BlockDevice;
  /** its health conditions failed on this boot */
  readonly failedHealthCheck: boolean;
  /** `controller mark-good` recorded that it came up healthy */
  readonly markedGood: boolean;
}

/** Pure: why the install must wait, or undefined when the spare may be overwritten. `running` undefined: no slot boots. */
export function whyInstallWaits(running: RunningSystem | undefined): string | undefined {
  if (running === undefined) return "no slot boots to vouch for the spare";
  const name = `the running system (${running.device.label} on ${running.device.device})`;
  if (running.failedHealthCheck) return `${name} failed its health check`;
  if (!running.markedGood) return `${name} has not been marked good yet`;
  return undefined;
}
