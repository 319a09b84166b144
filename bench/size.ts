// The size benchmark: the controller binary, the initramfs with and without
// the dracut module (compressed, and unpacked: the RAM its files take at run
// time), and what bun's build options change in size, start-up time and
// memory. Builds into build/bench/size, never over dist/ or build/initramfs.

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { fixed, median, MiB, percentile, progress, table } from "./lib.ts";

const REPO = resolve(import.meta.dir, "..");
const SHIPPED = join(REPO, "dist/controller");
const WORK = join(REPO, "build/bench/size");
const KERNEL_MODULES = join(REPO, "build/kernel/root/lib/modules");
/** dracut --zstd compresses with these zstd options (/usr/bin/dracut); the binary alone is compressed alike. */
const DRACUT_ZSTD = ["-15", "-T0"];
/** start-ups measured per variant, after a few unmeasured ones that warm the page cache */
const WARMUPS = 3;
const RUNS = 30;

interface Variant {
  /** bun build options in place of the shipped ones; none: as shipped */
  readonly options?: readonly string[];
  /** why it is in the table */
  readonly why: string;
}

const VARIANTS: readonly Variant[] = [
  { why: "scripts/build-controller as it is" },
  { options: [], why: "no size or speed option" },
  { options: ["--minify"], why: "less source to parse" },
  { options: ["--bytecode"], why: "parsed ahead of time (bun's default format for it is cjs)" },
  { options: ["--bytecode", "--format=esm"], why: "the same, as an ES module (main.ts awaits at top level)" },
  { options: ["--minify", "--bytecode", "--format=esm"], why: "both" },
];

/** The initramfs flavours of scripts/build-initramfs, with the dracut options that make them. */
const FLAVOURS = {
  shell: ["--omit", "systemd systemd-initrd dracut-systemd"],
  systemd: [],
} as const satisfies Record<string, readonly string[]>;

/** The module's settings an image is built with (dracut-module/90controller/module-setup.sh). */
interface ModuleSettings {
  readonly name: string;
  /** controller_services */
  readonly services: string;
  /** controller_early_cpio */
  readonly early: boolean;
}

/** The module before issue 15 (every service), with only ssh, its defaults now (no service), and with the binary in the early cpio. */
const BEFORE: ModuleSettings = { name: "before: services ssh lldpd", services: "ssh lldpd", early: false };
const SSH_ONLY: ModuleSettings = { name: "services ssh", services: "ssh", early: false };
const DEFAULTS: ModuleSettings = { name: "**defaults now**: no services", services: "", early: false };
const EARLY: ModuleSettings = { name: "no services, binary in the early cpio", services: "", early: true };
const IMAGES: readonly { readonly flavour: keyof typeof FLAVOURS; readonly settings: readonly ModuleSettings[] }[] = [
  { flavour: "shell", settings: [BEFORE, SSH_ONLY, DEFAULTS, EARLY] },
  { flavour: "systemd", settings: [BEFORE, DEFAULTS] },
];

// ---- subprocesses

