// An in-memory machine behind the System port: a file tree with mounts, block
// devices that appear over time, a clock that only moves when someone sleeps,
// and a record of every mount and command. Stage tests run on it. Mounts are
// snapshots, not live views, and nothing propagates: whether a plan works with
// the kernel's shared mounts only a QEMU boot can tell.

import { createHash } from "node:crypto";
import type { HashAlgorithm } from "../controller/system/hash-worker.ts";
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
} from "../controller/system/system.ts";

/** What the fake's network answers for one URL. */
export interface FakeHttpResource {
  readonly body: Uint8Array;
  readonly status?: number;
  /** The first `times` requests break off after this many bytes of body (a dropped connection). */
  readonly dropAfterBytes?: number;
  readonly dropTimes?: number;
  /** Answer a Range request with 200 and the whole body, as a server without Range support does. */
  readonly ignoresRange?: boolean;
}

/** A command the fake answers: return its stdout, or throw like a failed command. */
export type FakeCommand = (argv: readonly string[]) => ExecResult | Promise<ExecResult>;

/** File bytes live in the tree as latin1 strings, one char per byte, so text and binary share one node type. */
export function bytesToText(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("latin1");
}

export function textToBytes(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "latin1"));
}

/** Content for a tree: relative path → file text, or a link, a folder, or a mountable image. */
export type TreeEntry =
  | string
  | { readonly text: string; readonly mode: number }
  | { readonly symlink: string }
  | { readonly dir: true }
  | { readonly image: Tree; readonly xz?: boolean };
export type Tree = Readonly<Record<string, TreeEntry>>;

type Node =
  | { readonly type: "directory" }
  | { readonly type: "file"; readonly content: string; readonly mode?: number; readonly image?: Tree; readonly xz?: boolean }
  | { readonly type: "symlink"; readonly target: string };

export interface FakeMount {
  readonly target: string;
  readonly source: string;
  readonly fsType: string;
  readonly readOnly: boolean;
}

export interface FakeService {
  readonly argv: string[];
  readonly logFile: string;
  running: boolean;
}

export class FakeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

