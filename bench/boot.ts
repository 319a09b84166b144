// Boot overhead: the test system image on the standard scenario disk, booted
// (a) through the controller (no update server configured) and (b) by dracut's
// own dmsquash-live module (root=live:LABEL=SYSFS, rd.live.dir and
// rd.live.squashimg naming the same file on the same partition), same kernel,
// same QEMU settings (the harness's: TCG, Nehalem with RDRAND, one CPU), interleaved.
// (b) comes in two initramfs images: dracut's plain one, which is what a
// machine without the controller boots and what the goal is judged on, and
// one that also carries the controller module, unused, which costs the same
// kernel unpack time as (a) and so isolates the controller's run.
// (a) also boots from the controller's initramfs in each layout the module can
// be built with: dracut's compressors that Debian's kernel unpacks, and the
// controller binary alone in the early uncompressed cpio (controller_early_cpio),
// for the unpack time each costs and the image size a PXE boot fetches.
// The figure is the guest's uptime when the test system's init prints its first
// line (test/image/init puts /proc/uptime on it).

import { mkdir, mkdtemp, rm, stat, symlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { BootReport } from "../controller/boot/report.ts";
import { runCommand } from "../qemu-harness/command.ts";
import { parseTestMarkers } from "../qemu-harness/test-markers.ts";
import { type Vm, type VmOptions, withVm } from "../qemu-harness/vm.ts";
import { ARTIFACTS, BOOT_TIMEOUT_MS, scenarioDisks } from "../test/qemu/fixtures.ts";
import { fixed, goal, median, MiB, progress, runsFrom, table, transferSeconds } from "./lib.ts";

const REPO = resolve(import.meta.dir, "..");
const BUILD = join(REPO, "build");
const BENCH_DIR = join(BUILD, "bench");
const KERNEL_DIR = join(BUILD, "kernel");
const SYSTEM_DRACUT = "/usr/lib/dracut";
const DMSQUASH_MODULE = join(SYSTEM_DRACUT, "modules.d/90dmsquash-live");
/** Boots of each variant: 5 as the issue asks, fewer (RUNS=2) for a quick look while developing. */
const RUNS = runsFrom(process.env.RUNS, 5);
const GOAL_RATIO = 1.1;
/** PXE links whose fetch time of each image the layouts table gives, in bit/s. */
const LINKS = [
  { name: "100 Mbit/s", bitsPerSecond: 100e6 },
  { name: "1 Gbit/s", bitsPerSecond: 1e9 },
] as const;
/** The shell flavour, as scripts/build-initramfs builds shell.img: the same for every variant. */
const SHELL_FLAVOUR = ["--omit", "systemd systemd-initrd dracut-systemd"];
// rd.live.overlay.overlayfs: the image is a root filesystem itself (no LiveOS/rootfs.img in it); dracut's
// shell flavour mounts it under a tmpfs overlay only when told so, and otherwise waits for a root it never gets
const LIVE_CMDLINE = "root=live:LABEL=SYSFS rd.live.dir=/ rd.live.squashimg=system.squashfs rd.live.overlay.overlayfs=1";
/** The kernel's line once it has unpacked the initramfs: the initramfs's size costs time up to here. */
const INITRD_FREED = /\[\s*(\d+\.\d+)\] Freeing initrd memory/;
/** test/image/init's first line. */
const INIT_STARTED = /@@TEST init-started path=\S+ pid=\d+ uptime=(\d+(?:\.\d+)?)/;

/**
 * A way to build the controller's initramfs: dracut's compression options (dracut 059
 * runs `zstd -15 -q -T0` for --zstd, `lz4 -l -9`, `xz --check=crc32 --lzma2=dict=1MiB -T0`;
 * --compress takes the command as it is) and the module's controller_early_cpio.
 */
interface Layout {
  readonly name: string;
  readonly compress: readonly string[];
  readonly early: boolean;
}

/**
 * What the module ships by default: (a) itself. Built here, since the test images of
 * scripts/build-initramfs are lz4 (they unpack sooner under TCG, on every test boot).
 */
const SHIPPED_LAYOUT: Layout = { name: "zstd -15", compress: ["--zstd"], early: false };
const OTHER_LAYOUTS: readonly Layout[] = [
  { name: "early cpio + zstd -15", compress: ["--zstd"], early: true },
  { name: "zstd -3", compress: ["--compress", "zstd -3 -q -T0"], early: false },
  { name: "zstd -19", compress: ["--compress", "zstd -19 -q -T0"], early: false },
  { name: "lz4", compress: ["--lz4"], early: false },
  { name: "xz", compress: ["--xz"], early: false },
  { name: "uncompressed", compress: ["--no-compress"], early: false },
];

type VariantName = string;

interface Variant {
  readonly name: VariantName;
  readonly what: string;
  readonly initrd: string;
  /** after "console=ttyS0 panic=-1" */
  readonly cmdline: string;
  /** whether the controller runs, and so writes a report to read */
  readonly reports: boolean;
}

interface Boot {
  readonly variant: VariantName;
  /** guest uptime when the real init printed its first line */
  readonly initSeconds: number;
  /** guest uptime when the kernel had unpacked the initramfs */
  readonly unpackedSeconds: number;
  readonly controller?: ControllerTimes;
}

interface ControllerTimes {
  /** guest uptime when `controller boot` started, after bun's own start */
  readonly startedAtSeconds: number;
  readonly totalMs: number;
  readonly stages: ReadonlyMap<string, number>;
}

/** True when `output` is missing or older than any of `inputs` (files or folders, looked at recursively). */
async function stale(output: string, inputs: readonly string[]): Promise<boolean> {
  const built = await stat(output).then((info) => info.mtimeMs, () => undefined);
  if (built === undefined) return true;
  for (const input of inputs) {
    const newer = await runCommand(["find", input, "-newer", output, "-print", "-quit"]);
    if (newer.stdout.trim() !== "") return true;
  }
  return false;
}

async function kernelRelease(): Promise<string> {
  const { stdout } = await runCommand(["ls", join(KERNEL_DIR, "root/lib/modules")]);
  const release = stdout.trim().split("\n")[0];
  if (release === undefined || release === "") throw new Error(`Cannot find the kernel release: ${KERNEL_DIR}/root/lib/modules is empty; run scripts/setup`);
  return release;
}

/** dracut as scripts/build-initramfs runs it (generic, the kernel in build/kernel), compressed as `compress` says, into `output`. */
async function dracut(output: string, compress: readonly string[], extra: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<void> {
  const release = await kernelRelease();
  const argv = [
    "env",
    ...Object.entries(env).map(([key, value]) => `${key}=${value}`),
    "dracut",
    "--quiet",
    "--force",
    "--no-hostonly",
    ...compress,
    "--kver",
    release,
    "--kmoddir",
    join(KERNEL_DIR, "root/lib/modules", release),
    ...SHELL_FLAVOUR,
    ...extra,
    `${output}.tmp`,
  ];
  progress(`building ${output}`);
  await runCommand(argv);
  await runCommand(["mv", `${output}.tmp`, output]);
}

/** dracut's plain initramfs with dmsquash-live: what a machine without the controller boots. */
async function buildLive(output: string): Promise<void> {
  await dracut(output, ["--zstd"], ["--add", "dmsquash-live"]);
}

/** Runs `build` with a private copy of dracut that has the module linked in, as scripts/build-initrd does. */
async function withModule(build: (base: string) => Promise<void>): Promise<void> {
  const base = await mkdtemp(join(BENCH_DIR, "dracut-base."));
  try {
    await runCommand(["cp", "-a", `${SYSTEM_DRACUT}/.`, base]);
    await symlink(join(REPO, "dracut-module/90controller"), join(base, "modules.d/90controller"));
    await build(base);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/** The module's settings as scripts/build-initrd gives them, with the layout's controller_early_cpio. */
function moduleEnv(base: string, early: boolean): Record<string, string> {
  return {
    dracutbasedir: base,
    controller_binary: ARTIFACTS.controller,
    controller_config_dir: join(REPO, "config.d"),
    controller_early_cpio: early ? "yes" : "no",
  };
}

/** shell.img's content plus dmsquash-live: as large as (a)'s, the controller idle. */
async function buildLiveWithController(output: string): Promise<void> {
  await withModule((base) => dracut(output, SHIPPED_LAYOUT.compress, ["--add", "controller dmsquash-live"], moduleEnv(base, SHIPPED_LAYOUT.early)));
}

/** shell.img's content in another layout. */
async function buildLayout(output: string, layout: Layout): Promise<void> {
  await withModule((base) => dracut(output, layout.compress, ["--add", "controller", "--omit", "crypt"], moduleEnv(base, layout.early)));
}

function layoutFile(layout: Layout): string {
  return join(BENCH_DIR, `layout-${layout.name.replaceAll(/[^a-z0-9]+/g, "-")}.img`);
}

/** The (b) images and the other layouts of (a), built once and reused while their inputs are unchanged. */
async function benchImages(): Promise<{ live: string; liveWithController: string }> {
  await stat(DMSQUASH_MODULE).catch(() => {
    throw new Error(`Cannot build the dmsquash-live initramfs: ${DMSQUASH_MODULE} is missing; install Debian's dracut-live`);
  });
  await mkdir(BENCH_DIR, { recursive: true });
  const live = join(BENCH_DIR, "live.img");
  const liveWithController = join(BENCH_DIR, "live-controller.img");
  const common = [join(KERNEL_DIR, "package"), DMSQUASH_MODULE];
  if (await stale(live, common)) await buildLive(live);
  const controllerInputs = [...common, ARTIFACTS.controller, join(REPO, "dracut-module"), join(REPO, "config.d")];
  if (await stale(liveWithController, controllerInputs)) await buildLiveWithController(liveWithController);
  for (const layout of [SHIPPED_LAYOUT, ...OTHER_LAYOUTS]) {
    if (await stale(layoutFile(layout), controllerInputs)) await buildLayout(layoutFile(layout), layout);
  }
  return { live, liveWithController };
}

function controllerTimes(report: BootReport): ControllerTimes {
  if (report.kernelUptimeAtStart === undefined) throw new Error("Cannot time the controller: its report has no kernelUptimeAtStart");
  return {
    startedAtSeconds: report.kernelUptimeAtStart,
    totalMs: Date.parse(report.finishedAt) - Date.parse(report.startedAt),
    stages: new Map(report.stages.map((timing) => [timing.stage, timing.durationMs])),
  };
}

/** One boot to the init's first line (and, for the controller, its report); QEMU is killed then. */
async function boot(variant: Variant, disk: string): Promise<Boot> {
  // the bzImage entry, as a real machine boots: the tests' PVH entry (qemu-harness/pvh-kernel.ts) would leave out the kernel's decompression
  const options: VmOptions = { kernel: ARTIFACTS.kernel, kernelEntry: "bzimage", initrd: variant.initrd, append: `console=ttyS0 panic=-1 ${variant.cmdline}`, disks: [disk] };
  return withVm(options, async (vm: Vm) => {
    try {
      const started = await vm.waitFor(INIT_STARTED, BOOT_TIMEOUT_MS);
      const initSeconds = Number(started[1]);
      const unpacked = INITRD_FREED.exec(vm.console());
      if (unpacked === null) throw new Error("Cannot time the initramfs unpack: the kernel's \"Freeing initrd memory\" line is not on the console");
      const times = { variant: variant.name, initSeconds, unpackedSeconds: Number(unpacked[1]) };
      if (!variant.reports) return times;
      const reportEnd = await vm.waitFor("@@REPORT-END", BOOT_TIMEOUT_MS);
      // only up to the report: the init's later blocks are still being printed when QEMU is killed
      const markers = parseTestMarkers(vm.console().slice(0, reportEnd.index + reportEnd[0].length));
      if (markers.reportState !== "printed") throw new Error(`Cannot read the controller's report: the init says it is ${markers.reportState}`);
      return { ...times, controller: controllerTimes(markers.report as BootReport) };
    } catch (error) {
      progress(`boot of ${variant.name} failed; QEMU command line: ${vm.commandLine}`);
      throw error;
    }
  });
}

async function sizeMiB(path: string): Promise<string> {
  return fixed((await stat(path)).size / MiB, 1);
}

function medianOf(boots: readonly Boot[], name: VariantName, figure: (boot: Boot) => number | undefined): number {
  const values = boots.filter((b) => b.variant === name).flatMap((b) => {
    const value = figure(b);
    return value === undefined ? [] : [value];
  });
  return median(values);
}

function layoutVariant(layout: Layout): Variant {
  return { name: `controller, ${layout.name}`, what: `(a) in the layout ${layout.name}`, initrd: layoutFile(layout), cmdline: "root=controller", reports: true };
}

async function main(): Promise<void> {
  const { live, liveWithController } = await benchImages();
  progress("building the scenario disks");
  const disk = (await scenarioDisks()).standard;
  const controller: Variant = {
    name: "controller",
    what: `(a) the controller, \`root=controller\` (shell.img's content in ${SHIPPED_LAYOUT.name}, the module's default)`,
    initrd: layoutFile(SHIPPED_LAYOUT),
    cmdline: "root=controller",
    reports: true,
  };
  const variants: Variant[] = [
    controller,
    { name: "live", what: "(b) dracut's dmsquash-live, plain initramfs", initrd: live, cmdline: LIVE_CMDLINE, reports: false },
    { name: "live+controller", what: "(b') dmsquash-live, initramfs that also carries the controller", initrd: liveWithController, cmdline: LIVE_CMDLINE, reports: false },
    ...OTHER_LAYOUTS.map(layoutVariant),
  ];

  const boots: Boot[] = [];
  for (let run = 1; run <= RUNS; run++) {
    for (const variant of variants) {
      const result = await boot(variant, disk);
      progress(`run ${run}/${RUNS} ${variant.name}: init at ${fixed(result.initSeconds)} s`);
      boots.push(result);
    }
  }

  const initMedian = (name: VariantName) => medianOf(boots, name, (b) => b.initSeconds);
  const a = initMedian("controller");
  const b = initMedian("live");
  const bWithController = initMedian("live+controller");
  const ratio = a / b;
  const stageNames = [...new Set(boots.flatMap((b) => [...(b.controller?.stages.keys() ?? [])]))];

  const lines = [
    "## Boot overhead",
    "",
    `The test system image on the QEMU tests' standard disk (SYSFS holds it as system.squashfs), booted ${RUNS} times each, interleaved, ` +
      "with the same kernel and QEMU settings (TCG, -cpu Nehalem,+rdrand, one CPU, dracut's shell flavour): " +
      "(a) through the controller with no update server configured, (b) by dracut's dmsquash-live " +
      `(\`${LIVE_CMDLINE}\`) from dracut's plain initramfs, and (b') the same from an initramfs that also carries the controller module, unused. ` +
      "The figure is the guest's uptime when the real init prints its first line; the kernel's `Freeing initrd memory` line says when it had unpacked the initramfs, " +
      "and the controller's own time is `finishedAt - startedAt` of its boot report. " +
      "The goal is judged on (a)/(b): (b) is what a machine without the controller boots; (a)/(b') leaves out the larger initramfs's unpack time.",
    "",
    table(
      ["run", "variant", "initramfs unpacked (s uptime)", "init's first line (s uptime)", "controller started (s uptime)", "controller's own time (ms)"],
      boots.map((b, index) => [
        String(Math.floor(index / variants.length) + 1),
        b.variant,
        fixed(b.unpackedSeconds),
        fixed(b.initSeconds),
        b.controller === undefined ? "" : fixed(b.controller.startedAtSeconds),
        b.controller === undefined ? "" : String(b.controller.totalMs),
      ]),
    ),
    "",
    table(
      ["variant", "initramfs (MiB)", "median initramfs unpacked (s)", "median init's first line (s)"],
      await Promise.all(
        variants.map(async (v) => [v.what, await sizeMiB(v.initrd), fixed(medianOf(boots, v.name, (b) => b.unpackedSeconds)), fixed(initMedian(v.name))]),
      ),
    ),
    "",
    `Controller (a), medians: started at ${fixed(medianOf(boots, "controller", (b) => b.controller?.startedAtSeconds))} s uptime, ` +
      `own time ${fixed(medianOf(boots, "controller", (b) => b.controller?.totalMs), 0)} ms; per stage (ms): ` +
      stageNames.map((name) => `${name} ${fixed(medianOf(boots, "controller", (b) => b.controller?.stages.get(name)), 0)}`).join(", ") +
      ".",
    "",
    "### The controller's initramfs, layout by layout",
    "",
    "(a) from the same initramfs content (the module's defaults, shell flavour) in each layout: the compressors of dracut 059 that Debian's kernel unpacks " +
      "(`CONFIG_RD_ZSTD`, `_LZ4`, `_XZ`), zstd at three levels (-15 is dracut's `--zstd` and the shipped default), no compression at all, and the controller binary " +
      "alone in dracut's early uncompressed cpio (`controller_early_cpio=yes`, which the kernel copies instead of decompressing) with the rest zstd -15. " +
      "The fetch times are the image's size at the link's bit rate, without protocol overhead: what a PXE boot waits for before the kernel starts unpacking.",
    "",
    table(
      ["layout", "initramfs (MiB)", ...LINKS.map((link) => `fetch at ${link.name} (s)`), "median initramfs unpacked (s)", "median controller started (s)", "median init's first line (s)"],
      await Promise.all(
        [{ layout: SHIPPED_LAYOUT, variant: controller }, ...OTHER_LAYOUTS.map((layout) => ({ layout, variant: layoutVariant(layout) }))].map(async ({ layout, variant }) => {
          const bytes = (await stat(variant.initrd)).size;
          return [
            variant === controller ? `**${layout.name}** (shipped)` : layout.name,
            fixed(bytes / MiB, 1),
            ...LINKS.map((link) => fixed(transferSeconds(bytes, link.bitsPerSecond), 1)),
            fixed(medianOf(boots, variant.name, (b) => b.unpackedSeconds)),
            fixed(medianOf(boots, variant.name, (b) => b.controller?.startedAtSeconds)),
            fixed(initMedian(variant.name)),
          ];
        }),
      ),
    ),
    "",
    `Ratio (a)/(b): **${fixed(ratio, 3)}** (goal ≤ ${GOAL_RATIO}: ${goal(ratio <= GOAL_RATIO)}); (a)/(b'): ${fixed(a / bWithController, 3)}; (b')/(b): ${fixed(bWithController / b, 3)}.`,
  ];
  console.log(lines.join("\n"));
}

main().catch((error: unknown) => {
  console.error(`Cannot benchmark the boot: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
