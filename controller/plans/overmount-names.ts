// AnthillaOS names overmounts after their target: DIRS/DIR_etc_ssh is mounted
// on /etc/ssh, DIRS/FILE_etc_hosts on /etc/hosts. An underscore separates path
// components, so a literal underscore (or any byte) is written percent-encoded:
// DIR_usr_lib_python3_site%5Fpackages → /usr/lib/python3/site_packages. That is
// unambiguous, unlike doubling the underscore ("a___b" could be "a_/b" or "a/_b").

import type { FileType } from "../system/system.ts";

export type OvermountKind = "folder" | "squashfs" | "squashfs.xz" | "file";

export interface OvermountName {
  /** the entry's name in DIRS */
  readonly entry: string;
  readonly kind: OvermountKind;
  /** absolute path inside the new root */
  readonly target: string;
}

export interface RefusedEntry {
  readonly status: "refused";
  readonly entry: string;
  readonly reason: string;
}

export type ParsedEntry =
  | { readonly status: "overmount"; readonly overmount: OvermountName }
  /** not DIR_ or FILE_: a README or the like, left alone */
  | { readonly status: "ignored"; readonly entry: string; readonly reason: string }
  | RefusedEntry;

const IMAGE_SUFFIXES: readonly [string, OvermountKind][] = [
  [".squashfs.xz", "squashfs.xz"],
  [".squashfs", "squashfs"],
];

/** Decodes the part after DIR_/FILE_ into an absolute path, or says why it cannot. */
export function targetFromSpec(spec: string): { target: string } | { error: string } {
  if (spec === "") return { error: "it names no path after the prefix" };
  const components: string[] = [];
  for (const raw of spec.split("_")) {
    let component: string;
    try {
      component = decodeURIComponent(raw);
    } catch {
      return { error: `"${raw}" has a % that is not followed by two hex digits (write a literal % as %25)` };
    }
    if (component === "") return { error: "it has an empty path component (a leading, trailing or doubled _)" };
    if (component === "." || component === "..") return { error: `it has a "${component}" path component, which could leave the new root` };
    if (component.includes("/")) return { error: `"${raw}" decodes to a name containing /` };
    if (/[\0-\x1f]/.test(component)) return { error: `"${raw}" decodes to a name containing a control character` };
    components.push(component);
  }
  return { target: `/${components.join("/")}` };
}

/** Reads one DIRS entry: what it mounts, where, or why it is refused. */
export function parseOvermountEntry(entry: string, type: FileType): ParsedEntry {
  const isDir = entry.startsWith("DIR_");
  const isFile = entry.startsWith("FILE_");
  if (!isDir && !isFile) return { status: "ignored", entry, reason: "its name starts with neither DIR_ nor FILE_" };
  if (type === "symlink") return { status: "refused", entry, reason: "it is a symbolic link; an overmount source must be a real folder or file" };
  if (type === "other") return { status: "refused", entry, reason: "it is a device, socket or pipe, not a folder or file" };

  let kind: OvermountKind;
  let spec: string;
  if (isFile) {
    if (type !== "file") return { status: "refused", entry, reason: "a FILE_ entry must be a file, but this is a folder" };
    kind = "file";
    spec = entry.slice("FILE_".length);
  } else if (type === "directory") {
    kind = "folder";
    spec = entry.slice("DIR_".length);
  } else {
    const suffix = IMAGE_SUFFIXES.find(([ending]) => entry.endsWith(ending));
    if (suffix === undefined)
      return { status: "refused", entry, reason: "a DIR_ entry that is a file must end in .squashfs or .squashfs.xz" };
    kind = suffix[1];
    spec = entry.slice("DIR_".length, entry.length - suffix[0].length);
  }
  const decoded = targetFromSpec(spec);
  if ("error" in decoded) return { status: "refused", entry, reason: `its name cannot be a target path: ${decoded.error}` };
  if (decoded.target === "/") return { status: "refused", entry, reason: "it would cover the whole new root" };
  return { status: "overmount", overmount: { entry, kind, target: decoded.target } };
}

/**
 * Orders overmounts so a folder is mounted before anything inside it, and
 * refuses a second entry for a target that already has one.
 */
export function orderOvermounts(names: readonly OvermountName[]): { ordered: OvermountName[]; duplicates: RefusedEntry[] } {
  const depth = (path: string) => path.split("/").length;
  const sorted = [...names].sort((a, b) => depth(a.target) - depth(b.target) || (a.entry < b.entry ? -1 : a.entry > b.entry ? 1 : 0));
  const byTarget = new Map<string, OvermountName>();
  const duplicates: RefusedEntry[] = [];
  for (const name of sorted) {
    const first = byTarget.get(name.target);
    if (first === undefined) byTarget.set(name.target, name);
    else duplicates.push({ status: "refused", entry: name.entry, reason: `${first.entry} already overmounts ${name.target}` });
  }
  return { ordered: [...byTarget.values()], duplicates };
}
