// The image kernel convention (docs/issue-14/kernel-convention.md): where a
// system image keeps the kernel that boots it, its initrd and its modules.
// Pure, over a listing of the image's files (what `unsquashfs -lls` or a
// mounted image gives): `publish` locates them here, reads the kernel's release
// from its bzImage header (kernel-release.ts), then checks that kernel, file
// names and /lib/modules agree, before it signs any of them.
//
// Looked up in this order, each a regular file or a symlink to one inside the
// image (symlinks are followed in every part of a path, so Debian's merged
// /usr, where /lib is a link to usr/lib, works):
//   kernel: /boot/vmlinuz, /vmlinuz (Debian's links), else the one /boot/vmlinuz-KVER
//   initrd: /boot/initrd.img, /initrd.img, else /boot/initrd.img-KVER of the kernel's KVER, else the one /boot/initrd.img-*
//   modules: /lib/modules/RELEASE with modules.dep, RELEASE read from the kernel itself

import { isKernelRelease } from "./kernel-release.ts";

export type TreeEntry =
  | { readonly type: "file"; readonly size: number }
  | { readonly type: "symlink"; readonly target: string }
  | { readonly type: "directory" }
  | { readonly type: "other" };

/** The image's files by absolute, normalised path ("/boot/vmlinuz"); "/" itself need not be listed. */
export type ImageTree = ReadonlyMap<string, TreeEntry>;

const MAX_LINKS = 16;

/** entry undefined: the path, symlinks followed, does not exist */
export type Resolved = { readonly ok: true; readonly path: string; readonly entry: TreeEntry | undefined } | { readonly ok: false; readonly problem: string };

/**
 * Pure: follow symlinks in every part of `path`, inside the image: an absolute
 * target is relative to the image's root, ".." never leaves it (as in a
 * chroot). Undefined entry: the path does not exist.
 */
export function resolveInImage(tree: ImageTree, path: string): Resolved {
  let links = 0;
  let pending = path.split("/").filter((part) => part !== "");
  let done: string[] = [];
  while (pending.length > 0) {
    const [part, ...rest] = pending;
    pending = rest;
    if (part === undefined || part === ".") continue;
    if (part === "..") {
      done = done.slice(0, -1);
      continue;
    }
    const here = `/${[...done, part].join("/")}`;
    const entry = tree.get(here);
    if (entry?.type === "symlink") {
      links++;
      if (links > MAX_LINKS) return { ok: false, problem: `Cannot resolve ${path} in the image: more than ${MAX_LINKS} symlinks (a loop?)` };
      const target = entry.target.split("/").filter((piece) => piece !== "");
      pending = [...target, ...pending];
      if (entry.target.startsWith("/")) done = [];
      continue;
    }
    // missing here means missing: as ENOENT, whether it is the last part or a folder on the way
    if (entry === undefined) return { ok: true, path: `/${[...done, part, ...pending].join("/")}`, entry: undefined };
    if (pending.length > 0 && entry.type !== "directory") {
      return { ok: false, problem: `Cannot resolve ${path} in the image: ${here} is ${describeType(entry)}, expected a folder` };
    }
    done.push(part);
  }
  const resolved = `/${done.join("/")}`;
  return { ok: true, path: resolved, entry: resolved === "/" ? { type: "directory" } : tree.get(resolved) };
}

function describeType(entry: TreeEntry): string {
  return { file: "a regular file", symlink: "a symlink", directory: "a folder", other: "a device, FIFO or socket" }[entry.type];
}

function namesIn(tree: ImageTree, folder: string): string[] {
  const prefix = folder === "/" ? "/" : `${folder}/`;
  const names: string[] = [];
  for (const path of tree.keys()) {
    if (path.startsWith(prefix) && !path.slice(prefix.length).includes("/") && path.length > prefix.length) names.push(path.slice(prefix.length));
  }
  return names.sort();
}

export interface LocatedFile {
  /** the path it was found by ("/boot/vmlinuz") */
  readonly foundAs: string;
  /** the regular file it is, symlinks followed: what is hashed, signed and booted */
  readonly path: string;
  readonly size: number;
}

export type LocatedKernel =
  | { readonly kind: "none"; readonly why: string }
  | {
      readonly kind: "kernel";
      readonly kernel: LocatedFile;
      /** undefined: the image has no initrd, which `checkImageKernel` refuses */
      readonly initrd?: LocatedFile;
      /** the KVER of a /boot/vmlinuz-KVER file name, when the kernel has one */
      readonly nameRelease?: string;
      readonly notes: readonly string[];
    }
  | { readonly kind: "refused"; readonly problems: readonly string[] };

type Lookup = { readonly found?: LocatedFile; readonly problem?: string };

/** A regular file at `path`, symlinks followed; nothing when the path does not exist. */
function lookUp(tree: ImageTree, path: string): Lookup {
  const resolved = resolveInImage(tree, path);
  if (!resolved.ok) return { problem: resolved.problem };
  if (resolved.entry === undefined) {
    // a dangling link is a broken image, a missing name is simply not this convention's choice
    return tree.get(path)?.type === "symlink" ? { problem: `${path} points to ${resolved.path}, which does not exist` } : {};
  }
  if (resolved.entry.type !== "file") return { problem: `${path} is ${describeType(resolved.entry)}${resolved.path === path ? "" : ` (${resolved.path})`}, expected a regular file` };
  return { found: { foundAs: path, path: resolved.path, size: resolved.entry.size } };
}

