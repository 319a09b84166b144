// The one port between the controller's decisions and the machine. Stages only
// talk to the machine through this interface: linux-system.ts implements it for
// an initramfs, test/fake-system.ts in memory for the unit tests.

import type { HashAlgorithm } from "./hash-worker.ts";

export type FileType = "file" | "directory" | "symlink" | "other";

export interface FileInfo {
  readonly type: FileType;
  readonly size: number;
  /** permission bits, e.g. 0o755 */
  readonly mode: number;
}

/** A block device with a filesystem, as udev's blkid probe recorded it. */
export interface BlockDevice {
  readonly device: string;
  readonly label?: string;
  readonly fsType?: string;
}

export type MountRequest =
  /** Mount a filesystem: a device, a loop image (options include "loop") or a virtual one such as tmpfs. */
  | {
      readonly kind: "filesystem";
      readonly source: string;
      readonly target: string;
      readonly fsType: string;
      readonly options: readonly string[];
    }
  /**
   * Make an existing file or folder visible at a second place. A private bind
   * does not take part in mount propagation: what is mounted later on its
   * source does not show up on it (the systemd initrd makes every mount shared).
   */
  | { readonly kind: "bind"; readonly source: string; readonly target: string; readonly private?: boolean };

export interface ExecOptions {
  /** Write the command's standard output to this file instead of capturing it. */
  readonly stdoutFile?: string;
  /** Give up and kill the command after this long. */
  readonly timeoutMs?: number;
}

export interface ExecResult {
  readonly stdout: string;
}

/** What a filesystem check found; `clean` false means errors it could not repair. */
export interface FilesystemCheck {
  readonly clean: boolean;
  readonly detail: string;
}

/**
 * How long a whole request may take, redirects and body included. The gap
 * limit (timeoutMs) alone lets a server that sends a byte every few seconds
 * hold the boot for days.
 */
export type HttpDeadline =
  /** the whole answer within totalMs (timeouts.request_seconds): manifests, signatures, config files, remote content */
  | { readonly kind: "total"; readonly totalMs: number }
  /**
   * images: every window of windowMs must bring minBytesPerSecond on average
   * (timeouts.image_min_kib_per_second, timeouts.image_window_seconds), so a
   * trickle ends after one window and an image of any size still finishes
   */
  | { readonly kind: "rate"; readonly minBytesPerSecond: number; readonly windowMs: number };

export interface HttpRequestOptions {
  /** Give up when connecting, waiting for the answer or waiting for more of the body takes longer than this. */
  readonly timeoutMs: number;
  readonly deadline: HttpDeadline;
  /** Ask only for the bytes from this offset on (a Range request, to resume a download). */
  readonly fromByte?: number;
  /** Ask only for the bytes up to this offset, inclusive (a Range request for part of an image, as a delta install makes). */
  readonly toByte?: number;
  /** PEM file of the CA certificates an https server must chain to. */
  readonly caBundle: string;
  /** Follow a redirect from an https: URL to a plain http: one (update.allow_redirect_to_http). */
  readonly allowRedirectToHttp: boolean;
}

/**
 * A request the client itself will not make or follow: a URL that is not
 * http: or https:, a redirect out of HTTP or down to plain http, a redirect
 * loop. Asking again gets the same answer, so a download does not resume it.
 */
export class HttpRefusal extends Error {}

export interface HttpResponse {
  readonly status: number;
  /** header names in lowercase */
  readonly headers: Readonly<Record<string, string>>;
  /** The body as it arrives; iterating it throws when the connection drops or stalls. */
  readonly body: AsyncIterable<Uint8Array>;
  /** Stop reading the body and close the connection. */
  discard(): Promise<void>;
}

