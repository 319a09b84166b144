// Paths inside the new root must be resolved as the booted system will see
// them, not as the initramfs does: an absolute symlink in the image points into
// the image, and a relative one that climbs above its root is a trick to reach
// the initramfs. Every mount target inside the new root goes through here.

import type { FileType, System } from "./system.ts";

export type RootPath =
  | { readonly status: "exists"; readonly path: string; readonly type: FileType }
  /** `existing` is the deepest folder that exists; `missing` the components below it */
  | { readonly status: "missing"; readonly existing: string; readonly missing: readonly string[] }
  | { readonly status: "refused"; readonly reason: string };

const MAX_LINKS = 40;

function components(path: string): string[] {
  return path.split("/").filter((part) => part !== "" && part !== ".");
}

function childOf(folder: string, name: string): string {
  return folder === "/" ? `/${name}` : `${folder}/${name}`;
}

/**
 * Resolves `path` (absolute, in the booted system's terms) inside `root`,
 * following symlinks as the booted system would. Returned paths are in the
 * booted system's terms too; prefix them with root to touch them from here.
 */
export async function resolveInRoot(files: Pick<System, "lstat" | "readlink">, root: string, path: string): Promise<RootPath> {
  let pending = components(path);
  let current = "/";
  let type: FileType = "directory";
  for (let links = 0; pending.length > 0; ) {
    const part = pending.shift() as string;
    if (part === "..") {
      if (current === "/") return { status: "refused", reason: `${path} leads above the new root` };
      current = current.slice(0, current.lastIndexOf("/")) || "/";
      continue;
    }
    const candidate = childOf(current, part);
    const info = await files.lstat(`${root}${candidate}`);
    if (info === undefined) {
      const missing = [part, ...pending];
      if (missing.includes("..")) return { status: "refused", reason: `${path} goes through ${candidate}, which does not exist, and then back up with ".."` };
      return { status: "missing", existing: current, missing };
    }
    if (info.type === "symlink") {
      if (++links > MAX_LINKS) return { status: "refused", reason: `${path} has more than ${MAX_LINKS} symbolic links in a row` };
      const target = await files.readlink(`${root}${candidate}`);
      if (target.startsWith("/")) current = "/";
      pending = [...components(target), ...pending];
      continue;
    }
    if (pending.length > 0 && info.type !== "directory")
      return { status: "refused", reason: `${candidate} is a ${info.type === "file" ? "file" : "special file"}, so ${path} cannot be below it` };
    current = candidate;
    type = info.type;
  }
  return { status: "exists", path: current, type };
}

/** A mount as the controller made it; targets are absolute paths as /proc/mounts shows them in the initramfs. */
export interface MountRecord {
  readonly target: string;
  readonly source: string;
  readonly fsType: string;
  readonly options: readonly string[];
  /** why it was mounted, in words */
  readonly purpose: string;
}

/** The mount that `path` (initramfs terms) lives on, among the controller's own mounts. */
export function coveringMount(mounts: readonly MountRecord[], path: string): MountRecord | undefined {
  let best: MountRecord | undefined;
  for (const mount of mounts) {
    const covers = path === mount.target || path.startsWith(`${mount.target}/`);
    if (covers && (best === undefined || mount.target.length >= best.target.length)) best = mount;
  }
  return best;
}

/**
 * A missing mount target may be created only where creating it is lost at
 * reboot: inside one of the controller's tmpfs mounts. Anywhere else it would
 * mean writing into the read-only image or into a persistent overmount source.
 */
export function mayCreateBelow(mounts: readonly MountRecord[], root: string, existing: string): boolean {
  return coveringMount(mounts, `${root}${existing === "/" ? "" : existing}`)?.fsType === "tmpfs";
}

/** How one entry of config's tmpfs table went: mounts.ts mounts them, machine-id.ts looks for the one on /etc. */
export interface TmpfsOutcome {
  readonly path: string;
  readonly status: "mounted" | "skipped" | "failed";
  readonly detail: string;
}
