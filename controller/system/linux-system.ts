// The System port on a real Linux initramfs: files through node:fs, everything
// else through the tools dracut installs (paths.ts TOOLS), each run by runCommand.

import { CString, dlopen, FFIType, read } from "bun:ffi";
import {
  closeSync,
  createReadStream,
  fsyncSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  renameSync,
  rmSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import * as fs from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { cpuFlagsIn } from "./cpu-flags.ts";
import { CommandError, formatArgv, runCommand } from "./exec.ts";
import { SUPERBLOCK_BYTES, SUPERBLOCK_OFFSET, whyCheckNeeded } from "./ext-superblock.ts";
import { hashPool } from "./hash-pool.ts";
import type { HashAlgorithm } from "./hash-worker.ts";
import { httpGet } from "./http-get.ts";
import type { LogSink, Logger } from "./log.ts";
import { devicePath, filesystemFromUdev } from "./udev-devices.ts";
import { inUtab, LOOP, type LoopMount, loopConfig, loopMount, type MountCall, mountCalls, remountCall, utabEntry, withoutUtabEntry } from "./mount-calls.ts";
import { DEV_KMSG, PROC_CPUINFO, PROC_PRINTK, PROC_SELF_MOUNTINFO, PROC_SYSRQ_TRIGGER, RUN_MOUNT_UTAB, RUN_MOUNT_UTAB_LOCK, SYS_CLASS_BLOCK, SYS_MODULE, TOOLS, UDEV_DATA } from "./paths.ts";
import type {
  BlockDevice,
  ExecOptions,
  ExecResult,
  FileInfo,
  FilesystemCheck,
  FileReader,
  FileWriter,
  HttpRequestOptions,
  HttpResponse,
  KexecRequest,
  MountRequest,
  Service,
  System,
} from "./system.ts";

/** How long a started service must stay up to count as started. */
const SERVICE_START_GRACE_MS = 300;
/** How long a service gets to end after SIGTERM before SIGKILL. */
const SERVICE_STOP_GRACE_MS = 3000;

/** The argv that carries out a mount request. */
export function mountArgv(request: MountRequest): string[] {
  switch (request.kind) {
    case "filesystem": {
      const options = request.options.length === 0 ? [] : ["-o", request.options.join(",")];
      return [TOOLS.mount, "-t", request.fsType, ...options, request.source, request.target];
    }
    case "bind":
      return [TOOLS.mount, "--bind", ...(request.private === true ? ["--make-private"] : []), request.source, request.target];
  }
}

const O_RDONLY = 0;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_CLOEXEC = 0o2000000;
const LOCK_EX = 2;
const EBUSY = 16;
const LOOP_CONTROL = "/dev/loop-control";
/** Free loop devices asked for before giving up, when others keep taking them first. */
const LOOP_ATTEMPTS = 5;

/** libc's mount(2), umount2(2), the loop ioctls and flock(2) through bun:ffi: a mount in this process instead of a mount(8) run (mount-calls.ts says why). */
const libc = (() => {
  let symbols: ReturnType<typeof openLibc> | undefined;
  function openLibc() {
    return dlopen("libc.so.6", {
      mount: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
      umount2: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
      open: { args: [FFIType.ptr, FFIType.i32, FFIType.u32], returns: FFIType.i32 },
      close: { args: [FFIType.i32], returns: FFIType.i32 },
      ioctl: { args: [FFIType.i32, FFIType.u64, FFIType.ptr], returns: FFIType.i32 },
      flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
      __errno_location: { args: [], returns: FFIType.ptr },
      strerror: { args: [FFIType.i32], returns: FFIType.ptr },
    }).symbols;
  }
  /** A C string, or NULL for "". */
  const cString = (text: string) => (text === "" ? null : Buffer.from(`${text}\0`));
  /** errno of the call just made: read before anything else can call into libc. */
  function lastErrno(libc: ReturnType<typeof openLibc>): number {
    const location = libc.__errno_location();
    return location === null ? 0 : read.i32(location, 0);
  }
  /** errno of the call just made, as strerror says it. */
  function lastError(libc: ReturnType<typeof openLibc>): string {
    const errno = lastErrno(libc);
    const message = libc.strerror(errno);
    return `${message === null ? "error" : new CString(message).toString()} (errno ${errno})`;
  }
  return {
    /** Throws with the kernel's reason when mount(2) fails. */
    mount(call: MountCall, what: string): void {
      symbols ??= openLibc();
      const result = symbols.mount(cString(call.source), cString(call.target), cString(call.fsType), call.flags, cString(call.data));
      if (result !== 0) throw new Error(`Cannot ${what}: mount(2) failed: ${lastError(symbols)}`);
    },
    umount(target: string): void {
      symbols ??= openLibc();
      if (symbols.umount2(cString(target), 0) !== 0) throw new Error(`Cannot unmount ${target}: umount2(2) failed: ${lastError(symbols)}`);
    },
    /**
     * Attaches `file` to a free loop device (LOOP_CTL_GET_FREE, then LOOP_CONFIGURE, with
     * autoclear); returns the device and the descriptor that holds it until closed.
     */
    attachLoop(file: string, readOnly: boolean): { device: string; fd: number } {
      const libc = (symbols ??= openLibc());
      const cannot = (why: string) => new Error(`Cannot attach ${file} to a loop device: ${why}`);
      const mode = (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
      const control = libc.open(cString(LOOP_CONTROL), O_RDWR | O_CLOEXEC, 0);
      if (control < 0) throw cannot(`cannot open ${LOOP_CONTROL}: ${lastError(libc)}`);
      const backing = libc.open(cString(file), mode, 0);
      try {
        if (backing < 0) throw cannot(`cannot open it: ${lastError(libc)}`);
        for (let attempt = 1; ; attempt++) {
          const number = libc.ioctl(control, LOOP.CTL_GET_FREE, null);
          if (number < 0) throw cannot(`LOOP_CTL_GET_FREE failed: ${lastError(libc)}`);
          const device = `/dev/loop${number}`;
          const fd = libc.open(cString(device), mode, 0);
          if (fd < 0) throw cannot(`cannot open ${device}: ${lastError(libc)}`);
          if (libc.ioctl(fd, LOOP.CONFIGURE, loopConfig(backing, readOnly, file)) === 0) return { device, fd };
          const errno = lastErrno(libc);
          const error = lastError(libc);
          libc.close(fd);
          // another process took the free device before us: ask for the next one
          if (errno !== EBUSY || attempt === LOOP_ATTEMPTS) throw cannot(`LOOP_CONFIGURE on ${device} failed: ${error}`);
        }
      } finally {
        // the loop device holds the file itself once configured
        if (backing >= 0) libc.close(backing);
        libc.close(control);
      }
    },
    /** Opens `file`, made if missing, and waits for its exclusive flock; closing the descriptor releases it. */
    lock(file: string): number {
      const libc = (symbols ??= openLibc());
      const fd = libc.open(cString(file), O_RDONLY | O_CREAT | O_CLOEXEC, 0o644);
      if (fd < 0) throw new Error(`Cannot lock ${file}: cannot open it: ${lastError(libc)}`);
      if (libc.flock(fd, LOCK_EX) !== 0) {
        const error = lastError(libc);
        libc.close(fd);
        throw new Error(`Cannot lock ${file}: flock(2) failed: ${error}`);
      }
      return fd;
    },
    close(fd: number): void {
      (symbols ??= openLibc()).close(fd);
    },
  };
})();

/** What a mount request does, for messages: "mount /dev/vda1 (ext4, ro) on /x". */
function describeMount(request: MountRequest): string {
  if (request.kind === "bind") return `bind-mount ${request.source} on ${request.target}${request.private === true ? " (private)" : ""}`;
  const options = request.options.length === 0 ? "" : `, ${request.options.join(",")}`;
  return `mount ${request.source} (${request.fsType}${options}) on ${request.target}`;
}

/** vda2 before vda10: names in the order of their numbers, as the kernel made them. */
function byNumbers(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

function readIfThere(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return "";
    throw error;
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/**
 * The System's file operations are node:fs's synchronous calls inside async
 * methods: a boot makes hundreds of them on small files, and each of
 * node:fs/promises' trips through libuv's thread pool cost far more than the
 * work under QEMU's TCG (28 lstat and read calls on the config files: 2.7 to
 * 7.5 ms natively against 0.3). Streams stay asynchronous: an image's
 * download, its reading for hashes, a service's log.
 */
export class LinuxSystem implements System {
  private readonly started: string[] = [];
  private cpuFlagsRead: ReadonlySet<string> | undefined;

  constructor(
    private readonly log: Logger,
    private commandTimeoutMs: number,
  ) {}

  async readText(path: string): Promise<string> {
    return readFileSync(path, "utf8");
  }

  async writeText(path: string, content: string): Promise<void> {
    await this.writeAtomically(path, content);
  }

  private async writeAtomically(path: string, content: string | Uint8Array): Promise<void> {
    const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    const fd = openSync(temporary, "w", 0o644);
    try {
      writeFileSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
    // the rename itself must reach the disk too, or a power cut could bring back the old file
    fsyncPath(dirname(path));
  }

  async readBytes(path: string, maxBytes: number): Promise<Uint8Array> {
    const fd = openSync(path, "r");
    try {
      const { size } = fstatSync(fd);
      if (size > maxBytes) throw new Error(`Cannot read ${path}: it has ${size} bytes, more than the ${maxBytes} allowed`);
      return new Uint8Array(readFileSync(fd));
    } finally {
      closeSync(fd);
    }
  }

  async *readChunks(path: string): AsyncIterable<Uint8Array> {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
  }

  async openForRead(path: string): Promise<FileReader> {
    // one descriptor for every read: a fresh open per chunk starts the kernel's readahead anew
    // each time, and reading a 231 MB image from a freshly mounted slot in 64 KiB chunks took
    // 0.42 s that way against 0.27 s through one descriptor
    const fd = openSync(path, "r");
    return {
      // synchronous, as the writes: a delta install reads tens of thousands of chunks of at
      // most 256 KiB, each far quicker than a trip through libuv's pool
      async read(offset, length) {
        const bytes = Buffer.allocUnsafe(length);
        let done = 0;
        while (done < length) {
          const read = readSync(fd, bytes, done, length - done, offset + done);
          if (read === 0) break;
          done += read;
        }
        return bytes.subarray(0, done);
      },
      close: async () => closeSync(fd),
    };
  }

  hashOfRange(path: string, offset: number, length: number, algorithm: HashAlgorithm): Promise<string> {
    return hashPool().hashRange(path, offset, length, algorithm);
  }

  async cpuFlags(): Promise<ReadonlySet<string>> {
    if (this.cpuFlagsRead === undefined) {
      try {
        this.cpuFlagsRead = cpuFlagsIn(readFileSync(PROC_CPUINFO, "utf8"));
      } catch {
        // without /proc the install checks sha512, which every CPU can
        this.cpuFlagsRead = new Set();
      }
    }
    return this.cpuFlagsRead;
  }

  async writeBytes(path: string, content: Uint8Array): Promise<void> {
    await this.writeAtomically(path, content);
  }

  async openForWrite(path: string, offset: number): Promise<FileWriter> {
    const handle = await fs.open(path, (await this.lstat(path)) === undefined ? "w" : "r+", 0o644);
    await handle.truncate(offset);
    let position = offset;
    return {
      async write(chunk) {
        // synchronous: a write into the page cache takes well under a millisecond, and a
        // trip through libuv's thread pool for every piece of a GiB image held a 1 GiB
        // download from 127.0.0.1 at 550-610 MB/s, against 630-990 MB/s written this way
        for (let done = 0; done < chunk.length; ) {
          const written = writeSync(handle.fd, chunk, done, chunk.length - done, position);
          done += written;
          position += written;
        }
      },
      sync: () => handle.sync(),
      close: () => handle.close(),
    };
  }

  async rename(from: string, to: string): Promise<void> {
    renameSync(from, to);
    fsyncPath(dirname(to));
  }

  async symlink(target: string, path: string): Promise<void> {
    symlinkSync(target, path);
  }

  async syncPath(path: string): Promise<void> {
    fsyncPath(path);
  }

  async remove(path: string): Promise<void> {
    rmSync(path, { recursive: true, force: true });
  }

  async freeBytes(path: string): Promise<number> {
    const stats = statfsSync(path);
    return stats.bavail * stats.bsize;
  }

  async mkdir(path: string): Promise<void> {
    mkdirSync(path, { recursive: true });
  }

  async lstat(path: string): Promise<FileInfo | undefined> {
    try {
      const stat = lstatSync(path);
      const type = stat.isFile() ? "file" : stat.isDirectory() ? "directory" : stat.isSymbolicLink() ? "symlink" : "other";
      return { type, size: stat.size, mode: stat.mode & 0o7777 };
    } catch (error) {
      if (errorCode(error) === "ENOENT" || errorCode(error) === "ENOTDIR") return undefined;
      throw error;
    }
  }

  async readdir(path: string): Promise<string[]> {
    return readdirSync(path);
  }

  async readlink(path: string): Promise<string> {
    return readlinkSync(path);
  }

  async copyTree(from: string, to: string): Promise<void> {
    // cp -a, one run per tmpfs seeded: node:fs copies keep neither owners nor device nodes and sockets
    await this.exec([TOOLS.cp, "-a", `${from}/.`, `${to}/`]);
  }

  async decompressXz(from: string, to: string): Promise<void> {
    // bun has no xz decoder; only a DIR_*.squashfs.xz overmount needs one
    await this.exec([TOOLS.xz, "--decompress", "--stdout", from], { stdoutFile: to });
  }

  async listBlockDevices(): Promise<BlockDevice[]> {
    const devices: BlockDevice[] = [];
    for (const name of readdirSync(SYS_CLASS_BLOCK).sort(byNumbers)) {
      // the device's numbers name its udev database entry; a device gone meanwhile is simply not listed
      const numbers = readIfThere(`${SYS_CLASS_BLOCK}/${name}/dev`).trim();
      if (numbers === "") continue;
      const filesystem = filesystemFromUdev(devicePath(name), readIfThere(`${UDEV_DATA}/b${numbers}`));
      if (filesystem !== undefined) devices.push(filesystem);
    }
    return devices;
  }

  async settleDevices(timeoutMs: number): Promise<void> {
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    try {
      await this.exec([TOOLS.udevadm, "settle", `--timeout=${seconds}`], { timeoutMs: timeoutMs + 5000 });
    } catch (error) {
      // settle times out while devices keep appearing; the caller looks at what is there and retries
      this.log.debug(`udev is not settled yet: ${(error as Error).message}`);
    }
  }

  async loadKernelModules(names: readonly string[]): Promise<void> {
    // a module already loaded (dracut's udev loads ext4 for the partitions) needs no modprobe run; one
    // that is not needs modprobe, which finds its file and dependencies and unpacks a compressed one
    const missing: string[] = [];
    for (const name of names) if ((await this.lstat(`${SYS_MODULE}/${name.replaceAll("-", "_")}`)) === undefined) missing.push(name);
    if (missing.length > 0) await this.exec([TOOLS.modprobe, "-a", ...missing]);
  }

  async mount(request: MountRequest): Promise<void> {
    const loop = loopMount(request);
    if (loop !== undefined) return this.mountLoop(loop, request);
    const calls = mountCalls(request);
    // a loop device set up its own way, or an option for mount(8)'s helpers: only mount(8) does those
    if (calls === undefined) {
      await this.exec(mountArgv(request));
      return;
    }
    for (const call of calls) libc.mount(call, describeMount(request));
    const entry = utabEntry(request);
    if (entry === undefined) return;
    try {
      await this.changeUtab((utab) => utab + entry);
    } catch (error) {
      // the filesystem is mounted and serves this boot; only the booted system's shutdown order misses the option
      this.log.warn(`Cannot record ${request.target}'s options for the booted system: ${(error as Error).message}`);
    }
  }

  /** Changes /run/mount/utab as libmount does: under its lock, through a new file renamed over the old. */
  private async changeUtab(change: (utab: string) => string): Promise<void> {
    mkdirSync(dirname(RUN_MOUNT_UTAB), { recursive: true });
    const lock = libc.lock(RUN_MOUNT_UTAB_LOCK);
    try {
      await this.writeAtomically(RUN_MOUNT_UTAB, change(readIfThere(RUN_MOUNT_UTAB)));
    } finally {
      libc.close(lock);
    }
  }

  /**
   * A loop image attached here and mounted by mount(2). Whatever keeps it from being
   * attached (a kernel before 5.8 without LOOP_CONFIGURE, a missing file) leaves the
   * mount to mount(8): losetup's older way, and an error of its own naming the file.
   */
  private async mountLoop(loop: LoopMount, request: MountRequest): Promise<void> {
    let attached: { device: string; fd: number };
    try {
      attached = libc.attachLoop(loop.file, loop.readOnly);
    } catch (error) {
      this.log.debug(`${(error as Error).message}; mount(8) sets up the loop device instead`);
      await this.exec(mountArgv(request));
      return;
    }
    try {
      libc.mount(loop.call(attached.device), `${describeMount(request)} through ${attached.device}`);
    } finally {
      // autoclear: the device detaches once its filesystem is unmounted, or now if the mount failed
      libc.close(attached.fd);
    }
  }

  setCommandTimeout(ms: number): void {
    this.commandTimeoutMs = ms;
  }

  async unmount(target: string): Promise<void> {
    libc.umount(target);
    // a mount with a userspace option (x-initrd.mount) has a utab entry, which goes with it as umount(8) takes it out
    if (inUtab(readIfThere(RUN_MOUNT_UTAB), target)) await this.changeUtab((utab) => withoutUtabEntry(utab, target));
  }

  async checkFilesystem(device: BlockDevice): Promise<FilesystemCheck> {
    if (device.fsType === undefined || !/^ext[234]$/.test(device.fsType)) {
      return { clean: true, detail: `not checked: ${device.fsType ?? "unknown"} is not an ext2, ext3 or ext4 filesystem` };
    }
    const why = this.whyCheckNeeded(device.device);
    if (why === undefined) return { clean: true, detail: "clean by its superblock (unmounted cleanly, no errors, no journal to replay, no orphan inodes): e2fsck -p would stop there, so it did not run" };
    try {
      // no system call checks a filesystem: e2fsck is the checker (health.fsck; off, it does not run)
      await this.exec([TOOLS.e2fsck, "-p", device.device]);
      return { clean: true, detail: `clean after e2fsck -p, run because ${why}` };
    } catch (error) {
      // e2fsck's exit status is a bit mask: 1 and 2 say it repaired errors, 4 and up that some are left or it failed
      if (error instanceof CommandError && error.exitCode !== null && error.exitCode < 4) {
        return { clean: true, detail: `errors found and repaired by e2fsck -p (exit status ${error.exitCode}), run because ${why}` };
      }
      return { clean: false, detail: (error as Error).message };
    }
  }

  /** Why e2fsck must run on `device` (ext-superblock.ts); a superblock that cannot be read is e2fsck's to report. */
  private whyCheckNeeded(device: string): string | undefined {
    const superblock = new Uint8Array(SUPERBLOCK_BYTES);
    try {
      const fd = openSync(device, "r");
      try {
        const bytesRead = readSync(fd, superblock, 0, SUPERBLOCK_BYTES, SUPERBLOCK_OFFSET);
        return whyCheckNeeded(superblock.subarray(0, bytesRead));
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      return `its superblock could not be read (${(error as Error).message})`;
    }
  }

  async remount(target: string, readOnly: boolean): Promise<void> {
    const what = `remount ${target} ${readOnly ? "read-only" : "read-write"}`;
    const call = remountCall(readFileSync(PROC_SELF_MOUNTINFO, "utf8"), target, readOnly);
    if (call === undefined) throw new Error(`Cannot ${what}: nothing is mounted there (${PROC_SELF_MOUNTINFO})`);
    libc.mount(call, what);
  }

  async setLabel(device: BlockDevice, label: string): Promise<void> {
    if (device.fsType === undefined || !/^ext[234]$/.test(device.fsType)) {
      throw new Error(`Cannot label ${device.device}: its filesystem is ${device.fsType ?? "unknown"}, and only ext2, ext3 and ext4 slots can be relabelled`);
    }
    await this.exec([TOOLS.e2label, device.device, label]);
  }

  httpGet(url: string, options: HttpRequestOptions): Promise<HttpResponse> {
    return httpGet(url, options);
  }

  subprocesses(): readonly string[] {
    return this.started;
  }

  exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    this.started.push(argv[0] ?? "");
    return runCommand(this.log, this.commandTimeoutMs, argv, options);
  }

  async execOnConsole(argv: readonly string[]): Promise<number> {
    const tty = this.activeConsoleTty();
    this.log.debug(`exec on ${tty}: ${formatArgv(argv)}`);
    const fd = openSync(tty, "r+");
    try {
      // setsid --ctty makes the console the shell's controlling terminal, so Ctrl-C works in it
      this.started.push(TOOLS.setsid);
      const child = Bun.spawn([TOOLS.setsid, "--ctty", ...argv], { stdio: [fd, fd, fd] });
      return await child.exited;
    } finally {
      closeSync(fd);
    }
  }

  async askOnConsole(question: string, timeoutMs: number): Promise<string | undefined> {
    const tty = this.activeConsoleTty();
    const fd = openSync(tty, "r+");
    try {
      writeSync(fd, question);
      // a shell's `read` ends at the newline, and the child can be killed at the deadline; a blocking read here could not
      this.started.push(TOOLS.shell);
      const child = Bun.spawn([TOOLS.shell, "-c", 'IFS= read -r answer && printf "%s" "$answer"'], {
        stdio: [fd, "pipe", "ignore"],
        timeout: timeoutMs,
        killSignal: "SIGKILL",
      });
      const [answer, exitCode] = await Promise.all([new Response(child.stdout).text(), child.exited]);
      if (child.signalCode !== null || exitCode !== 0) {
        writeSync(fd, "\n");
        return undefined;
      }
      return answer;
    } finally {
      closeSync(fd);
    }
  }

  async startService(argv: readonly string[], logFile: string): Promise<Service> {
    this.log.debug(`start in the background: ${formatArgv(argv)} (output in ${logFile})`);
    await fs.mkdir(dirname(logFile), { recursive: true });
    const output = openSync(logFile, "a");
    let child;
    this.started.push(argv[0] ?? "");
    try {
      child = Bun.spawn([...argv], { stdio: ["ignore", output, output] });
    } catch (error) {
      throw new CommandError(argv, null, "", `it could not be started (${(error as Error).message})`);
    } finally {
      closeSync(output);
    }
    const running = child;
    // a service that dies at once (bad option, missing key) says so now, not when someone tries to use it
    const early = await Promise.race([running.exited, Bun.sleep(SERVICE_START_GRACE_MS).then(() => undefined)]);
    if (early !== undefined) {
      const tail = await fs.readFile(logFile, "utf8").catch(() => "");
      throw new CommandError(argv, early, tail, `it exited with status ${early} right after it started`);
    }
    running.unref();
    return {
      pid: running.pid,
      logFile,
      stop: async () => {
        running.kill("SIGTERM");
        const stopped = await Promise.race([running.exited, Bun.sleep(SERVICE_STOP_GRACE_MS).then(() => undefined)]);
        if (stopped === undefined) {
          running.kill("SIGKILL");
          await running.exited;
        }
      },
    };
  }

  async kexecLoad(request: KexecRequest): Promise<void> {
    await this.exec([TOOLS.kexec, "--load", request.kernel, `--initrd=${request.initrd}`, `--command-line=${request.cmdline}`]);
  }

  async kexecBoot(): Promise<void> {
    // kexec -e does not return when it works: the new kernel replaces this one at once
    await this.exec([TOOLS.kexec, "--exec"]);
  }

  async reboot(): Promise<void> {
    // no reboot tool is the same in dracut's shell and systemd initramfs; the kernel's own reset is
    await fs.writeFile(PROC_SYSRQ_TRIGGER, "b");
  }

  /** The tty behind /dev/console, found the way dracut's emergency shell finds it. */
  private activeConsoleTty(): string {
    let name = "console";
    for (let depth = 0; depth < 8; depth++) {
      let active: string;
      try {
        active = readFileSync(`/sys/class/tty/${name}/active`, "utf8").trim();
      } catch {
        break;
      }
      const last = active.split(/\s+/).at(-1);
      if (last === undefined || last === "" || last === name) break;
      name = last;
    }
    return `/dev/${name}`;
  }

  monotonicMs(): number {
    return performance.now();
  }

  wallClock(): Date {
    return new Date();
  }

  async sleep(ms: number): Promise<void> {
    await Bun.sleep(ms);
  }
}

/** fsync through a read-only descriptor: Linux syncs a file or a folder opened so (a folder: the names in it). */
function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Lines go to the kernel log and to the console. The kernel already echoes a
 * kernel-log line to the console when its level is below the console log level
 * (7 by default, 4 with `quiet`): such a line is not written to stderr a second
 * time. Without a writable /dev/kmsg everything goes to stderr, which is the
 * console in both dracut flavours (the systemd initrd's units send stderr to
 * journal+console).
 */
export class LinuxLogSink implements LogSink {
  private readonly consoleLogLevel: number;

  constructor() {
    this.consoleLogLevel = LinuxLogSink.readConsoleLogLevel();
  }

  private static readConsoleLogLevel(): number {
    try {
      return Number.parseInt(readFileSync(PROC_PRINTK, "utf8"), 10);
    } catch {
      return 0; // unknown: assume the kernel shows nothing, so stderr gets every line
    }
  }

  write(priority: number, line: string, toConsole: boolean): void {
    const echoedByKernel = this.writeKmsg(priority, line) && (priority & 7) < this.consoleLogLevel;
    if (toConsole && !echoedByKernel) writeSync(2, `${line}\n`);
  }

  /**
   * One open per line: the kernel rate-limits each open /dev/kmsg to 10 lines
   * in 5 s, and a boot says more than that in its first seconds.
   */
  private writeKmsg(priority: number, line: string): boolean {
    let fd: number | undefined;
    try {
      fd = openSync(DEV_KMSG, "w");
      // the kernel keeps at most ~1 KiB per record
      writeSync(fd, `<${priority}>${line.slice(0, 900)}\n`);
      return true;
    } catch {
      // outside an initramfs (tests, `controller status` as a user) there may be no writable /dev/kmsg
      return false;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}
