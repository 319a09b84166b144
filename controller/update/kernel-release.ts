// Which kernel a file is, and which kernel is running: the release (uname -r,
// the name of its /lib/modules folder) and the build (uname -v, "#1 SMP
// PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)"). Pure, over bytes and text:
// `publish` reads an image's kernel with it, the boot compares the slot's
// signed kernel with the running one. docs/issue-14/kernel-convention.md.
//
// An x86 bzImage says which kernel it is without being run or decompressed:
// its setup header (Documentation/arch/x86/boot.rst, "The real-mode kernel
// header") has a kernel_version field, the offset less 0x200 of a NUL-ended
// string that arch/x86/boot/version.c writes as
//   UTS_RELEASE " (" LINUX_COMPILE_BY "@" LINUX_COMPILE_HOST ") " UTS_VERSION
// The running kernel says the same through /proc/sys/kernel/osrelease
// (UTS_RELEASE) and /proc/sys/kernel/version (UTS_VERSION); /proc/version
// has both, with the compiler between them.

/** Enough of a bzImage's start for its header and version string: the setup code is at most (255 + 1) × 512 bytes. */
export const BZIMAGE_HEADER_BYTES = 256 * 512;

const SETUP_SECTS = 0x1f1;
const BOOT_FLAG = 0x1fe;
const HEADER_MAGIC = 0x202;
const PROTOCOL = 0x206;
const KERNEL_VERSION = 0x20e;
const LOADFLAGS = 0x211;
const LOADED_HIGH = 0x01;
/** The boot protocol says kernel_version is only valid when setup_sects is 15 or more. */
const KERNEL_VERSION_MIN_SETUP_SECTS = 15;
const VERSION_STRING_MAX = 512;

/** A kernel release as the kernel makes it and as /lib/modules names it: at most 64 characters (__NEW_UTS_LEN), no "/" or space. */
const RELEASE = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/;
export const RELEASE_EXPECTED = 'a kernel release such as "6.1.0-28-amd64" (a letter or digit, then up to 63 letters, digits, ".", "_", "+", "~" or "-")';

export function isKernelRelease(value: string): boolean {
  return RELEASE.test(value);
}

/** Which kernel: the release always, the build (UTS_VERSION) when it is known. */
export interface KernelIdentity {
  readonly release: string;
  /** UTS_VERSION, e.g. "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)"; two builds of one release differ here */
  readonly build?: string;
}

/** Pure: the identity a kernel record (a manifest's signed kernel) names, for compareKernels. */
export function kernelIdentityOf(kernel: { readonly release: string; readonly build?: string | undefined }): KernelIdentity {
  return { release: kernel.release, ...(kernel.build === undefined ? {} : { build: kernel.build }) };
}

export type BzImageInfo =
  | {
      readonly ok: true;
      readonly identity: KernelIdentity;
      /** the whole string, as `file(1)` shows it */
      readonly versionString: string;
      /** the boot protocol version, e.g. "2.15" */
      readonly protocol: string;
    }
  | { readonly ok: false; readonly problem: string };

function u16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] ?? 0) | ((bytes[offset + 1] ?? 0) << 8);
}

/**
 * Pure: which kernel an x86 bzImage is, from its first bytes (all of it, or at
 * least BZIMAGE_HEADER_BYTES). Every refusal says what was expected and what
 * was found, e.g. "Cannot read the kernel release: expected ... got ...".
 */
