// Stage "mounts": mount the first slot that works and its system image
// read-only at the new root, then the tmpfs mounts (/etc seeded from the
// image, /var/log, /tmp). Each step is computed as data first (plan*), then
// carried out by one loop, so the plans can be tested without a machine.

import type { BootextResult } from "./bootext.ts";
import type { Config, TmpfsEntry } from "../config/schema.ts";
import { type CutPoints, NO_CUTS } from "../system/cut-points.ts";
import type { BootCandidate } from "./health.ts";
import type { Logger } from "../system/log.ts";
import { type MachineIdResult, provideMachineId } from "./machine-id.ts";
import { type MountRecord, mayCreateBelow, resolveInRoot, type TmpfsOutcome } from "../system/new-root-paths.ts";
import { INITRD_MOUNT_OPTION, NEWROOT, SLOT_MOUNT, STAGING_DIR } from "../system/paths.ts";
import type { MountRequest, System } from "../system/system.ts";

export type MountStep =
  | { readonly kind: "mkdir"; readonly path: string }
  /** the file must exist before the next step can use it */
  | { readonly kind: "require-file"; readonly path: string; readonly missing: string }
  | { readonly kind: "mount"; readonly request: MountRequest; readonly purpose: string }
  | { readonly kind: "unmount"; readonly target: string }
  | { readonly kind: "copy"; readonly from: string; readonly to: string }
  | { readonly kind: "decompress-xz"; readonly from: string; readonly to: string }
  /** an empty file to bind-mount a file onto */
  | { readonly kind: "create-file"; readonly path: string };

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


export function slotMountPoint(candidate: BootCandidate): string {
  return `${SLOT_MOUNT}/${candidate.label}`;
}

/** Pure: the steps that mount one slot's system image at the new root. */
export function planRootMount(candidate: BootCandidate, config: Config): MountStep[] {
  const slotDir = slotMountPoint(candidate);
  const image = `${slotDir}/${config.slot.image}`;
  return [
    { kind: "mkdir", path: slotDir },
    {
      kind: "mount",
      request: { kind: "filesystem", source: candidate.device, target: slotDir, fsType: candidate.fsType, options: ["ro", INITRD_MOUNT_OPTION] },
      purpose: `${candidate.label} slot partition`,
    },
    { kind: "require-file", path: image, missing: `${candidate.label} on ${candidate.device} has no system image ${config.slot.image} (slot.image)` },
    {
      kind: "mount",
      request: { kind: "filesystem", source: image, target: NEWROOT, fsType: "squashfs", options: ["ro", "loop"] },
      purpose: `system image from ${candidate.label}`,
    },
  ];
}

export function tmpfsOptions(entry: TmpfsEntry): string[] {
  return ["nosuid", "nodev", `mode=${entry.mode}`, `size=${entry.size}`];
}

/** Pure: enabled tmpfs entries, parents before children. */
export function orderTmpfs(config: Config): [string, TmpfsEntry][] {
  return Object.entries(config.tmpfs)
    .filter(([, entry]) => entry.enabled)
    .sort(([a], [b]) => a.split("/").length - b.split("/").length || (a < b ? -1 : 1));
}

/**
 * Pure: the steps for one tmpfs at `target` (initramfs terms). To seed it, the
 * image's folder is first bind-mounted aside, so its files stay readable once
 * the tmpfs covers them; the bind is private, or the tmpfs would propagate onto
 * it too in the systemd initrd, where every mount is shared.
 */
export function planTmpfs(path: string, target: string, entry: TmpfsEntry, seed: boolean): MountStep[] {
  const tmpfs: MountStep = {
    kind: "mount",
    request: { kind: "filesystem", source: "tmpfs", target, fsType: "tmpfs", options: tmpfsOptions(entry) },
    purpose: seed ? `tmpfs for ${path}, seeded from the image` : `tmpfs for ${path}`,
  };
  if (!seed) return [tmpfs];
  const aside = `${STAGING_DIR}${path}`;
  return [
    { kind: "mkdir", path: aside },
    { kind: "mount", request: { kind: "bind", source: target, target: aside, private: true }, purpose: `the image's ${path}, to seed its tmpfs` },
    tmpfs,
    { kind: "copy", from: aside, to: target },
    { kind: "unmount", target: aside },
  ];
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
  cuts: CutPoints = NO_CUTS,
): Promise<MountsResult> {
  const mounts: MountRecord[] = [];
  const failedSlots: { candidate: BootCandidate; error: string }[] = [];
  let booted: BootedSlot | undefined;
  for (const candidate of candidates) {
    try {
      await executeSteps(system, log, planRootMount(candidate, config), mounts);
      booted = { ...candidate, image: `${slotMountPoint(candidate)}/${config.slot.image}` };
      break;
    } catch (error) {
      const message = (error as Error).message;
      log.error(`Cannot boot ${candidate.label} on ${candidate.device}: ${message}`);
      failedSlots.push({ candidate, error: message });
    }
  }
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