/** A file being written piece by piece, such as an image as it downloads. */
export interface FileWriter {
  write(chunk: Uint8Array): Promise<void>;
  /** Wait until what was written is on the disk (fsync). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** A file read in ranges, such as a local image a delta install copies chunks from. */
export interface FileReader {
  /** `length` bytes from `offset` on; fewer only where the file ends. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A kernel and initramfs to boot with kexec, and the command line they get. */
export interface KexecRequest {
  readonly kernel: string;
  readonly initrd: string;
  readonly cmdline: string;
}

/** A program left running in the background, such as an SSH server. */
export interface Service {
  readonly pid: number;
  /** Where its standard output and error go. */
  readonly logFile: string;
  /** Stop it (SIGTERM, then SIGKILL) and wait until it is gone. */
  stop(): Promise<void>;
}

export interface System {
  // files
  readText(path: string): Promise<string>;
  /** Write a whole file atomically: readers see the old content or the new one, never half. */
  writeText(path: string, content: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  /** Like lstat(2): does not follow a final symlink. undefined when nothing is there. */
  lstat(path: string): Promise<FileInfo | undefined>;
  readdir(path: string): Promise<string[]>;
  readlink(path: string): Promise<string>;
  /** Copy a folder's contents, keeping owners, modes, links and special files. */
  copyTree(from: string, to: string): Promise<void>;
  decompressXz(from: string, to: string): Promise<void>;
  /** A whole file, refused (throws) when it is larger than maxBytes. */
  readBytes(path: string, maxBytes: number): Promise<Uint8Array>;
  /** A file's bytes in pieces, for files too big to hold in memory. */
  readChunks(path: string): AsyncIterable<Uint8Array>;
  /** Open a file to read ranges of it: one open for many reads, which the kernel's readahead follows. */
  openForRead(path: string): Promise<FileReader>;
  /** The hash (hex) of `length` bytes of a file from `offset` on; hashes may run on every CPU at once. Throws when the file is shorter. */
  hashOfRange(path: string, offset: number, length: number, algorithm: HashAlgorithm): Promise<string>;
  /** The CPU's feature flags (/proc/cpuinfo "flags"); none when they cannot be read. */
  cpuFlags(): Promise<ReadonlySet<string>>;
  /** Write a whole file atomically and durably (temporary file, fsync, rename). */
  writeBytes(path: string, content: Uint8Array): Promise<void>;
  /** Open a file for writing from `offset` on, cutting off anything after it; creates it when missing. */
  openForWrite(path: string, offset: number): Promise<FileWriter>;
  rename(from: string, to: string): Promise<void>;
  /** Make a symbolic link at `path` whose target is `target`, as written (relative targets stay relative); fails when `path` exists. */
  symlink(target: string, path: string): Promise<void>;
  /** Wait until a file or folder written earlier is on the disk (fsync; for a folder: the names in it). */
  syncPath(path: string): Promise<void>;
  /** Remove a file or a folder with everything in it; nothing there is fine. */
  remove(path: string): Promise<void>;
  /** Bytes an unprivileged writer may still put on the filesystem that holds `path` (statfs). */
  freeBytes(path: string): Promise<number>;

  // disks and mounts
  /** Every block device udev has found a filesystem on, so far. */
  listBlockDevices(): Promise<BlockDevice[]>;
  /** Wait until udev has processed the events it knows of, at most timeoutMs. */
  settleDevices(timeoutMs: number): Promise<void>;
  loadKernelModules(names: readonly string[]): Promise<void>;
  mount(request: MountRequest): Promise<void>;
  unmount(target: string): Promise<void>;
  /** Make the filesystem mounted at `target` writable or read-only again, in place. */
  remount(target: string, readOnly: boolean): Promise<void>;
  /** Check and repair what is safe to repair (e2fsck -p) on an unmounted filesystem. */
  checkFilesystem(device: BlockDevice): Promise<FilesystemCheck>;
  /** Give an unmounted filesystem a new label; the write is one superblock, so a power cut leaves the old label or the new. */
  setLabel(device: BlockDevice, label: string): Promise<void>;

  // network
  httpGet(url: string, options: HttpRequestOptions): Promise<HttpResponse>;

  // processes
  /** The time limit for every later command that gives none itself (config.d timeouts.command_seconds). */
  setCommandTimeout(ms: number): void;
  /** Run a command to completion; throws CommandError (with its stderr) when it fails. */
  exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Run an interactive command on the console (a shell), wait for it, return its exit status. */
  execOnConsole(argv: readonly string[]): Promise<number>;
  /** Print a question on the console and read one line typed there; undefined when nothing came within timeoutMs. */
  askOnConsole(question: string, timeoutMs: number): Promise<string | undefined>;
  /** Start a program that runs on in the background while the boot goes on; its output goes to logFile. */
  startService(argv: readonly string[], logFile: string): Promise<Service>;
  /** The program (argv[0]) of every subprocess started so far, in order: the boot report counts them, each costs tens of ms under QEMU's TCG. */
  subprocesses(): readonly string[];

  // kexec
  /** Load a kernel to boot next (kexec -l); throws with kexec's message when the kernel cannot be loaded. */
  kexecLoad(request: KexecRequest): Promise<void>;
  /** Boot the loaded kernel now (kexec -e); returns only when that failed. */
  kexecBoot(): Promise<void>;
  /** Reset the machine now, without syncing or unmounting (the caller left every filesystem clean); returns only when that failed. */
  reboot(): Promise<void>;

  // clock
  monotonicMs(): number;
  wallClock(): Date;
  sleep(ms: number): Promise<void>;
}