export function readBzImage(bytes: Uint8Array): BzImageInfo {
  const refuse = (problem: string): BzImageInfo => ({ ok: false, problem: `Cannot read the kernel release: ${problem}` });
  if (bytes.length < LOADFLAGS + 1) {
    return refuse(`expected an x86 bzImage (at least ${LOADFLAGS + 1} bytes for its setup header), got ${bytes.length} bytes`);
  }
  const bootFlag = u16(bytes, BOOT_FLAG);
  const magic = String.fromCharCode(...bytes.subarray(HEADER_MAGIC, HEADER_MAGIC + 4));
  if (bootFlag !== 0xaa55 || magic !== "HdrS") {
    return refuse(
      `expected an x86 bzImage (boot flag 0xaa55 at 0x1fe and "HdrS" at 0x202), got 0x${bootFlag.toString(16).padStart(4, "0")} and ${JSON.stringify(magic)}`,
    );
  }
  const protocolWord = u16(bytes, PROTOCOL);
  const protocol = `${protocolWord >> 8}.${String(protocolWord & 0xff).padStart(2, "0")}`;
  // a zImage loads below 1 MiB: kexec and GRUB's `linux` boot only bzImages here
  if (((bytes[LOADFLAGS] ?? 0) & LOADED_HIGH) === 0) {
    return refuse(`expected a bzImage (loadflags bit LOADED_HIGH set), got a zImage (boot protocol ${protocol})`);
  }
  const setupSects = bytes[SETUP_SECTS] ?? 0;
  const pointer = u16(bytes, KERNEL_VERSION);
  if (setupSects < KERNEL_VERSION_MIN_SETUP_SECTS || pointer === 0) {
    return refuse(`the bzImage's header has no kernel_version string (setup_sects ${setupSects}, kernel_version 0x${pointer.toString(16)})`);
  }
  const offset = pointer + 0x200;
  const setupEnd = (setupSects + 1) * 512;
  if (offset >= setupEnd) {
    return refuse(`kernel_version points to 0x${offset.toString(16)}, past the end of the setup code at 0x${setupEnd.toString(16)}`);
  }
  if (offset >= bytes.length) {
    return refuse(`kernel_version points to 0x${offset.toString(16)}, got only ${bytes.length} bytes (read at least ${BZIMAGE_HEADER_BYTES})`);
  }
  const window = bytes.subarray(offset, Math.min(bytes.length, offset + VERSION_STRING_MAX + 1));
  const end = window.indexOf(0);
  if (end < 0) {
    return refuse(`the version string at 0x${offset.toString(16)} has no NUL within ${VERSION_STRING_MAX} bytes`);
  }
  const raw = window.subarray(0, end);
  if (raw.some((byte) => byte < 0x20 || byte > 0x7e)) {
    return refuse(`the version string at 0x${offset.toString(16)} is not printable ASCII`);
  }
  const versionString = String.fromCharCode(...raw);
  const identity = parseKernelVersionString(versionString);
  if (identity === undefined) {
    return refuse(`expected the version string at 0x${offset.toString(16)} to start with ${RELEASE_EXPECTED}, got ${JSON.stringify(versionString)}`);
  }
  return { ok: true, identity, versionString, protocol };
}

/** "6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP ..." → release and build; undefined when it does not start with a release. */
export function parseKernelVersionString(text: string): KernelIdentity | undefined {
  const release = text.split(" ", 1)[0] ?? "";
  if (!isKernelRelease(release)) return undefined;
  // "(by@host) " has no parentheses inside; anything else leaves the build unknown rather than guessed
  const match = /^\S+ \([^()]*\) (\S.*)$/.exec(text);
  return match?.[1] === undefined ? { release } : { release, build: match[1] };
}

/** The running kernel from /proc/sys/kernel/osrelease and, when read, /proc/sys/kernel/version. */
export function runningKernel(osrelease: string, version?: string): KernelIdentity | { readonly problem: string } {
  const release = osrelease.trim();
  if (!isKernelRelease(release)) return { problem: `Cannot read the running kernel's release: expected ${RELEASE_EXPECTED}, got ${JSON.stringify(osrelease)}` };
  const build = version?.trim();
  return build === undefined || build === "" ? { release } : { release, build };
}

/**
 * The running kernel from /proc/version ("Linux version RELEASE (by@host)
 * (COMPILER) UTS_VERSION"): the compiler has parentheses of its own, so the
 * build is what follows the first " #" (UTS_VERSION starts with "#"), when any.
 */
export function runningKernelFromProcVersion(text: string): KernelIdentity | { readonly problem: string } {
  const match = /^Linux version (\S+) /.exec(text);
  if (match?.[1] === undefined || !isKernelRelease(match[1])) {
    return { problem: `Cannot read the running kernel from /proc/version: expected "Linux version ${"RELEASE"} ...", got ${JSON.stringify(text.slice(0, 80))}` };
  }
  const hash = text.indexOf(" #");
  const build = hash < 0 ? "" : text.slice(hash + 1).trim();
  return build === "" ? { release: match[1] } : { release: match[1], build };
}

export type KernelComparison =
  | { readonly same: true; readonly why: string }
  | { readonly same: false; readonly why: string };

function describe(identity: KernelIdentity): string {
  return identity.build === undefined ? identity.release : `${identity.release} (${identity.build})`;
}

/**
 * Pure: whether the running kernel is the slot's. The release decides, and the
 * build too when both are known: Debian can rebuild one ABI release (the same
 * /lib/modules name) as a new package version, and that is another kernel.
 */
export function compareKernels(running: KernelIdentity, slot: KernelIdentity): KernelComparison {
  if (running.release !== slot.release) {
    return { same: false, why: `the running kernel is ${describe(running)}, the slot's is ${describe(slot)}` };
  }
  if (running.build !== undefined && slot.build !== undefined && running.build !== slot.build) {
    return { same: false, why: `the running kernel and the slot's are both ${running.release} but of different builds: running ${running.build}, the slot's ${slot.build}` };
  }
  const how = running.build !== undefined && slot.build !== undefined ? "release and build" : "release (the build of one of them is not known)";
  return { same: true, why: `the running kernel is the slot's: ${describe(slot)}, same ${how}` };
}