function commandLine(command: readonly string[]): string {
  return command.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`)).join(" ");
}

interface Ran {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly maxRssBytes: number;
}

/** Runs a command to its end; never throws for its exit status (see mustRun). */
function run(command: readonly string[], env?: Record<string, string>): Ran {
  const start = Bun.nanoseconds();
  const result = Bun.spawnSync([...command], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const wallMs = (Bun.nanoseconds() - start) / 1e6;
  const usage = result.resourceUsage;
  return {
    stdout: result.stdout.toString(),
    stderr: result.stderr.toString(),
    exitCode: result.exitCode ?? -1,
    wallMs,
    cpuMs: Number(usage.cpuTime.total) / 1000,
    maxRssBytes: usage.maxRSS,
  };
}

function mustRun(command: readonly string[], env?: Record<string, string>): Ran {
  const ran = run(command, env);
  if (ran.exitCode !== 0) {
    throw new Error(`Cannot run ${commandLine(command)}: its exit status is ${ran.exitCode}\n${ran.stderr.trim()}`);
  }
  return ran;
}

// ---- sizes

function sizeOf(path: string): number {
  return statSync(path).size;
}

/** The size of a file once zstd compresses it the way dracut compresses an initramfs. */
function zstdSize(path: string): number {
  const compressed = `${path}.zst`;
  mustRun(["zstd", ...DRACUT_ZSTD, "-q", "-f", "-o", compressed, path]);
  const size = sizeOf(compressed);
  rmSync(compressed);
  return size;
}

function mib(bytes: number): string {
  return fixed(bytes / MiB, 1);
}

function percent(part: number, whole: number): string {
  return `${fixed((100 * part) / whole, 0)} %`;
}

// ---- the initramfs, unpacked

interface CpioFile {
  readonly name: string;
  readonly mode: number;
  readonly data: Uint8Array;
}

const NEWC_MAGIC = "070701";
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/**
 * The regular files of an initramfs as the kernel unpacks it: its uncompressed
 * cpio archives (early microcode) and then the zstd-compressed main one, read
 * here rather than with cpio(1) so that no file lands on this machine's disk.
 */
function initramfsFiles(path: string): CpioFile[] {
  const files: CpioFile[] = [];
  let data: Uint8Array = readFileSync(path);
  let offset = 0;
  for (;;) {
    // archives are padded with NULs to a 4-byte boundary, as the kernel expects
    while (offset < data.length && data[offset] === 0) offset++;
    if (offset >= data.length) return files;
    if (ZSTD_MAGIC.every((byte, i) => data[offset + i] === byte)) {
      data = Bun.zstdDecompressSync(data.subarray(offset));
      offset = 0;
    } else if (ascii(data, offset, 6) === NEWC_MAGIC) {
      offset = readCpio(data, offset, files);
    } else {
      throw new Error(`Cannot read ${path}: at byte ${offset} there is neither a cpio (newc) archive nor zstd data`);
    }
  }
}

function ascii(data: Uint8Array, offset: number, length: number): string {
  return Buffer.from(data.buffer, data.byteOffset + offset, length).toString("latin1");
}

function align4(offset: number): number {
  return (offset + 3) & ~3;
}

/** Reads one newc archive from offset up to its trailer; returns the offset after it. */
function readCpio(data: Uint8Array, offset: number, files: CpioFile[]): number {
  for (;;) {
    if (ascii(data, offset, 6) !== NEWC_MAGIC) {
      throw new Error(`Cannot read the initramfs's cpio archive: at byte ${offset} there is no newc header`);
    }
    // 13 fields of 8 hex digits after the magic; hard links carry their data once, on the last link
    const field = (index: number) => Number.parseInt(ascii(data, offset + 6 + 8 * index, 8), 16);
    const mode = field(1);
    const fileSize = field(6);
    const nameSize = field(11);
    const name = ascii(data, offset + 110, nameSize - 1).replace(/^\.?\//, "");
    const dataStart = align4(offset + 110 + nameSize);
    if (name === "TRAILER!!!") return align4(dataStart + fileSize);
    if ((mode & S_IFMT) === S_IFREG) files.push({ name, mode, data: data.subarray(dataStart, dataStart + fileSize) });
    offset = align4(dataStart + fileSize);
  }
}

// ---- building

/** Builds a controller by scripts/build-controller, as shipped or with these bun build options in place of the shipped ones. */
function buildController(outfile: string, options: readonly string[] | undefined): Ran {
  return run(["bash", join(REPO, "scripts/build-controller"), "--outfile", outfile, ...(options === undefined ? [] : ["--", ...options])]);
}

function label(variant: Variant): string {
  if (variant.options === undefined) return "as shipped";
  return variant.options.length === 0 ? "(none)" : variant.options.join(" ");
}

function kernelRelease(): string {
  const releases = new Bun.Glob("*").scanSync({ cwd: KERNEL_MODULES, onlyFiles: false });
  const [release] = [...releases];
  if (release === undefined) throw new Error(`Cannot build an initramfs: ${KERNEL_MODULES} is empty; run scripts/setup`);
  return release;
}

/**
 * The dracut call of scripts/build-initrd (a private copy of dracut with the module
 * linked in, generic) with its default compression, zstd, the module's documented
 * default (the test images are lz4), with the module and these settings, or without it.
 */
function buildInitramfs(base: string, output: string, flavour: readonly string[], settings: ModuleSettings | undefined): void {
  const release = kernelRelease();
  const command = [
    "dracut", "--quiet", "--force", "--no-hostonly", "--zstd",
    "--kver", release, "--kmoddir", join(KERNEL_MODULES, release),
    ...(settings === undefined ? [] : ["--add", "controller"]), "--omit", "crypt", ...flavour, output,
  ];
  mustRun(command, {
    dracutbasedir: base,
    controller_binary: SHIPPED,
    controller_config_dir: join(REPO, "config.d"),
    controller_services: settings?.services ?? "",
    controller_early_cpio: settings?.early === true ? "yes" : "no",
  });
}

function dracutBase(): string {
  const base = mkdtempSync(join(WORK, "dracut-base."));
  mustRun(["cp", "-a", "/usr/lib/dracut/.", base]);
  symlinkSync(join(REPO, "dracut-module/90controller"), join(base, "modules.d/90controller"));
  return base;
}

// ---- the sections

interface Image {
  readonly compressed: number;
  readonly files: readonly CpioFile[];
  readonly unpacked: number;
}

