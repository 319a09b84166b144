// Named points in the steps that change a slot, a label or BOOTEXT, where the power-cut
// tests stop the controller dead (`rd.controller.cut=POINT` on the kernel
// command line) and then kill the VM, so every cut lands at a known instant
// instead of wherever a sleep happens to end. Without that parameter reaching
// a point does nothing.

import type { Logger } from "./log.ts";
import type { System } from "./system.ts";

/** The points of an update, in the order it reaches them. */
const UPDATE_CUT_POINTS = [
  // install
  "install-state-written",
  "download-half",
  "download-written",
  "download-synced",
  "image-verified",
  "old-record-removed",
  "image-renamed",
  "config-written",
  // a delta install's index kept with the record (an install whose manifest names one)
  "index-written",
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

/**
 * The points of a kernel switch (issue 14): BOOTEXT's kernel entries and
 * grubenv (boot/kernel-entries.ts) and the attempt counted before the switch.
 * A list of their own: the busybox update of CUT_POINTS' power-cut table never
 * switches kernel, so it could never reach them. One name per state a cut can
 * leave that GRUB or the next boot tells apart; the steps between two named
 * ones leave states that only differ in a leftover the next boot removes the
 * same way (test/unit/boot/kernel-entries.test.ts cuts after every step).
 */
export const KERNEL_SWITCH_CUT_POINTS = [
  // the instant before the reset or the kexec: the boot attempt counted (stage attempt), BOOTEXT's entries and grubenv written
  "kernel-switch-attempt-written",
  // a pair's two files written and fsynced under its temporary name: GRUB boots the old pair; the next boot removes the leftover and writes it again
  "kernel-entry-pair-written",
  // the pair renamed into Kernel/pairs/: GRUB boots the old pair; the next boot finds it whole and only links it
  "kernel-entry-pair-renamed",
  // the recovery link switched (an update: before active; a rollback: after it)
  "kernel-entry-recovery-switched",
  // the active link switched, in the journal only: GRUB, which does not replay it, may still boot the old pair
  "kernel-entry-active-switched",
  // the links' journal flushed to their home blocks: GRUB boots the new pair; old pairs still on BOOTEXT
  "kernel-entry-links-flushed",
  // reboot mode: grubenv says try active once, then recovery; flushed
  "grubenv-written",
] as const;

export type KernelSwitchCutPoint = (typeof KERNEL_SWITCH_CUT_POINTS)[number];
export type CutPoint = (typeof UPDATE_CUT_POINTS)[number] | KernelSwitchCutPoint;

/** Every point of an update, in the order it reaches them: the power-cut table's rows. Typed as every CutPoint, so a row's point can be looked up in it. */
export const CUT_POINTS: readonly CutPoint[] = UPDATE_CUT_POINTS;

const ALL_CUT_POINTS: readonly string[] = [...UPDATE_CUT_POINTS, ...KERNEL_SWITCH_CUT_POINTS];

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
  if (!ALL_CUT_POINTS.includes(point)) {
    log.warn(`rd.controller.cut=${point}: not a cut point; they are ${ALL_CUT_POINTS.join(", ")}`);
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
