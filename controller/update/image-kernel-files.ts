// The I/O half of the image kernel convention (docs/issue-14/kernel-convention.md):
// what `publish` signs of the kernel an image carries, and what `verify` checks
// again. It looks inside the squashfs without mounting it (no root needed):
// `unsquashfs -lls` lists it, `unsquashfs -cat` streams one file out of it to be
// hashed. What to make of them is the pure modules' business: squashfs-listing.ts,
// image-kernel.ts and kernel-release.ts.

import { createHash } from "node:crypto";
import { CommandError, runCommand } from "../system/exec.ts";
import { Logger } from "../system/log.ts";
import { TOOLS } from "../system/paths.ts";
import { checkImageKernel, type LocatedFile, locateImageKernel, moduleReleases } from "./image-kernel.ts";
import { BZIMAGE_HEADER_BYTES, readBzImage } from "./kernel-release.ts";
import { isImagePath, type SignedKernel } from "./manifest.ts";
import { parseSquashfsListing } from "./squashfs-listing.ts";

/** Listing a whole Debian image takes well under a second; this only stops a hung tool. */
const LIST_TIMEOUT_MS = 60_000;
/** Streaming out and hashing one file: an initrd is some 60 MiB, the manifest allows up to 2 GiB. */
const CAT_TIMEOUT_MS = 10 * 60_000;
/** The longest build string a manifest takes (its `kernel.build`); a longer one is left out rather than cut. */
const BUILD_MAX = 256;

/**
 * What runs here runs on a workstation, not in a boot: nothing for the kernel
 * log, and a command that fails comes back as the CommandError that says why.
 */
const QUIET = new Logger({ write: () => {} }, false);

export type ImageKernel =
  /** the section to sign; notes: what the publisher may want to know (which of several kernels a link picked) */
  | { readonly kind: "kernel"; readonly kernel: SignedKernel; readonly notes: readonly string[] }
  /** a valid image that boots on the kernel the machine runs; the releases of its /lib/modules, for the warning when it has none */
  | { readonly kind: "none"; readonly why: string; readonly moduleReleases: readonly string[] }
  /** unsquashfs could not list it, so nothing is known of its kernel */
  | { readonly kind: "unreadable"; readonly problem: string }
  /** why it must not be signed: sentences that name the image file and the paths in it */
  | { readonly kind: "refused"; readonly problems: readonly string[] };

interface Content {
  readonly size: number;
  readonly sha512: string;
  /** the first bytes, as many as asked for */
  readonly head: Uint8Array;
}

/** One file of the image, streamed through sha512 (never held whole); keeps its first `keep` bytes. */
async function readImageFile(image: string, path: string, keep = 0): Promise<Content> {
  const hash = createHash("sha512");
  const head = new Uint8Array(keep);
  let size = 0;
  // the path is an exact name: unsquashfs takes it as a pattern, and isImagePath allows no wildcard characters
  await runCommand(QUIET, CAT_TIMEOUT_MS, [TOOLS.unsquashfs, "-cat", image, path], {
    onStdout: (chunk) => {
      if (size < keep) head.set(chunk.subarray(0, keep - size), size);
      hash.update(chunk);
      size += chunk.length;
    },
  });
  return { size, sha512: hash.digest("hex"), head: head.subarray(0, Math.min(size, keep)) };
}

/** The file's content, or the sentence that says why it could not be read as listed. */
async function readListedFile(image: string, file: LocatedFile, keep = 0): Promise<Content | string> {
  if (!isImagePath(file.path)) {
    return `${file.path}: Cannot sign it: expected a path of letters, digits, ".", "_", "+", "~", "-" and "/" only (what a manifest may name)`;
  }
  let content: Content;
  try {
    content = await readImageFile(image, file.path, keep);
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    return `Cannot read ${file.path} out of it: ${error.message}`;
  }
  // the image changed since it was listed, or unsquashfs read it short
  if (content.size !== file.size) return `${file.path}: expected ${file.size} bytes (its size in the image's listing), read ${content.size}`;
  return content;
}

/**
 * What `publish` signs of an image's kernel: its kernel section, or that it
 * has none, or why it must not be published (kernel and modules disagree, no
 * initrd, which of several kernels boots is not said, ...).
 */
export async function readImageKernel(image: string): Promise<ImageKernel> {
  let listing: string;
  try {
    listing = (await runCommand(QUIET, LIST_TIMEOUT_MS, [TOOLS.unsquashfs, "-lls", image])).stdout;
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    return { kind: "unreadable", problem: error.message };
  }
  const refuse = (problems: readonly string[]): ImageKernel => ({ kind: "refused", problems: problems.map((problem) => `Cannot publish the image ${image}: ${problem}`) });
  const parsed = parseSquashfsListing(listing);
  if (!parsed.ok) return refuse([parsed.problem]);
  const { tree } = parsed;
  const located = locateImageKernel(tree);
  if (located.kind === "none") return { kind: "none", why: located.why, moduleReleases: moduleReleases(tree) };
  if (located.kind === "refused") return refuse(located.problems);

  const kernel = await readListedFile(image, located.kernel, BZIMAGE_HEADER_BYTES);
  if (typeof kernel === "string") return refuse([kernel]);
  const header = readBzImage(kernel.head);
  if (!header.ok) return refuse([`${located.kernel.path}: ${header.problem}`]);
  const { release, build } = header.identity;
  const problems = checkImageKernel(tree, located, release);
  // the notes say why no initrd was taken when several are there
  if (problems.length > 0) return refuse([...problems, ...located.notes]);
  if (located.initrd === undefined) throw new Error(`Cannot sign the kernel of ${image}: checkImageKernel passed it without an initrd (a bug)`);
  const initrd = await readListedFile(image, located.initrd);
  if (typeof initrd === "string") return refuse([initrd]);
  return {
    kind: "kernel",
    kernel: {
      release,
      ...(build === undefined || build.length > BUILD_MAX ? {} : { build }),
      vmlinuz: { path: located.kernel.path, size: kernel.size, sha512: kernel.sha512 },
      initrd: { path: located.initrd.path, size: initrd.size, sha512: initrd.sha512 },
    },
    notes: located.notes,
  };
}

/**
 * `verify`: the kernel and initrd a manifest signs, read out of the image
 * again; every file whose size or sha512 differs is a problem naming the
 * manifest's key.
 */
export async function checkSignedKernel(image: string, kernel: SignedKernel, manifestFile: string): Promise<string[]> {
  const problems: string[] = [];
  for (const [key, file] of [["kernel.vmlinuz", kernel.vmlinuz], ["kernel.initrd", kernel.initrd]] as const) {
    let content: Content;
    try {
      content = await readImageFile(image, file.path);
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      problems.push(`${image}: Cannot read ${file.path} (${key}.path in ${manifestFile}) out of it: ${error.message}`);
      continue;
    }
    if (content.size !== file.size) {
      problems.push(`${image}: ${file.path} in it: expected ${file.size} bytes (${key}.size in ${manifestFile}), got ${content.size}`);
    } else if (content.sha512 !== file.sha512) {
      problems.push(`${image}: ${file.path} in it: expected sha512 ${file.sha512} (${key}.sha512 in ${manifestFile}), got ${content.sha512}`);
    }
  }
  return problems;
}