function measureImage(path: string): Image {
  const files = initramfsFiles(path);
  return { compressed: sizeOf(path), files, unpacked: files.reduce((sum, file) => sum + file.data.length, 0) };
}

/** Says how dracut installed the controller: unstripped (identical to the binary given) and without execute bits. */
function installedController(image: Image, binary: Uint8Array): string {
  const installed = image.files.find((file) => file.name === "usr/bin/controller");
  if (installed === undefined) return "**missing**";
  const same = Buffer.compare(installed.data, binary) === 0 ? "identical to dist/controller" : "**differs from dist/controller (stripped?)**";
  return `${same}, mode ${(installed.mode & 0o7777).toString(8)}`;
}

function initramfsSection(): string {
  const base = dracutBase();
  const binary = readFileSync(SHIPPED);
  const rows: string[][] = [];
  const notes: string[] = [];
  try {
    for (const { flavour, settings } of IMAGES) {
      const build = (name: string, moduleSettings: ModuleSettings | undefined): Image => {
        const output = join(WORK, `${flavour}-${name}.img`);
        progress(`dracut: building ${output}`);
        buildInitramfs(base, output, FLAVOURS[flavour], moduleSettings);
        const image = measureImage(output);
        rmSync(output);
        return image;
      };
      const without = build("without-module", undefined);
      settings.forEach((setting, index) => {
        const image = build(`module-${index}`, setting);
        const modules = image.files.filter((file) => /^(usr\/)?lib\/modules\//.test(file.name)).reduce((sum, file) => sum + file.data.length, 0);
        rows.push([
          flavour, setting.name,
          mib(image.compressed), mib(image.compressed - without.compressed),
          mib(image.unpacked), mib(image.unpacked - without.unpacked),
          percent(binary.length, image.unpacked), mib(modules),
          `${image.files.length} / ${without.files.length}`,
        ]);
        notes.push(`- ${flavour}, ${setting.name}: /usr/bin/controller in the image is ${installedController(image, binary)}.`);
      });
      rows.push([flavour, "without the module", mib(without.compressed), "", mib(without.unpacked), "", "", "", String(without.files.length)]);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  return [
    table(
      ["flavour", "module's settings", "image (MiB)", "module's cost (MiB)", "unpacked (MiB)", "module's cost unpacked (MiB)", "controller's share of unpacked", "kernel modules (MiB)", "files / without the module"],
      rows,
    ),
    "",
    ...notes,
  ].join("\n");
}

interface Built {
  readonly variant: Variant;
  readonly path: string;
  readonly error?: string;
}

const CHECKS: readonly (readonly string[])[] = [["version"], ["help"], ["config-get", join(REPO, "config.d"), "update.ca_bundle"]];

/** Whether a binary answers the cheap subcommands exactly as the shipped one does. */
function works(path: string, expected: readonly string[]): string {
  const wrong = CHECKS.filter((check, i) => {
    const ran = run([path, ...check]);
    return ran.exitCode !== 0 || ran.stdout !== expected[i];
  });
  return wrong.length === 0 ? "yes" : `**no**: ${wrong.map((check) => check[0]).join(", ")}`;
}

/** What a strip (as dracut's, when the module's guard fails) leaves of it: the shipped answer to `version`, or plain bun. */
function afterStrip(path: string, version: string): string {
  const stripped = `${path}.stripped`;
  copyFileSync(path, stripped);
  mustRun(["strip", stripped]);
  const ran = run([stripped, "version"]);
  rmSync(stripped);
  return ran.exitCode === 0 && ran.stdout === version ? "still works" : "program lost (plain bun)";
}

/** Start-ups of every binary, taken in turns so that a busy moment of a shared machine hits them all alike. */
function startups(paths: readonly string[]): Ran[][] {
  const runs: Ran[][] = paths.map(() => []);
  for (let round = 0; round < WARMUPS + RUNS; round++) {
    paths.forEach((path, i) => {
      const ran = mustRun([path, "version"]);
      if (round >= WARMUPS) runs[i]?.push(ran);
    });
  }
  return runs;
}

function variantsSection(): string {
  const built: Built[] = VARIANTS.map((variant, i) => {
    const path = join(WORK, `controller-${i}`);
    progress(`building ${path}: ${label(variant)}`);
    const ran = buildController(path, variant.options);
    const error = ran.stderr.split("\n").find((line) => /error:/i.test(line))?.trim() ?? `exit status ${ran.exitCode}`;
    return ran.exitCode === 0 ? { variant, path } : { variant, path, error };
  });
  const candidates = built.filter((b) => b.error === undefined);
  const [shipped] = candidates;
  const plain = candidates.find((b) => b.variant.options?.length === 0);
  if (shipped === undefined || shipped.variant.options !== undefined || plain === undefined) {
    throw new Error(`Cannot compare build options: the shipped build or the one without options failed: ${built.map((b) => b.error ?? "").join(" ")}`);
  }
  // the answers of the build without options are the right ones
  const expected = CHECKS.map((check) => mustRun([plain.path, ...check]).stdout);
  progress(`start-ups: ${RUNS} of each of ${candidates.length} binaries, in turns`);
  const runs = startups(candidates.map((c) => c.path));
  const shippedSize = sizeOf(shipped.path);
  const shippedStart = median((runs[0] ?? []).map((r) => r.wallMs));
  const rows = candidates.map((candidate, i) => {
    progress(`measuring ${candidate.path}`);
    const samples = runs[i] ?? [];
    const wall = samples.map((r) => r.wallMs);
    const size = sizeOf(candidate.path);
    return [
      label(candidate.variant), candidate.variant.why,
      mib(size), `${size - shippedSize >= 0 ? "+" : ""}${mib(size - shippedSize)}`, mib(zstdSize(candidate.path)),
      fixed(median(wall), 0), fixed(percentile(wall, 90), 0), percent(median(wall), shippedStart),
      fixed(median(samples.map((r) => r.cpuMs)), 0), mib(median(samples.map((r) => r.maxRssBytes))),
      works(candidate.path, expected), afterStrip(candidate.path, expected[0] ?? ""),
    ];
  });
  const failed = built.filter((b) => b.error !== undefined).map((b) => `- \`${label(b.variant)}\` does not build: \`${b.error}\``);
  return [
    table(
      ["bun build options", "why", "binary (MiB)", "vs shipped (MiB)", "zstd -15 (MiB)", "start, median (ms)", "p90 (ms)", "of shipped", "CPU, median (ms)", "peak RSS (MiB)", "works", "after strip"],
      rows,
    ),
    "",
    ...failed,
  ].join("\n");
}

function main(): void {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  let variants: string;
  let initramfs: string;
  try {
    variants = variantsSection();
    initramfs = initramfsSection();
  } finally {
    // the binaries and images take the best part of a GiB
    rmSync(WORK, { recursive: true, force: true });
  }
  const commit = mustRun([SHIPPED, "version"]).stdout.trim();
  process.stdout.write(`## Size

What the controller costs a machine: the compiled binary, the initramfs dracut
builds with it and the RAM its files take once the kernel has unpacked it.
Measured on ${commit} (\`dist/controller\`, built by \`scripts/build-controller\` for
\`bun-linux-x64-baseline\`), the kernel in build/kernel.

### The initramfs

Both flavours of \`scripts/build-initramfs\`, built again into build/bench/size
by the same dracut call (generic, \`--zstd\`, which is \`zstd ${DRACUT_ZSTD.join(" ")}\`,
dracut's strip included), without the module and with it in several settings:
as it was before issue 15 (\`controller_services="ssh lldpd"\`), with ssh
only, with its defaults now (no services), and with the binary alone in
dracut's early uncompressed cpio (\`controller_early_cpio=yes\`, which the
kernel copies instead of decompressing: the boot benchmark times it).
*Image* is the file a PXE boot fetches; *unpacked* is the apparent size of
every regular file in the image's cpio archives (read and decompressed here,
hard links counted once): what the files take in the kernel's rootfs, which is
RAM, for as long as the initramfs runs (the image itself is in RAM too until
the kernel has unpacked it). The module's cost is the controller binary plus
what the module installs (busybox, kexec, its kernel modules, the services
asked for and the libraries they need): lldpd's come to about 42 MB unpacked
(net-snmp, libperl, libxml2, ICU's data).

${initramfs}

### Build options

Each variant is built by \`scripts/build-controller --outfile FILE -- OPTIONS...\`
(the shipped call with OPTIONS in place of the shipped ones) into build/bench/size.
*Start* is the wall time of \`controller version\` from spawn to exit, ${RUNS} runs
of each after ${WARMUPS} warm-ups, every binary in turn, page cache warm; *CPU* is
user + system time of the same runs (steadier than wall time on a busy machine) and *peak RSS* their maximum resident set
(the kernel's rusage of each run, medians). Bun parses and runs the whole
bundle before \`main\` looks at its arguments, so this start is the start of
\`controller boot\` too. *Works*: \`version\`, \`help\` and \`config-get\` (which
dracut's module-setup runs) answer exactly as the build without options does. *After
strip*: what \`strip\` leaves of it: a compiled bun program lives after the ELF
sections, so dracut's strip would leave plain bun; the module installs the
binary without execute bits so that dracut's strip passes it by (the
initramfs table above checks it arrived unstripped).

${variants}
`);
}

main();
