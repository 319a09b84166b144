// Mount requests as mount(2) calls, so that the Linux system makes its mounts
// in its own process: under QEMU's TCG every mount(8) run costs 100 ms or more
// (fork, exec, the dynamic loader and libmount's libraries), and a boot makes
// about twenty mounts. Loop images too: LOOP_CONFIGURE attaches one to a free
// loop device in one ioctl. A userspace option such as x-initrd.mount goes
// where mount(8) keeps it, a line in /run/mount/utab that the booted system's
// systemd reads. mount(8) stays for what only it does: a loop offset or size
// limit, a named loop device, an option for its helpers.

import type { MountRequest } from "./system.ts";

/** mount(2) flags, from <linux/mount.h>. */
export const MS = {
  RDONLY: 1,
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  SYNCHRONOUS: 16,
  REMOUNT: 32,
  DIRSYNC: 128,
  NOSYMFOLLOW: 256,
  NOATIME: 1024,
  NODIRATIME: 2048,
  BIND: 4096,
  PRIVATE: 1 << 18,
  RELATIME: 1 << 21,
  STRICTATIME: 1 << 24,
  LAZYTIME: 1 << 25,
} as const;

/** One mount(2) call: source and fsType may be empty ("none" for the kernel), data is the filesystem's own options. */
export interface MountCall {
  readonly source: string;
  readonly target: string;
  readonly fsType: string;
  readonly flags: number;
  readonly data: string;
}

/** mount(8)'s generic options: each sets or clears one flag; every other option is the filesystem's own (data). */
const FLAG_OPTIONS: ReadonlyMap<string, { readonly set: boolean; readonly flag: number }> = new Map([
  ["ro", { set: true, flag: MS.RDONLY }],
  ["rw", { set: false, flag: MS.RDONLY }],
  ["nosuid", { set: true, flag: MS.NOSUID }],
  ["suid", { set: false, flag: MS.NOSUID }],
  ["nodev", { set: true, flag: MS.NODEV }],
  ["dev", { set: false, flag: MS.NODEV }],
  ["noexec", { set: true, flag: MS.NOEXEC }],
  ["exec", { set: false, flag: MS.NOEXEC }],
  ["sync", { set: true, flag: MS.SYNCHRONOUS }],
  ["async", { set: false, flag: MS.SYNCHRONOUS }],
  ["dirsync", { set: true, flag: MS.DIRSYNC }],
  ["nosymfollow", { set: true, flag: MS.NOSYMFOLLOW }],
  ["noatime", { set: true, flag: MS.NOATIME }],
  ["nodiratime", { set: true, flag: MS.NODIRATIME }],
  ["relatime", { set: true, flag: MS.RELATIME }],
  ["strictatime", { set: true, flag: MS.STRICTATIME }],
  ["lazytime", { set: true, flag: MS.LAZYTIME }],
  ["nolazytime", { set: false, flag: MS.LAZYTIME }],
  ["defaults", { set: false, flag: 0 }],
]);

/** A userspace option, which libmount keeps in utab instead of passing it to the kernel. */
function isUtabOption(option: string): boolean {
  return option.startsWith("x-");
}

/** Options that only mount(8) understands: a loop device to set up, or an option of fstab's or of a mount helper's. */
function needsMount8(option: string): boolean {
  const name = option.split("=")[0] ?? "";
  return (
    name.startsWith("X-") ||
    ["loop", "offset", "sizelimit", "encryption", "user", "users", "owner", "group", "auto", "noauto", "nofail", "_netdev", "comment", "helper", "uhelper"].includes(name)
  );
}

/**
 * The mount(2) calls that carry out a request, in order; undefined when it
 * needs mount(8) (a loop device, or an option of its own). A userspace option
 * (x-) is no call's: utabEntry records it.
 */
export function mountCalls(request: MountRequest): MountCall[] | undefined {
  if (request.kind === "bind") {
    const bind: MountCall = { source: request.source, target: request.target, fsType: "", flags: MS.BIND, data: "" };
    // the propagation type is its own call: the kernel ignores other flags next to MS_PRIVATE
    return request.private === true ? [bind, { source: "", target: request.target, fsType: "", flags: MS.PRIVATE, data: "" }] : [bind];
  }
  if (request.options.some(needsMount8)) return undefined;
  let flags = 0;
  const data: string[] = [];
  for (const option of request.options) {
    if (isUtabOption(option)) continue;
    const generic = FLAG_OPTIONS.get(option);
    if (generic === undefined) data.push(option);
    else flags = generic.set ? flags | generic.flag : flags & ~generic.flag;
  }
  return [{ source: request.source, target: request.target, fsType: request.fsType, flags, data: data.join(",") }];
}

/**
 * A loop mount that this process can make itself: the image attached to a free
 * loop device with the LOOP_CONFIGURE ioctl, then mount(2) of that device.
 * `call` is the mount(2) call once the device is known. Undefined when the
 * request is no loop mount, or asks for what only mount(8) does (an offset, a
 * size limit) or for a utab entry, whose source mount(8) names its own way.
 */
export interface LoopMount {
  readonly file: string;
  readonly readOnly: boolean;
  call(device: string): MountCall;
}

