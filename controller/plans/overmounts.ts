// How one overmount of AnthillaOS's DIRS (plans/overmount-names.ts) is put
// over its target in the new root, as steps boot/overmounts.ts carries out.

import type { RootPath } from "../system/new-root-paths.ts";
import { NEWROOT, OVERMOUNT_IMAGE_DIR } from "../system/paths.ts";
import type { MountStep } from "./mounts.ts";
import type { OvermountName } from "./overmount-names.ts";

export type OvermountPlan = { readonly steps: MountStep[]; readonly target: string; readonly created: boolean } | { readonly skip: string } | { readonly refuse: string };

/**
 * Pure: how to put one overmount in place, given where its target resolves in
 * the new root and whether a missing target may be created there.
 */
export function planOvermount(name: OvermountName, source: string, resolved: RootPath, mayCreate: boolean): OvermountPlan {
  if (resolved.status === "refused") return { refuse: resolved.reason };
  const wantsFile = name.kind === "file";
  let target: string;
  const steps: MountStep[] = [];
  if (resolved.status === "exists") {
    if (wantsFile && resolved.type !== "file") return { skip: `${resolved.path} is not a file in the new root, so a FILE_ entry cannot cover it` };
    if (!wantsFile && resolved.type !== "directory") return { skip: `${resolved.path} is not a folder in the new root, so a DIR_ entry cannot cover it` };
    target = resolved.path;
  } else {
    if (!mayCreate)
      return { skip: `${name.target} does not exist in the read-only image and ${resolved.existing} is not on a tmpfs where it could be created` };
    target = `${resolved.existing === "/" ? "" : resolved.existing}/${resolved.missing.join("/")}`;
    const parent = target.slice(0, target.lastIndexOf("/"));
    if (wantsFile) {
      if (parent !== "") steps.push({ kind: "mkdir", path: `${NEWROOT}${parent}` });
      steps.push({ kind: "create-file", path: `${NEWROOT}${target}` });
    } else {
      steps.push({ kind: "mkdir", path: `${NEWROOT}${target}` });
    }
  }
  const at = `${NEWROOT}${target}`;
  switch (name.kind) {
    case "folder":
    case "file":
      steps.push({ kind: "mount", request: { kind: "bind", source, target: at }, purpose: `overmount ${name.entry}` });
      break;
    case "squashfs":
      steps.push({ kind: "mount", request: { kind: "filesystem", source, target: at, fsType: "squashfs", options: ["ro", "loop"] }, purpose: `overmount ${name.entry}` });
      break;
    case "squashfs.xz": {
      // the kernel cannot mount an xz-compressed image: unpack it into RAM first
      const unpacked = `${OVERMOUNT_IMAGE_DIR}/${name.entry.slice(0, -".xz".length)}`;
      steps.unshift({ kind: "mkdir", path: OVERMOUNT_IMAGE_DIR }, { kind: "decompress-xz", from: source, to: unpacked });
      steps.push({
        kind: "mount",
        request: { kind: "filesystem", source: unpacked, target: at, fsType: "squashfs", options: ["ro", "loop"] },
        purpose: `overmount ${name.entry}`,
      });
      break;
    }
  }
  return { steps, target, created: resolved.status === "missing" };
}