function versionedFiles(tree: ImageTree, prefix: "vmlinuz-" | "initrd.img-"): { name: string; release: string }[] {
  const boot = resolveInImage(tree, "/boot");
  if (!boot.ok || boot.entry?.type !== "directory") return [];
  return namesIn(tree, boot.path)
    .filter((name) => name.startsWith(prefix) && !name.endsWith(".old") && !name.endsWith(".bak") && !name.endsWith(".dpkg-tmp"))
    .map((name) => ({ name, release: name.slice(prefix.length) }))
    .filter((file) => isKernelRelease(file.release));
}

/** Pure: the image's kernel and initrd by the convention; "none" is a valid image that boots on the running kernel. */
export function locateImageKernel(tree: ImageTree): LocatedKernel {
  const problems: string[] = [];
  const notes: string[] = [];
  let kernel: LocatedFile | undefined;
  for (const path of ["/boot/vmlinuz", "/vmlinuz"]) {
    const { found, problem } = lookUp(tree, path);
    if (problem !== undefined) problems.push(problem);
    if (found !== undefined) {
      kernel = found;
      break;
    }
  }
  if (problems.length > 0) return { kind: "refused", problems };
  const versioned = versionedFiles(tree, "vmlinuz-");
  if (kernel === undefined) {
    if (versioned.length === 0) return { kind: "none", why: "the image has no /boot/vmlinuz, /vmlinuz or /boot/vmlinuz-KVER" };
    if (versioned.length > 1) {
      return {
        kind: "refused",
        problems: [`the image has ${versioned.length} kernels (${versioned.map((file) => `/boot/${file.name}`).join(", ")}) and no /boot/vmlinuz or /vmlinuz link that says which boots`],
      };
    }
    const only = versioned[0];
    const { found, problem } = only === undefined ? {} : lookUp(tree, `/boot/${only.name}`);
    if (found === undefined) return { kind: "refused", problems: [problem ?? "the image's kernel vanished from the listing"] };
    kernel = found;
  }
  const kernelName = kernel.path.slice(kernel.path.lastIndexOf("/") + 1);
  const nameRelease = kernelName.startsWith("vmlinuz-") && isKernelRelease(kernelName.slice(8)) ? kernelName.slice(8) : undefined;
  if (versioned.length > 1) notes.push(`the image has ${versioned.length} kernels; ${kernel.foundAs} says ${kernel.path} boots`);

  let initrd: LocatedFile | undefined;
  const initrdCandidates = ["/boot/initrd.img", "/initrd.img", ...(nameRelease === undefined ? [] : [`/boot/initrd.img-${nameRelease}`])];
  for (const path of initrdCandidates) {
    const { found, problem } = lookUp(tree, path);
    if (problem !== undefined) return { kind: "refused", problems: [problem] };
    if (found !== undefined) {
      initrd = found;
      break;
    }
  }
  if (initrd === undefined && nameRelease === undefined) {
    const initrds = versionedFiles(tree, "initrd.img-");
    const only = initrds[0];
    if (initrds.length === 1 && only !== undefined) initrd = lookUp(tree, `/boot/${only.name}`).found;
    else if (initrds.length > 1) notes.push(`the image has ${initrds.length} initrds and no /boot/initrd.img link that says which goes with ${kernel.path}`);
  }
  return { kind: "kernel", kernel, ...(initrd === undefined ? {} : { initrd }), ...(nameRelease === undefined ? {} : { nameRelease }), notes };
}

/**
 * Pure: the problems that make `publish` refuse an image whose kernel was
 * located, given the release read from the kernel's own header: no initrd, a
 * file name that names another release, or no modules for that release.
 */
export function checkImageKernel(tree: ImageTree, located: Extract<LocatedKernel, { kind: "kernel" }>, release: string): string[] {
  const problems: string[] = [];
  if (located.initrd === undefined) {
    problems.push(
      `the image has a kernel (${located.kernel.path}) but no initrd (/boot/initrd.img, /initrd.img or /boot/initrd.img-${located.nameRelease ?? "KVER"}): ` +
        "expected one built with this project's dracut module, which holds the controller",
    );
  }
  if (located.nameRelease !== undefined && located.nameRelease !== release) {
    problems.push(`the kernel ${located.kernel.path} is named for release ${located.nameRelease}, but its header says ${release}`);
  }
  const initrdName = located.initrd?.path.slice(located.initrd.path.lastIndexOf("/") + 1);
  if (initrdName?.startsWith("initrd.img-") === true && isKernelRelease(initrdName.slice(11)) && initrdName.slice(11) !== release) {
    problems.push(`the initrd ${located.initrd?.path} is named for release ${initrdName.slice(11)}, but the kernel is ${release}`);
  }
  const modules = resolveInImage(tree, `/lib/modules/${release}`);
  if (!modules.ok || modules.entry?.type !== "directory") {
    const folder = resolveInImage(tree, "/lib/modules");
    const have = folder.ok && folder.entry?.type === "directory" ? namesIn(tree, folder.path) : [];
    problems.push(
      `the kernel is ${release} but the image has no /lib/modules/${release} ` +
        `(its modules are for ${have.length === 0 ? "no kernel at all" : have.join(", ")}): the kernel and the modules disagree`,
    );
  } else {
    const dep = resolveInImage(tree, `${modules.path}/modules.dep`);
    if (!dep.ok || dep.entry?.type !== "file") problems.push(`/lib/modules/${release} has no modules.dep: run depmod ${release} in the image before making it`);
  }
  return problems;
}

/** Pure: the module releases the image has, for the warning when it has none for the running kernel. */
export function moduleReleases(tree: ImageTree): string[] {
  const folder = resolveInImage(tree, "/lib/modules");
  if (!folder.ok || folder.entry?.type !== "directory") return [];
  return namesIn(tree, folder.path).filter((name) => {
    const resolved = resolveInImage(tree, `${folder.path}/${name}`);
    return resolved.ok && resolved.entry?.type === "directory";
  });
}