export function loopMount(request: MountRequest): LoopMount | undefined {
  if (request.kind !== "filesystem" || !request.options.includes("loop") || request.options.some(isUtabOption)) return undefined;
  // mountCalls leaves out what only mount(8) does among the other options
  const [call] = mountCalls({ ...request, options: request.options.filter((option) => option !== "loop") }) ?? [];
  if (call === undefined) return undefined;
  return { file: request.source, readOnly: (call.flags & MS.RDONLY) !== 0, call: (device) => ({ ...call, source: device }) };
}

/** From <linux/loop.h>. */
export const LOOP = {
  CTL_GET_FREE: 0x4c82,
  CONFIGURE: 0x4c0a,
  FLAGS_READ_ONLY: 1,
  FLAGS_AUTOCLEAR: 4,
} as const;
/** struct loop_config: fd, block_size, struct loop_info64 (232 bytes), 8 reserved u64s. */
export const LOOP_CONFIG_SIZE = 304;
const LOOP_INFO_AT = 8;
/** lo_flags and lo_file_name[64] inside struct loop_info64 */
const LO_FLAGS_AT = 52;
const LO_FILE_NAME_AT = 56;
const LO_NAME_SIZE = 64;

/**
 * The struct loop_config for LOOP_CONFIGURE: the backing file's descriptor,
 * read-only as asked, and autoclear, so the device detaches by itself once
 * its filesystem is unmounted (as mount(8)'s loop option does). The file name
 * is what losetup shows, cut to the kernel's 63 bytes.
 */
export function loopConfig(fileFd: number, readOnly: boolean, fileName: string): Uint8Array {
  const bytes = new Uint8Array(LOOP_CONFIG_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, fileFd, true);
  view.setUint32(LOOP_INFO_AT + LO_FLAGS_AT, LOOP.FLAGS_AUTOCLEAR | (readOnly ? LOOP.FLAGS_READ_ONLY : 0), true);
  bytes.set(new TextEncoder().encode(fileName).subarray(0, LO_NAME_SIZE - 1), LOOP_INFO_AT + LO_FILE_NAME_AT);
  return bytes;
}

/** Per-mount flags that a remount would clear unless it passes them again. */
const KEPT_ON_REMOUNT: ReadonlyMap<string, number> = new Map([
  ["nosuid", MS.NOSUID],
  ["nodev", MS.NODEV],
  ["noexec", MS.NOEXEC],
  ["nosymfollow", MS.NOSYMFOLLOW],
]);

/** A path as /proc/self/mountinfo writes it: space, tab, newline and backslash as octal escapes. */
function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/**
 * The mount(2) call that makes the filesystem mounted at `target` read-only or
 * writable in place, keeping the mount's nosuid, nodev, noexec and
 * nosymfollow (the kernel resets what a remount leaves out; the atime flags it
 * keeps by itself). `mountinfo` is /proc/self/mountinfo; undefined when
 * nothing is mounted at `target`.
 */
export function remountCall(mountinfo: string, target: string, readOnly: boolean): MountCall | undefined {
  let options: string | undefined;
  for (const line of mountinfo.split("\n")) {
    // ID PARENT MAJOR:MINOR ROOT MOUNT-POINT MOUNT-OPTIONS ...; the last match is the mount on top
    const fields = line.split(" ");
    if (fields.length > 5 && unescapeMountinfo(fields[4] ?? "") === target) options = fields[5];
  }
  if (options === undefined) return undefined;
  let flags = MS.REMOUNT | (readOnly ? MS.RDONLY : 0);
  for (const option of options.split(",")) flags |= KEPT_ON_REMOUNT.get(option) ?? 0;
  return { source: "", target, fsType: "", flags, data: "" };
}

/** A path or option list as libmount writes it into utab: space, tab, newline and backslash as octal escapes. */
function mangle(text: string): string {
  return text.replace(/[ \t\n\\]/g, (char) => `\\${char.charCodeAt(0).toString(8).padStart(3, "0")}`);
}

/**
 * The line mount(8) adds to /run/mount/utab for a filesystem mounted with
 * userspace options, in libmount's format; undefined when the request has
 * none. ROOT is "/": the whole filesystem, as for every mount but a bind.
 */
export function utabEntry(request: MountRequest): string | undefined {
  if (request.kind !== "filesystem") return undefined;
  const options = request.options.filter(isUtabOption);
  if (options.length === 0) return undefined;
  return `SRC=${mangle(request.source)} TARGET=${mangle(request.target)} ROOT=/ OPTS=${mangle(options.join(","))}\n`;
}

/** Whether a utab line is the entry of the mount at `target`. */
function isEntryOf(line: string, target: string): boolean {
  return line.split(" ").some((field) => field.startsWith("TARGET=") && unescapeMountinfo(field.slice("TARGET=".length)) === target);
}

/** Whether /run/mount/utab (`utab` is its content) has an entry for `target`, which an unmount must take out with it. */
export function inUtab(utab: string, target: string): boolean {
  return utab.split("\n").some((line) => isEntryOf(line, target));
}

/** utab without the entry of the mount at `target`: the last one, the mount on top, as umount(8) takes it out. */
export function withoutUtabEntry(utab: string, target: string): string {
  const lines = utab.split("\n");
  const last = lines.findLastIndex((line) => isEntryOf(line, target));
  return last < 0 ? utab : [...lines.slice(0, last), ...lines.slice(last + 1)].join("\n");
}
