// Boot overhead: the test system image on the standard scenario disk, booted
// (a) through the controller (no update server configured) and (b) by dracut's
// own dmsquash-live module (root=live:LABEL=SYSFS, rd.live.dir and
// rd.live.squashimg naming the same file on the same partition), same kernel,
// same QEMU settings (the harness's: TCG, Nehalem, one CPU), interleaved.
// (b) comes in two initramfs images: dracut's plain one, which is what a
// machine without the controller boots and what the goal is judged on, and
// one that also carries the controller module, unused, which costs the same
// kernel unpack time as (a) and so isolates the controller's run.
// The figure is the guest's uptime when the test system's init prints its first
// line (test/image/init puts /proc/uptime on it).

import { mkdir, mkdtemp, rm, stat, symlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { BootReport } from "../controller/boot/report.ts";
import { runCommand } from "../qemu-harness/command.ts";
import { parseTestMarkers } from "../qemu-harness/test-markers.ts";
import { type Vm, type VmOptions, withVm } from "../qemu-harness/vm.ts";
import { ARTIFACTS, BOOT_TIMEOUT_MS, scenarioDisks } from "../test/qemu/fixtures.ts";
import { fixed, goal, median, MiB, progress, table } from "./lib.ts";

const REPO = resolve(import.meta.dir, "..");
const BUILD = join(REPO, "build");
const BENCH_DIR = join(BUILD, "bench");
const KERNEL_DIR = join(BUILD, "kernel");
const SYSTEM_DRACUT = "/usr/lib/dracut";
const DMSQUASH_MODULE = join(SYSTEM_DRACUT, "modules.d/90dmsquash-live");
/** Boots of each variant; at least 5, as the issue asks. */
const RUNS = 5;
const GOAL_RATIO = 1.02;
/** The shell flavour, as scripts/build-initramfs builds shell.img: the same for every variant. */
const SHELL_FLAVOUR = ["--omit", "systemd systemd-initrd dracut-systemd"];
// rd.live.overlay.overlayfs: the image is a root filesystem itself (no LiveOS/rootfs.img in it); dracut's
// shell flavour mounts it under a tmpfs overlay only when told so, and otherwise waits for a root it never gets
const LIVE_CMDLINE = "root=live:LABEL=SYSFS rd.live.dir=/ rd.live.squashimg=system.squashfs rd.live.overlay.overlayfs=1";
/** The kernel's line once it has unpacked the initramfs: the initramfs's size costs time up to here. */
const INITRD_FREED = /\[\s*(\d+\.\d+)\] Freeing initrd memory/;
/** test/image/init's first line. */
const INIT_STARTED = /@@TEST init-started path=\S+ pid=\d+ uptime=(\d+(?:\.\d+)?)/;

type VariantName = "controller" | "live" | "live+controller";

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

/** dracut as scripts/build-initramfs runs it (generic, zstd, the kernel in build/kernel), into `output`. */
async function dracut(output: string, extra: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<void> {
  const release = await kernelRelease();
  const argv = [
    "env",
    ...Object.entries(env).map(([key, value]) => `${key}=${value}`),
    "dracut",
    "--quiet",
    "--force",
    "--no-hostonly",
    "--zstd",
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
  await dracut(output, ["--add", "dmsquash-live"]);
}

/** shell.img's content plus dmsquash-live: as large as (a)'s, the controller idle. */
async function buildLiveWithController(output: string): Promise<void> {
  // a private copy of dracut with the module linked in, as scripts/build-initramfs does
  const base = await mkdtemp(join(BENCH_DIR, "dracut-base."));
  try {
    await runCommand(["cp", "-a", `${SYSTEM_DRACUT}/.`, base]);
    await symlink(join(REPO, "dracut-module/90controller"), join(base, "modules.d/90controller"));
    await dracut(output, ["--add", "controller dmsquash-live"], {
      dracutbasedir: base,
      controller_binary: ARTIFACTS.controller,
      controller_config_dir: join(REPO, "config.d"),
    });
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/** The (b) images, built once and reused while their inputs are unchanged. */
async function liveImages(): Promise<{ live: string; liveWithController: string }> {
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
  const options: VmOptions = { kernel: ARTIFACTS.kernel, initrd: variant.initrd, append: `console=ttyS0 panic=-1 ${variant.cmdline}`, disks: [disk] };
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

async function main(): Promise<void> {
  const { live, liveWithController } = await liveImages();
  progress("building the scenario disks");
  const disk = (await scenarioDisks()).standard;
  const variants: Variant[] = [
    { name: "controller", what: "(a) the controller, `root=controller`", initrd: ARTIFACTS.initramfs.shell, cmdline: "root=controller", reports: true },
    { name: "live", what: "(b) dracut's dmsquash-live, plain initramfs", initrd: live, cmdline: LIVE_CMDLINE, reports: false },
    { name: "live+controller", what: "(b') dmsquash-live, initramfs that also carries the controller", initrd: liveWithController, cmdline: LIVE_CMDLINE, reports: false },
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
      "with the same kernel and QEMU settings (TCG, -cpu Nehalem, one CPU, dracut's shell flavour): " +
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
    `Ratio (a)/(b): **${fixed(ratio, 3)}** (goal ≤ ${GOAL_RATIO}: ${goal(ratio <= GOAL_RATIO)}); (a)/(b'): ${fixed(a / bWithController, 3)}; (b')/(b): ${fixed(bWithController / b, 3)}.`,
  ];
  console.log(lines.join("\n"));
}

main().catch((error: unknown) => {
  console.error(`Cannot benchmark the boot: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
