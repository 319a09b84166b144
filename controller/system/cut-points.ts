// Named points in the steps that change a slot, a label or BOOTEXT, where the power-cut
// tests stop the controller dead (`rd.controller.cut=POINT` on the kernel
// command line) and then kill the VM, so every cut lands at a known instant
// instead of wherever a sleep happens to end. Without that parameter reaching
// a point does nothing.

import type { Logger } from "./log.ts";
import type { System } from "./system.ts";

/** Every point, in the order an update reaches them. */
export const CUT_POINTS = [
  // install
  "install-state-written",
  "download-half",
  "download-written",
  "download-synced",
  "image-verified",
  "old-record-removed",
  "image-renamed",
  "config-written",
  "signature-written",
  "manifest-written",
  "install-state-removed",
  // switch
  "switch-first-label",
  "switch-second-label",
  // the machine-id made on a machine's first boot and kept on BOOTEXT (machine-id.ts)
  "machine-id-written",
  // the boot attempt counted on the new system
  "attempt-remounted",
  "attempt-written",
] as const;

export type CutPoint = (typeof CUT_POINTS)[number];

export interface CutPoints {
  reach(point: CutPoint): Promise<void>;
}

export const NO_CUTS: CutPoints = { reach: async () => {} };

/** The marker the tests wait for on the console before they kill the VM. */
export function cutMarker(point: string): string {
  return `@@CUT ${point}`;
}

/** Stops for good at `point`: the test kills the machine there. An unknown name is a warning, and no point stops. */
export function cutPointsFor(system: System, log: Logger, point: string | undefined): CutPoints {
  if (point === undefined) return NO_CUTS;
  if (!(CUT_POINTS as readonly string[]).includes(point)) {
    log.warn(`rd.controller.cut=${point}: not a cut point; they are ${CUT_POINTS.join(", ")}`);
    return NO_CUTS;
  }
  return {
    async reach(reached) {
      if (reached !== point) return;
      log.warn(cutMarker(point));
      for (;;) await system.sleep(60_000);
    },
  };
}
