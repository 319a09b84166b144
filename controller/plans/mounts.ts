// How a slot's system image and the tmpfs mounts of config.d [tmpfs] are put
// in place at the new root, as steps of data that boot/mounts.ts carries out
// (executeSteps), so the plans can be tested without a machine.

import type { Config, TmpfsEntry } from "../config/schema.ts";
import { INITRD_MOUNT_OPTION, NEWROOT, SLOT_MOUNT, STAGING_DIR } from "../system/paths.ts";
import type { MountRequest } from "../system/system.ts";
import type { BootCandidate } from "./boot-order.ts";

export type MountStep =
  | { readonly kind: "mkdir"; readonly path: string }
  /** the file must exist before the next step can use it */
  | { readonly kind: "require-file"; readonly path: string; readonly missing: string }
  | { readonly kind: "mount"; readonly request: MountRequest; readonly purpose: string }
  /** a mount an earlier stage made, recorded as this stage's */
  | { readonly kind: "record-mount"; readonly request: MountRequest; readonly purpose: string }
  | { readonly kind: "unmount"; readonly target: string }
  | { readonly kind: "copy"; readonly from: string; readonly to: string }
  | { readonly kind: "decompress-xz"; readonly from: string; readonly to: string }
  /** an empty file to bind-mount a file onto */
  | { readonly kind: "create-file"; readonly path: string };

export function slotMountPoint(candidate: Pick<BootCandidate, "label">): string {
  return `${SLOT_MOUNT}/${candidate.label}`;
}

/** The slot partition, read-only at its mount point; kept mounted into the booted system (INITRD_MOUNT_OPTION). */
export function slotMountRequest(slot: { readonly device: string; readonly label: string; readonly fsType: string }): MountRequest & { readonly kind: "filesystem" } {
  return { kind: "filesystem", source: slot.device, target: slotMountPoint(slot), fsType: slot.fsType, options: ["ro", INITRD_MOUNT_OPTION] };
}

/**
 * Pure: the steps that mount one slot's system image at the new root.
 * `mounted` is the slot's partition mount when an earlier stage made it
 * (boot/kept-slot-mount.ts): it is recorded, not made again.
 */
export function planRootMount(candidate: BootCandidate, config: Config, mounted?: MountRequest): MountStep[] {
  const slotDir = slotMountPoint(candidate);
  const image = `${slotDir}/${config.slot.image}`;
  const purpose = `${candidate.label} slot partition`;
  const slotMount: MountStep[] =
    mounted === undefined ? [{ kind: "mkdir", path: slotDir }, { kind: "mount", request: slotMountRequest(candidate), purpose }] : [{ kind: "record-mount", request: mounted, purpose }];
  return [
    ...slotMount,
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
