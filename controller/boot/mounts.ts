// Stage "mounts": mount the first slot that works and its system image
// read-only at the new root, then the tmpfs mounts (/etc seeded from the
// image, /var/log, /tmp). Each step is computed as data first (plan*, in
// plans/mounts.ts), then carried out by one loop (executeSteps), so the plans
// can be tested without a machine.

import type { Config } from "../config/schema.ts";
import type { BootCandidate } from "../plans/boot-order.ts";
import { type MountStep, orderTmpfs, planRootMount, planTmpfs, slotMountPoint } from "../plans/mounts.ts";
import { type CutPoints, NO_CUTS } from "../system/cut-points.ts";
import type { Logger } from "../system/log.ts";
import { type MountRecord, mayCreateBelow, resolveInRoot, type TmpfsOutcome } from "../system/new-root-paths.ts";
import { NEWROOT } from "../system/paths.ts";
import type { MountRequest, System } from "../system/system.ts";
import type { BootextResult } from "./bootext.ts";
import type { KeptSlotMount } from "./kept-slot-mount.ts";
import { type MachineIdResult, provideMachineId } from "./machine-id.ts";

export interface BootedSlot extends BootCandidate {
  /** the image file, in initramfs terms */
  readonly image: string;
}

export interface MountsResult {
  /** undefined when no slot could be mounted: nothing bootable */
  readonly booted?: BootedSlot;
  readonly mounts: readonly MountRecord[];
  readonly failedSlots: readonly { readonly candidate: BootCandidate; readonly error: string }[];
  readonly tmpfs: readonly TmpfsOutcome[];
  /** what went into /etc/machine-id; undefined when nothing booted */
  readonly machineId?: MachineIdResult;
}

function recordOf(request: MountRequest, purpose: string): MountRecord {
  if (request.kind === "filesystem")
    return { target: request.target, source: request.source, fsType: request.fsType, options: request.options, purpose };
  return { target: request.target, source: request.source, fsType: "bind", options: request.private === true ? ["private"] : [], purpose };
}

/** Carries out steps in order; records each mount. Throws on the first failure. */
export async function executeSteps(system: System, log: Logger, steps: readonly MountStep[], mounts: MountRecord[]): Promise<void> {
  for (const step of steps) {
    switch (step.kind) {
      case "mkdir":
        await system.mkdir(step.path);
        break;
      case "require-file":
        if ((await system.lstat(step.path))?.type !== "file") throw new Error(step.missing);
        break;
      case "copy":
        await system.copyTree(step.from, step.to);
        break;
      case "decompress-xz":
        await system.decompressXz(step.from, step.to);
        break;
      case "create-file":
        await system.writeText(step.path, "");
        break;
      case "mount":
        await system.mount(step.request);
        mounts.push(recordOf(step.request, step.purpose));
        log.debug(`mounted ${step.purpose} at ${step.request.target}`);
        break;
      case "record-mount":
        mounts.push(recordOf(step.request, step.purpose));
        log.debug(`${step.purpose} is mounted at ${step.request.target} already`);
        break;
      case "unmount": {
        await system.unmount(step.target);
        const index = mounts.findLastIndex((m) => m.target === step.target);
        if (index >= 0) mounts.splice(index, 1);
        break;
      }
    }
  }
}

/** A tmpfs that cannot go where config.d asks, for a reason in the image rather than a failure. */
class TmpfsSkipped extends Error {}

/** The tmpfs mounts of config.d [tmpfs] over the image at the new root; a diskless boot (diskless.ts) mounts them too. */
export async function mountTmpfs(system: System, log: Logger, config: Config, mounts: MountRecord[]): Promise<TmpfsOutcome[]> {
  const outcomes: TmpfsOutcome[] = [];
  for (const [path, entry] of orderTmpfs(config)) {
    try {
      const resolved = await resolveInRoot(system, NEWROOT, path);
      let inRoot: string;
      let seed = entry.seed_from_image;
      if (resolved.status === "refused") throw new TmpfsSkipped(resolved.reason);
      if (resolved.status === "exists") {
        if (resolved.type !== "directory") throw new TmpfsSkipped(`${resolved.path} is not a folder in the image`);
        inRoot = resolved.path;
      } else {
        if (!mayCreateBelow(mounts, NEWROOT, resolved.existing))
          throw new TmpfsSkipped(`${path} does not exist in the read-only image and ${resolved.existing} is not on a tmpfs where it could be created`);
        inRoot = `${resolved.existing === "/" ? "" : resolved.existing}/${resolved.missing.join("/")}`;
        await system.mkdir(`${NEWROOT}${inRoot}`);
        seed = false; // nothing in the image to seed from
      }
      const target = `${NEWROOT}${inRoot}`;
      await executeSteps(system, log, planTmpfs(path, target, entry, seed), mounts);
      const detail = `tmpfs at ${inRoot} (size ${entry.size}, mode ${entry.mode}${seed ? ", seeded from the image" : ""})`;
      log.info(`mounted ${detail}`);
      outcomes.push({ path, status: "mounted", detail });
    } catch (error) {
      const reason = (error as Error).message;
      log.warn(`Cannot mount tmpfs at ${path}: ${reason}`);
      outcomes.push({ path, status: error instanceof TmpfsSkipped ? "skipped" : "failed", detail: reason });
    }
  }
  return outcomes;
}

export async function runMountsStage(
  system: System,
  log: Logger,
  config: Config,
  candidates: readonly BootCandidate[],
  bootext: Pick<BootextResult, "mountPoint" | "readOnly">,
  kept: KeptSlotMount,
  cuts: CutPoints = NO_CUTS,
): Promise<MountsResult> {
  const mounts: MountRecord[] = [];
  const failedSlots: { candidate: BootCandidate; error: string }[] = [];
  let booted: BootedSlot | undefined;
  for (const candidate of candidates) {
    try {
      await executeSteps(system, log, planRootMount(candidate, config, kept.takeOver(candidate.device)), mounts);
      booted = { ...candidate, image: `${slotMountPoint(candidate)}/${config.slot.image}` };
      break;
    } catch (error) {
      const message = (error as Error).message;
      log.error(`Cannot boot ${candidate.label} on ${candidate.device}: ${message}`);
      failedSlots.push({ candidate, error: message });
    }
  }
  await kept.releaseUnused();
  if (booted === undefined) return { mounts, failedSlots, tmpfs: [] };

  if (booted.role === "backup") {
    log.warn("*************************************************************");
    log.warn(`BOOTING THE BACKUP SYSTEM ${booted.label} on ${booted.device}`);
    log.warn("*************************************************************");
  }
  log.info(`mounted ${booted.image} read-only at ${NEWROOT}`);
  const tmpfs = await mountTmpfs(system, log, config, mounts);
  const machineId = await provideMachineId(system, log, { bootext, bootextLabel: config.labels.bootext, tmpfs }, cuts);
  return { booted, mounts, failedSlots, tmpfs, machineId };
}