function normalize(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

function join(base: string, relative: string): string {
  return normalize(`${base}/${relative}`);
}

function isUnder(path: string, prefix: string): boolean {
  return prefix === "/" || path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * File contents that mount as a squashfs image, with what the image holds.
 * Shared by every fake: an image is its bytes, wherever it is copied to.
 */
const imagesByContent = new Map<string, Tree>();

export class FakeSystem implements System {
  private readonly nodes = new Map<string, Node>([["/", { type: "directory" }]]);
  private readonly devices: { device: BlockDevice; appearsAtMs: number; tree: Tree }[] = [];
  private clockMs = 0;
  /** Every mount, in order, as the machine would show it. */
  readonly mounts: FakeMount[] = [];
  /** Every mount request, in order, also those that failed. */
  readonly mountRequests: MountRequest[] = [];
  /** Every command run through exec/execOnConsole. */
  readonly commands: string[][] = [];
  readonly loadedModules: string[] = [];
  /** Mount targets (exact paths) whose mount fails, to test how stages cope. */
  readonly failingMountTargets = new Set<string>();
  /** files whose reads through openForRead fail with EIO: a disk going bad under a file */
  readonly unreadableFiles = new Set<string>();
  /** reads through openForRead, by path, the failed ones too */
  readonly readsThrough = new Map<string, number>();
  /** Mount targets whose next so many mounts fail, then work again. */
  readonly mountFailuresLeft = new Map<string, number>();
  consoleExitStatus = 0;
  /** Lines "typed" on the console, in order, one per askOnConsole. */
  readonly consoleAnswers: string[] = [];
  /** Every question askOnConsole printed. */
  readonly consoleQuestions: string[] = [];
  /** Every service started, running or stopped. */
  readonly services: FakeService[] = [];
  /** Programs whose service start fails, with the message. */
  readonly failingServices = new Map<string, string>();
  /** What kexecLoad throws, when set: a kernel that cannot be loaded. */
  kexecLoadFailure: string | undefined;
  /** The last kernel loaded with kexecLoad. */
  kexecLoaded: KexecRequest | undefined;
  /** Every kexecBoot, with what was loaded then. */
  readonly kexecBooted: KexecRequest[] = [];
  /** How often reboot() was called. */
  reboots = 0;
  /** What freeBytes answers for every filesystem. */
  freeBytesAnswer = 2 ** 40;
  commandTimeoutMs = 0;
  /** Programs the fake can run, by argv[0]; any other program fails. */
  readonly commandHandlers = new Map<string, FakeCommand>();
  /** The network: URL → what a GET answers. Another path on a known server is a 404; an unknown server refuses the connection. */
  readonly http = new Map<string, FakeHttpResource>();
  /** Every GET, as "URL" or "URL from N" for a Range request. */
  readonly httpRequests: string[] = [];
  /** Devices whose filesystem check finds errors it cannot repair, with e2fsck's message. */
  readonly brokenFilesystems = new Map<string, string>();
  /** Every label change, as "DEVICE OLD -> NEW". */
  readonly labelChanges: string[] = [];
  /** Every path syncPath synced, in order. */
  readonly syncedPaths: string[] = [];
  /** Every byte range hashed with hashOfRange, in order. */
  readonly hashedRanges: { path: string; offset: number; length: number; algorithm: HashAlgorithm }[] = [];
  /** What cpuFlags answers: none, as on a CPU without the SHA extensions, unless a test sets them. */
  cpuFlagSet: ReadonlySet<string> = new Set();

  // ---- building the machine -------------------------------------------------

  /** Adds files under a folder, creating parents. */
  addTree(base: string, tree: Tree): this {
    this.ensureDirectory(base);
    for (const [relative, entry] of Object.entries(tree)) {
      const path = join(base, relative);
      this.ensureDirectory(path.slice(0, path.lastIndexOf("/")) || "/");
      this.nodes.set(path, this.nodeFor(entry));
    }
    return this;
  }

  /** A block device whose filesystem holds `tree`, visible to blkid from `appearsAtMs` on. */
  addDevice(device: BlockDevice, tree: Tree = {}, appearsAtMs = 0): this {
    this.devices.push({ device, appearsAtMs, tree });
    return this;
  }

  /** Makes a file with exactly these bytes mountable, in every fake, as a squashfs image holding `tree`. */
  static registerImage(bytes: Uint8Array, tree: Tree): void {
    imagesByContent.set(bytesToText(bytes), tree);
  }

  /** A device as blkid sees it now (its label may have changed). */
  device(path: string): BlockDevice | undefined {
    return this.devices.find((entry) => entry.device.device === path)?.device;
  }

  /**
   * Every device as a power cut now would leave it: its label and what its
   * filesystem holds, including what was written through a mount still active.
   */
  snapshotDevices(): { device: BlockDevice; tree: Tree }[] {
    return this.devices.map((entry) => {
      const mount = this.mounts.findLast((candidate) => candidate.source === entry.device.device);
      return { device: entry.device, tree: mount === undefined ? entry.tree : this.treeOf(mount.target) };
    });
  }

  /** What a device's filesystem holds now, as written by rw mounts that were unmounted. */
  deviceTree(path: string): Tree | undefined {
    return this.devices.find((entry) => entry.device.device === path)?.tree;
  }

  /** What a path holds now: file text, "<dir>", "<symlink → x>", or undefined. */
  peek(path: string): string | undefined {
    const node = this.nodes.get(normalize(path));
    if (node === undefined) return undefined;
    if (node.type === "file") return node.content;
    return node.type === "directory" ? "<dir>" : `<symlink → ${node.target}>`;
  }

  mountAt(target: string): FakeMount | undefined {
    return this.mounts.findLast((mount) => mount.target === normalize(target));
  }

  now(): number {
    return this.clockMs;
  }

  // ---- System: files --------------------------------------------------------

  async readText(path: string): Promise<string> {
    const node = this.nodes.get(this.resolve(path, true));
    if (node === undefined) throw new FakeError("ENOENT", `no such file: ${path}`);
    if (node.type !== "file") throw new FakeError("EISDIR", `not a file: ${path}`);
    return node.content;
  }

  async writeText(path: string, content: string): Promise<void> {
    const resolved = this.resolve(path, true);
    this.requireParentDirectory(resolved);
    this.requireWritable(resolved);
    this.nodes.set(resolved, { type: "file", content });
  }

  async mkdir(path: string): Promise<void> {
    const resolved = this.resolve(path, true);
    if (this.nodes.get(resolved)?.type === "directory") return;
    this.requireWritable(resolved);
    this.ensureDirectory(resolved);
  }

  async lstat(path: string): Promise<FileInfo | undefined> {
    let resolved: string;
    try {
      resolved = this.resolve(path, false);
    } catch {
      return undefined;
    }
    const node = this.nodes.get(resolved);
    if (node === undefined) return undefined;
    const mode = node.type === "file" ? (node.mode ?? 0o644) : node.type === "directory" ? 0o755 : 0o777;
    return { type: node.type, size: node.type === "file" ? node.content.length : 0, mode };
  }

  async readdir(path: string): Promise<string[]> {
    const resolved = this.resolve(path, true);
    const node = this.nodes.get(resolved);
    if (node === undefined) throw new FakeError("ENOENT", `no such folder: ${path}`);
    if (node.type !== "directory") throw new FakeError("ENOTDIR", `not a folder: ${path}`);
    return this.children(resolved).map((child) => child.slice(resolved === "/" ? 1 : resolved.length + 1));
  }

  async readlink(path: string): Promise<string> {
    const node = this.nodes.get(this.resolve(path, false));
    if (node?.type !== "symlink") throw new FakeError("EINVAL", `not a symlink: ${path}`);
    return node.target;
  }

  async copyTree(from: string, to: string): Promise<void> {
    const source = this.resolve(from, true);
    const target = this.resolve(to, true);
    this.commands.push(["cp", "-a", `${from}/.`, `${to}/`]);
    this.requireWritable(target);
    for (const [path, node] of this.subtree(source)) {
      if (path === source) continue;
      this.nodes.set(target + path.slice(source.length), node);
    }
  }

  async decompressXz(from: string, to: string): Promise<void> {
    const node = this.nodes.get(this.resolve(from, true));
    this.commands.push(["xz", "--decompress", "--stdout", from]);
    if (node?.type !== "file" || node.xz !== true) throw new FakeError("EIO", `xz: ${from}: File format not recognized`);
    const resolved = this.resolve(to, true);
    this.requireWritable(resolved);
    this.nodes.set(resolved, { type: "file", content: node.content, ...(node.image === undefined ? {} : { image: node.image }) });
  }

  async readBytes(path: string, maxBytes: number): Promise<Uint8Array> {
    const content = await this.readText(path);
    if (content.length > maxBytes) throw new FakeError("EFBIG", `${path} has ${content.length} bytes, more than ${maxBytes}`);
    return textToBytes(content);
  }

  async *readChunks(path: string): AsyncIterable<Uint8Array> {
    const bytes = textToBytes(await this.readText(path));
    for (let offset = 0; offset < bytes.length; offset += 4096) yield bytes.subarray(offset, offset + 4096);
  }

  /** Each read sees the file as it is then, as a descriptor of a real file would; a missing file fails the open. */
  async openForRead(path: string): Promise<FileReader> {
    await this.readText(path);
    return {
      read: async (offset, length) => {
        this.readsThrough.set(path, (this.readsThrough.get(path) ?? 0) + 1);
        if (this.unreadableFiles.has(path)) throw new FakeError("EIO", `reading ${path} at byte ${offset}`);
        return textToBytes(await this.readText(path)).slice(offset, offset + length);
      },
      close: async () => {},
    };
  }

  async hashOfRange(path: string, offset: number, length: number, algorithm: HashAlgorithm): Promise<string> {
    this.hashedRanges.push({ path, offset, length, algorithm });
    const bytes = textToBytes(await this.readText(path));
    if (offset + length > bytes.length) throw new FakeError("EIO", `${path} ends at byte ${bytes.length}, before the end of bytes ${offset}–${offset + length - 1}`);
    return createHash(algorithm).update(bytes.subarray(offset, offset + length)).digest("hex");
  }

  async cpuFlags(): Promise<ReadonlySet<string>> {
    return this.cpuFlagSet;
  }

  async writeBytes(path: string, content: Uint8Array): Promise<void> {
    await this.writeText(path, bytesToText(content));
  }

  async openForWrite(path: string, offset: number): Promise<FileWriter> {
    const resolved = this.resolve(path, true);
    this.requireParentDirectory(resolved);
    this.requireWritable(resolved);
    const existing = this.nodes.get(resolved);
    if (existing !== undefined && existing.type !== "file") throw new FakeError("EISDIR", `not a file: ${path}`);
    const kept = (existing?.content ?? "").slice(0, offset).padEnd(offset, "\0");
    this.nodes.set(resolved, { type: "file", content: kept });
    let open = true;
    const append = (text: string) => {
      if (!open) throw new FakeError("EBADF", `${path} is closed`);
      const node = this.nodes.get(resolved);
      this.nodes.set(resolved, { type: "file", content: (node?.type === "file" ? node.content : "") + text });
    };
    return {
      write: async (chunk) => append(bytesToText(chunk)),
      sync: async () => append(""),
      close: async () => {
        open = false;
      },
    };
  }

  async rename(from: string, to: string): Promise<void> {
    const source = this.resolve(from, false);
    const target = this.resolve(to, false);
    const node = this.nodes.get(source);
    if (node === undefined) throw new FakeError("ENOENT", `rename: no such file: ${from}`);
    this.requireParentDirectory(target);
    this.requireWritable(source);
    this.requireWritable(target);
    const moved = this.subtree(source);
    for (const [key] of moved) this.nodes.delete(key);
    for (const [key] of this.subtree(target)) this.nodes.delete(key);
    for (const [key, child] of moved) this.nodes.set(target + key.slice(source.length), child);
  }

  async symlink(target: string, path: string): Promise<void> {
    const resolved = this.resolve(path, false);
    this.requireParentDirectory(resolved);
    this.requireWritable(resolved);
    if (this.nodes.has(resolved)) throw new FakeError("EEXIST", `symlink: ${path} exists`);
    this.nodes.set(resolved, { type: "symlink", target });
  }

  async syncPath(path: string): Promise<void> {
    if (!this.nodes.has(this.resolve(path, true))) throw new FakeError("ENOENT", `fsync: no such file: ${path}`);
    this.syncedPaths.push(normalize(path));
  }

  async remove(path: string): Promise<void> {
    const resolved = this.resolve(path, false);
    if (!this.nodes.has(resolved)) return;
    this.requireWritable(resolved);
    for (const [key] of this.subtree(resolved)) this.nodes.delete(key);
  }

  async freeBytes(_path: string): Promise<number> {
    return this.freeBytesAnswer;
  }

  // ---- System: disks and mounts ---------------------------------------------

  async listBlockDevices(): Promise<BlockDevice[]> {
    return this.devices.filter((entry) => entry.appearsAtMs <= this.clockMs).map((entry) => entry.device);
  }

  async settleDevices(timeoutMs: number): Promise<void> {
    // udev settles when the next device has appeared, or gives up at the timeout
    const next = this.devices.map((entry) => entry.appearsAtMs).filter((at) => at > this.clockMs);
    this.clockMs = Math.min(this.clockMs + timeoutMs, Math.min(...next, Number.POSITIVE_INFINITY));
  }

  async loadKernelModules(names: readonly string[]): Promise<void> {
    this.loadedModules.push(...names);
  }

  async mount(request: MountRequest): Promise<void> {
    this.mountRequests.push(request);
    const target = this.resolve(request.target, true);
    if (this.failingMountTargets.has(target)) throw new FakeError("EIO", `mount: ${target}: failed on purpose`);
    const failuresLeft = this.mountFailuresLeft.get(target) ?? 0;
    if (failuresLeft > 0) {
      this.mountFailuresLeft.set(target, failuresLeft - 1);
      throw new FakeError("EIO", `mount: ${target}: failed on purpose`);
    }
    const targetNode = this.nodes.get(target);
    if (targetNode === undefined) throw new FakeError("ENOENT", `mount: ${target}: mount point does not exist`);
    switch (request.kind) {
      case "filesystem":
        return this.mountFilesystem(request, target, targetNode);
      case "bind":
        return this.bind(this.resolve(request.source, true), target, targetNode);
    }
  }

  /**
   * The fake forgets what a mount covered: an unmounted folder is left empty.
   * A device keeps what was written to it, for its next mount.
   */
  async unmount(target: string): Promise<void> {
    const resolved = this.resolve(target, true);
    const index = this.mounts.findLastIndex((entry) => entry.target === resolved);
    if (index < 0) throw new FakeError("EINVAL", `umount: ${target}: not mounted`);
    const [mount] = this.mounts.splice(index, 1);
    const device = this.devices.find((entry) => entry.device.device === mount?.source);
    // a read-only mount cannot have changed anything; one remounted read-write for a while can
    if (device !== undefined) device.tree = this.treeOf(resolved);
    for (const [key] of this.subtree(resolved)) if (key !== resolved) this.nodes.delete(key);
  }

  async checkFilesystem(device: BlockDevice): Promise<FilesystemCheck> {
    this.commands.push(["e2fsck", "-p", device.device]);
    if (this.mounts.some((mount) => mount.source === device.device)) throw new FakeError("EBUSY", `e2fsck: ${device.device} is mounted`);
    const broken = this.brokenFilesystems.get(device.device);
    return broken === undefined ? { clean: true, detail: "clean" } : { clean: false, detail: broken };
  }

  async remount(target: string, readOnly: boolean): Promise<void> {
    const resolved = this.resolve(target, true);
    const index = this.mounts.findLastIndex((entry) => entry.target === resolved);
    const mount = this.mounts[index];
    if (mount === undefined) throw new FakeError("EINVAL", `mount: ${target}: not mounted`);
    this.commands.push(["mount", "-o", `remount,${readOnly ? "ro" : "rw"}`, target]);
    this.mounts[index] = { ...mount, readOnly };
  }

  async setLabel(device: BlockDevice, label: string): Promise<void> {
    const entry = this.devices.find((candidate) => candidate.device.device === device.device);
    if (entry === undefined) throw new FakeError("ENOENT", `e2label: ${device.device}: no such device`);
    if (this.mounts.some((mount) => mount.source === device.device)) throw new FakeError("EBUSY", `e2label: ${device.device} is mounted`);
    this.labelChanges.push(`${device.device} ${entry.device.label ?? "(none)"} -> ${label}`);
    entry.device = { ...entry.device, label };
  }

  // ---- System: network ------------------------------------------------------

  async httpGet(url: string, options: HttpRequestOptions): Promise<HttpResponse> {
    const from = options.fromByte ?? 0;
    const to = options.toByte;
    const ranged = from > 0 || to !== undefined;
    this.httpRequests.push(to !== undefined ? `${url} bytes ${from}-${to}` : from > 0 ? `${url} from ${from}` : url);
    const origin = new URL(url).origin;
    const serverKnown = [...this.http.keys()].some((known) => new URL(known).origin === origin);
    if (!serverKnown) throw new FakeError("ECONNREFUSED", `connect ECONNREFUSED ${origin}`);
    const resource = this.http.get(url) ?? { body: new Uint8Array(), status: 404 };
    const requestNumber = this.httpRequests.filter((request) => request.split(" ")[0] === url).length;
    const drops = resource.dropAfterBytes !== undefined && requestNumber <= (resource.dropTimes ?? 1);
    const status = resource.status ?? (ranged && resource.ignoresRange !== true ? 206 : 200);
    const last = Math.min(to ?? resource.body.length - 1, resource.body.length - 1);
    const body = status === 206 ? resource.body.subarray(from, last + 1) : status < 300 ? resource.body : new Uint8Array();
    const sent = drops ? body.subarray(0, resource.dropAfterBytes) : body;
    const headers: Record<string, string> = { "content-length": String(body.length) };
    if (status === 206) headers["content-range"] = `bytes ${from}-${last}/${resource.body.length}`;
    return {
      status,
      headers,
      body: (async function* () {
        for (let offset = 0; offset < sent.length; offset += 1000) yield sent.subarray(offset, offset + 1000);
        if (drops) throw new FakeError("ECONNRESET", "other side closed");
      })(),
      discard: async () => {},
    };
  }

  // ---- System: processes and clock -----------------------------------------

  setCommandTimeout(ms: number): void {
    this.commandTimeoutMs = ms;
  }

  /** Only programs a test taught the fake (commandHandlers) run; any other is a test's mistake, said loudly. */
  async exec(argv: readonly string[], _options?: ExecOptions): Promise<ExecResult> {
    this.commands.push([...argv]);
    const handler = this.commandHandlers.get(argv[0] ?? "");
    if (handler === undefined) throw new FakeError("ENOENT", `${argv[0]}: the fake does not know this program`);
    return handler(argv);
  }

  /** The programs of commands, then of services: what the Linux system would start as subprocesses. */
  subprocesses(): readonly string[] {
    return [...this.commands.map((argv) => (argv[0] === "<console>" ? argv[1] : argv[0]) ?? ""), ...this.services.map((service) => service.argv[0] ?? "")];
  }

  async execOnConsole(argv: readonly string[]): Promise<number> {
    this.commands.push(["<console>", ...argv]);
    return this.consoleExitStatus;
  }

  /** Takes the next of consoleAnswers; undefined (no answer in time) once they run out. */
  async askOnConsole(question: string, timeoutMs: number): Promise<string | undefined> {
    this.consoleQuestions.push(question);
    const answer = this.consoleAnswers.shift();
    if (answer === undefined) this.clockMs += timeoutMs;
    return answer;
  }

  /** Runs nothing: records the service, which counts as running until stopped. A program in failingServices fails to start. */
  async startService(argv: readonly string[], logFile: string): Promise<Service> {
    const failure = this.failingServices.get(argv[0] ?? "");
    if (failure !== undefined) throw new FakeError("EXIT", failure);
    const service: FakeService = { argv: [...argv], logFile, running: true };
    this.services.push(service);
    return {
      pid: 1000 + this.services.length,
      logFile,
      stop: async () => {
        service.running = false;
      },
    };
  }

  async kexecLoad(request: KexecRequest): Promise<void> {
    if (this.kexecLoadFailure !== undefined) throw new FakeError("EXIT", this.kexecLoadFailure);
    if (this.nodes.get(normalize(request.kernel))?.type !== "file") throw new FakeError("ENOENT", `${request.kernel}: no such file`);
    this.kexecLoaded = request;
  }

  /** Records the boot and returns, as if the new kernel had failed to start: a test then sees what the controller does next. */
  async kexecBoot(): Promise<void> {
    if (this.kexecLoaded === undefined) throw new FakeError("EXIT", "kexec --exec: nothing loaded");
    this.kexecBooted.push(this.kexecLoaded);
  }

  /** Counts the reboot and returns, as if the reset had not happened: a test then sees what the controller does next. */
  async reboot(): Promise<void> {
    this.reboots++;
  }

  monotonicMs(): number {
    return this.clockMs;
  }

  wallClock(): Date {
    return new Date(Date.UTC(2026, 0, 1) + this.clockMs);
  }

  async sleep(ms: number): Promise<void> {
    this.clockMs += ms;
  }

  // ---- internals -------------------------------------------------------------

  private nodeFor(entry: TreeEntry): Node {
    if (typeof entry === "string") return { type: "file", content: entry };
    if ("text" in entry) return { type: "file", content: entry.text, mode: entry.mode };
    if ("symlink" in entry) return { type: "symlink", target: entry.symlink };
    if ("dir" in entry) return { type: "directory" };
    return { type: "file", content: "<image>", image: entry.image, ...(entry.xz === undefined ? {} : { xz: entry.xz }) };
  }

  /** A folder's contents as a Tree, the inverse of nodeFor. */
  private treeOf(root: string): Tree {
    const tree: Record<string, TreeEntry> = {};
    for (const [path, node] of this.subtree(root)) {
      if (path === root) continue;
      const relative = path.slice(root.length + 1);
      if (node.type === "directory") tree[relative] = { dir: true };
      else if (node.type === "symlink") tree[relative] = { symlink: node.target };
      else if (node.image !== undefined) tree[relative] = { image: node.image, ...(node.xz === undefined ? {} : { xz: node.xz }) };
      else tree[relative] = { text: node.content, mode: node.mode ?? 0o644 };
    }
    return tree;
  }

  private ensureDirectory(path: string): void {
    let current = "";
    for (const part of normalize(path).split("/").filter(Boolean)) {
      current += `/${part}`;
      const node = this.nodes.get(current);
      if (node === undefined) this.nodes.set(current, { type: "directory" });
      else if (node.type !== "directory") throw new FakeError("ENOTDIR", `not a folder: ${current}`);
    }
  }

  /** Follows symlinks the way the kernel does: absolute ones from /, relative ones from their folder. */
  private resolve(path: string, followLast: boolean): string {
    let pending = normalize(path).split("/").filter(Boolean);
    let current = "/";
    for (let hops = 0; pending.length > 0; ) {
      const part = pending.shift() as string;
      const candidate = join(current, part);
      const node = this.nodes.get(candidate);
      const isLast = pending.length === 0;
      if (node?.type === "symlink" && (!isLast || followLast)) {
        if (++hops > 40) throw new FakeError("ELOOP", `too many symlinks in ${path}`);
        const base = node.target.startsWith("/") ? "/" : current;
        pending = [...join(base, node.target).split("/").filter(Boolean), ...pending];
        current = "/";
        continue;
      }
      if (!isLast && node !== undefined && node.type !== "directory") throw new FakeError("ENOTDIR", `not a folder in ${path}`);
      current = candidate;
    }
    return current;
  }

  private requireParentDirectory(path: string): void {
    const parent = path.slice(0, path.lastIndexOf("/")) || "/";
    if (this.nodes.get(parent)?.type !== "directory") throw new FakeError("ENOENT", `no such folder: ${parent}`);
  }

  private requireWritable(path: string): void {
    const mount = this.mounts.filter((entry) => isUnder(path, entry.target)).at(-1);
    if (mount?.readOnly === true) throw new FakeError("EROFS", `read-only file system: ${path}`);
  }

  private children(path: string): string[] {
    const prefix = path === "/" ? "/" : `${path}/`;
    return [...this.nodes.keys()].filter((key) => key.startsWith(prefix) && key !== path && !key.slice(prefix.length).includes("/"));
  }

  private subtree(path: string): [string, Node][] {
    return [...this.nodes.entries()].filter(([key]) => isUnder(key, path));
  }

  private replaceSubtree(target: string, tree: [string, Node][]): void {
    for (const [key] of this.subtree(target)) if (key !== target) this.nodes.delete(key);
    for (const [key, node] of tree) this.nodes.set(key, node);
  }

  private mountFilesystem(request: Extract<MountRequest, { kind: "filesystem" }>, target: string, targetNode: Node): void {
    if (targetNode.type !== "directory") throw new FakeError("ENOTDIR", `mount: ${target}: not a folder`);
    let tree: Tree;
    if (request.fsType === "tmpfs") tree = {};
    else if (request.options.includes("loop")) {
      const image = this.nodes.get(this.resolve(request.source, true));
      const imageTree = image?.type === "file" && image.xz !== true ? (image.image ?? imagesByContent.get(image.content)) : undefined;
      if (imageTree === undefined) throw new FakeError("EINVAL", `mount: ${request.source}: wrong fs type, bad option, bad superblock`);
      tree = imageTree;
    } else {
      const device = this.devices.find((entry) => entry.device.device === request.source && entry.appearsAtMs <= this.clockMs);
      if (device === undefined) throw new FakeError("ENOENT", `mount: ${request.source}: special device does not exist`);
      if (device.device.fsType !== request.fsType) throw new FakeError("EINVAL", `mount: ${request.source}: wrong fs type`);
      tree = device.tree;
    }
    const nodes: [string, Node][] = [[target, { type: "directory" }]];
    for (const [relative, entry] of Object.entries(tree)) {
      const path = join(target, relative);
      for (let parent = path.slice(0, path.lastIndexOf("/")); isUnder(parent, target) && parent !== target; parent = parent.slice(0, parent.lastIndexOf("/")))
        nodes.push([parent, { type: "directory" }]);
      nodes.push([path, this.nodeFor(entry)]);
    }
    this.replaceSubtree(target, nodes);
    const readOnly = request.options.includes("ro") || request.fsType === "squashfs";
    this.mounts.push({ target, source: request.source, fsType: request.fsType, readOnly });
  }

  private bind(source: string, target: string, targetNode: Node): void {
    const sourceNode = this.nodes.get(source);
    if (sourceNode === undefined) throw new FakeError("ENOENT", `mount: ${source}: no such file`);
    if ((sourceNode.type === "directory") !== (targetNode.type === "directory"))
      throw new FakeError("ENOTDIR", `mount: ${source} and ${target} must both be folders or both files`);
    this.replaceSubtree(target, this.subtree(source).map(([key, node]) => [target + key.slice(source.length), node]));
    const sourceMount = this.mounts.filter((entry) => isUnder(source, entry.target)).at(-1);
    this.mounts.push({ target, source, fsType: "bind", readOnly: sourceMount?.readOnly ?? false });
  }
}
