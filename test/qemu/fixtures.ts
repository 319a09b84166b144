// What the QEMU scenarios boot: the kernel, the two initramfs flavours and the
// test system images that scripts/setup builds once, and the disks made from
// them, built once per test process into build/scenario-disks/run-OWNER/PID
// (qemu-harness/run-folder.ts; each scenario's writes go to a snapshot). The
// disks stay after the run, so the QEMU command line a failing test prints can
// be pasted into a shell to watch that boot; the next run clears the folders of
// runs that have ended.

import { access, mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { runCommand } from "../../qemu-harness/command.ts";
import { buildDisk, type PartitionSpec } from "../../qemu-harness/disk.ts";
import { GUEST_FORWARD_ADDRESS } from "../../qemu-harness/qemu-args.ts";
import { DISKS_DIR_ENV, makeRunFolder, runOwner } from "../../qemu-harness/run-folder.ts";
import { buildSquashfs, buildSquashfsXz } from "../../qemu-harness/squashfs.ts";
import { parseTestMarkers, type TestMarkers } from "../../qemu-harness/test-markers.ts";
import { type Vm, type VmOptions, withVm } from "../../qemu-harness/vm.ts";

const REPO = resolve(import.meta.dir, "../..");
const BUILD = join(REPO, "build");

export const ARTIFACTS = {
  kernel: join(BUILD, "kernel/vmlinuz"),
  initramfs: { shell: join(BUILD, "initramfs/shell.img"), systemd: join(BUILD, "initramfs/systemd.img") },
  /** both flavours with the ssh and lldpd services (the module leaves them out by default): for the tests of those flags */
  initramfsWithServices: { shell: join(BUILD, "initramfs/shell-services.img"), systemd: join(BUILD, "initramfs/systemd-services.img") },
  systemA: join(BUILD, "images/system-a.squashfs"),
  systemB: join(BUILD, "images/system-b.squashfs"),
  /** published as a new version by the update scenarios */
  systemC: join(BUILD, "images/system-c.squashfs"),
  controller: join(REPO, "dist/controller"),
} as const;

/** build/scenario-disks, unless scripts/run-qemu-tests was given another (--disks) */
const DISKS_DIR = process.env[DISKS_DIR_ENV] || join(BUILD, "scenario-disks");

export { isRunning } from "../../qemu-harness/run-folder.ts";

let runFolderMade: Promise<string> | undefined;

/**
 * This process's folder, after removing those of runs that have ended (a demo
 * may boot beside a test run). The same for every test file this process runs;
 * another process of the same run (scripts/run-qemu-tests runs two) has its own.
 */
export function runFolder(): Promise<string> {
  runFolderMade ??= makeRunFolder(DISKS_DIR, runOwner(process.env, process.pid), process.pid);
  return runFolderMade;
}

export type Flavour = keyof typeof ARTIFACTS.initramfs;

/**
 * `cpio ARGS` over a test initramfs's main archive (after the early microcode
 * one), as a shell pipe; lz4, as scripts/build-initramfs compresses them.
 * Returns cpio's standard output.
 */
export async function initramfsCpio(flavour: Flavour, args: string): Promise<string> {
  const { stdout } = await runCommand(["sh", "-c", `/usr/lib/dracut/skipcpio '${ARTIFACTS.initramfs[flavour]}' | lz4 -dc | cpio --quiet ${args}`]);
  return stdout;
}

/**
 * For a boot without a NIC on a disk whose config names update servers: the
 * network stage waits timeouts.network_seconds (20 s) for an interface that
 * cannot appear; one second ends the same way, sooner.
 */
export const NO_NIC_WAIT = "controller.timeouts.network_seconds=1";

/**
 * Kernel parameters every scenario boots with (in SCENARIO_CMDLINE; the PXE scenario's
 * boot script has its own start). mitigations=off: the emulated CPU
 * does not speculate, so the kernel's Meltdown and Spectre mitigations protect
 * nothing here, and under TCG they cost about a sixth of every boot (page-table
 * isolation switches page tables on every system call and interrupt, and TCG
 * flushes its emulated TLB each time): 24.5 s against 20.2 s to the poweroff, in
 * four rounds of the two boots side by side. Nothing the controller does depends on them.
 */
export const TCG_KERNEL_PARAMS = "mitigations=off";

/** What every scenario's kernel command line starts with (the GRUB and Heddle scenarios write it into their boot files). */
export const SCENARIO_CMDLINE = `console=ttyS0 root=controller panic=-1 ${TCG_KERNEL_PARAMS}`;

/** A boot under TCG takes 25-40 s; a busy CI machine may take twice that. */
export const BOOT_TIMEOUT_MS = 240_000;
/**
 * From "@@TEST done" to QEMU's exit: the test image gives `controller mark-shutdown` 120 s of
 * its own (test/image/init), then unmounts and powers off. The wait outlasts the guest's limit,
 * so a slow shutdown on a busy machine ends in the guest's own marker, not in a harness timeout.
 */
export const SHUTDOWN_TIMEOUT_MS = 150_000;
/** bun:test's own limit for one scenario: the boot, its checks and the poweroff. */
export const SCENARIO_TIMEOUT_MS = BOOT_TIMEOUT_MS + SHUTDOWN_TIMEOUT_MS;

/** Rows of cells as a plain-text table, each column as wide as its widest cell: the power-cut tables' print. */
export function textTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((cells) => (cells[column] ?? "").length))) ?? [];
  return rows.map((cells) => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join(" | ")).join("\n");
}

/** A diskless boot's command line as a PXE server gives it: the update server (reached through guestfwd) and its key as config overrides. */
export function disklessAppend(serverPort: number, publicKey: string): string {
  return [
    `${SCENARIO_CMDLINE} controller.diskless`,
    `controller.update.servers=["http://${GUEST_FORWARD_ADDRESS}:${serverPort}/"]`,
    `controller.update.trusted_keys=["${publicKey}"]`,
  ].join(" ");
}

export async function requireArtifacts(): Promise<void> {
  const all = [ARTIFACTS.kernel, ...Object.values(ARTIFACTS.initramfs), ...Object.values(ARTIFACTS.initramfsWithServices), ARTIFACTS.systemA, ARTIFACTS.systemB, ARTIFACTS.systemC, ARTIFACTS.controller];
  for (const path of all) {
    try {
      await access(path);
    } catch {
      throw new Error(`Cannot run the QEMU scenarios: ${path} is missing; run scripts/setup first`);
    }
  }
}

/** Files for a folder: relative path → content. */
type Files = Readonly<Record<string, string>>;

async function folder(base: string, files: Files): Promise<string> {
  for (const [relative, content] of Object.entries(files)) {
    const path = join(base, relative);
    await mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await writeFile(path, content);
  }
  await mkdir(base, { recursive: true });
  return base;
}

async function slot(work: string, name: string, image: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await Bun.write(join(dir, "system.squashfs"), Bun.file(image));
  return dir;
}

/**
 * The DIRS folder every scenario disk carries: one entry of each kind, one
 * whose target is created on the tmpfs /etc, one skipped and one refused.
 */
async function dirs(work: string): Promise<Files> {
  const squashfs = await folder(join(work, "src-opt"), { "squashfs-marker": "from DIR_opt.squashfs" });
  const xz = await folder(join(work, "src-mnt"), { "xz-marker": "from DIR_mnt.squashfs.xz" });
  const base = join(work, "bootext", "DIRS");
  await mkdir(base, { recursive: true });
  await buildSquashfs(squashfs, join(base, "DIR_opt.squashfs"));
  await buildSquashfsXz(xz, join(base, "DIR_mnt.squashfs.xz"));
  return {
    "DIRS/DIR_srv/marker": "from DIR_srv",
    "DIRS/FILE_etc_issue": "from FILE_etc_issue",
    "DIRS/DIR_etc_site%5Fconf/marker": "from DIR_etc_site%5Fconf",
    "DIRS/DIR_usr_share_not-in-image/marker": "never mounted",
    "DIRS/DIR_.._escape/marker": "never mounted",
    "DIRS/README": "not an overmount",
  };
}

export interface Disks {
  /** SYSFS (system-a), BACKUPFS (system-b), BOOTEXT with DIRS and a valid config.d */
  readonly standard: string;
  /** as standard, but BOOTEXT's config.d has a file with a TOML syntax error */
  readonly brokenConfig: string;
  /** BACKUPFS and BOOTEXT only */
  readonly backupOnly: string;
  /** one partition, labelled DATA */
  readonly nothingBootable: string;
}

/** The site config.d every BOOTEXT carries: a value the test system can see in /proc/mounts. */
export const SITE_CONFIG: Files = { "config.d/50-site.toml": '[tmpfs."/var/log"]\nsize = "32m"\n' };
/** A broken file beside it, which also tries to change /tmp: that must not happen. */
export const BROKEN_CONFIG: Files = { "config.d/40-broken.toml": '[tmpfs."/tmp"]\nsize = "16m"\nmode = \n' };

let built: Promise<Disks> | undefined;

/** Builds the disks on first use; every later call in this test run gets the same ones. */
export function scenarioDisks(): Promise<Disks> {
  built ??= (async () => {
    await requireArtifacts();
    const work = await runFolder();
    const sysfs = await slot(work, "sysfs", ARTIFACTS.systemA);
    const backupfs = await slot(work, "backupfs", ARTIFACTS.systemB);
    const bootextFiles = { ...(await dirs(work)), ...SITE_CONFIG };
    const bootext = await folder(join(work, "bootext"), bootextFiles);
    const broken = await folder(join(work, "bootext-broken"), { ...SITE_CONFIG, ...BROKEN_CONFIG });
    const partition = (label: string, content: string, sizeMiB = 120): PartitionSpec => ({ label, sizeMiB, content });
    const disk = async (name: string, partitions: PartitionSpec[]) => {
      const path = join(work, `${name}.img`);
      await buildDisk({ path, partitions });
      return path;
    };
    return {
      standard: await disk("standard", [partition("SYSFS", sysfs), partition("BACKUPFS", backupfs), partition("BOOTEXT", bootext, 32)]),
      brokenConfig: await disk("broken-config", [partition("SYSFS", sysfs), partition("BOOTEXT", broken, 16)]),
      backupOnly: await disk("backup-only", [partition("BACKUPFS", backupfs), partition("BOOTEXT", bootext, 32)]),
      nothingBootable: await disk("nothing-bootable", [partition("DATA", await folder(join(work, "data"), { "readme.txt": "data" }), 8)]),
    };
  })();
  return built;
}

export interface Boot {
  readonly flavour: Flavour;
  readonly disk: string;
  /** added to SCENARIO_CMDLINE */
  readonly append?: string;
  /** host ports on 127.0.0.1 the guest reaches at 10.0.2.100; no network without */
  readonly hostPorts?: readonly number[];
  /** keep the guest's writes in the disk file, for a scenario of several boots */
  readonly writeDisks?: boolean;
  /** "raw" unless the disk is a qcow2 file (a power-cut row's, saved-cut-boot.ts) */
  readonly diskFormat?: "raw" | "qcow2";
}

export function vmOptions(boot: Boot): VmOptions {
  return {
    kernel: ARTIFACTS.kernel,
    initrd: ARTIFACTS.initramfs[boot.flavour],
    append: `${SCENARIO_CMDLINE}${boot.append === undefined ? "" : ` ${boot.append}`}`,
    disks: [boot.disk],
    ...(boot.hostPorts === undefined ? {} : { network: { hostPorts: boot.hostPorts } }),
    ...(boot.writeDisks === undefined ? {} : { writeDisks: boot.writeDisks }),
    ...(boot.diskFormat === undefined ? {} : { diskFormat: boot.diskFormat }),
  };
}

/**
 * How far bootToTestSystem goes: "poweroff", the test system's last marker
 * (after its mark-good) and its clean shutdown; or "report", its boot report
 * (and `controller status` after it, with test.status), after which the VM is
 * killed. "report" is for a boot whose disk writes are thrown away (a snapshot)
 * and whose check reads nothing the test system prints later: there, mark-good
 * and the shutdown (4-5 s of every boot under TCG) prove nothing the scenario
 * looks at. The boots that read them, or whose disk a later boot starts from,
 * go to the poweroff.
 */
export type BootEnd = "poweroff" | "report";

/**
 * Boots to `end`, then runs `check` on what the guest printed, while the VM's
 * console and command line are still at hand to explain a failure.
 */
export async function bootToTestSystem(
  boot: Boot,
  check: (result: { markers: TestMarkers; console: string }) => void | Promise<void>,
  end: BootEnd = "poweroff",
): Promise<void> {
  if (end === "report" && boot.writeDisks === true) {
    throw new Error("Cannot end a boot at its report: it writes to its disk, and a killed VM would leave that disk as a power cut does");
  }
  await withVm(vmOptions(boot), async (vm: Vm) => {
    if (end === "report") {
      // the status's exit line whole, with its line break: a wait for "@@STATUS-EXIT" alone could end (and the VM
      // be killed) between it and its number, a line the marker parser refuses
      await vm.waitFor(boot.append?.split(" ").includes("test.status") ? /@@STATUS-EXIT \d+\n/ : /@@REPORT-END|@@REPORT missing/, BOOT_TIMEOUT_MS);
      await vm.kill();
    } else {
      await vm.waitFor("@@TEST done", BOOT_TIMEOUT_MS);
      await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
    }
    await check({ markers: parseTestMarkers(vm.console()), console: vm.console() });
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  return listenAndClose(0);
}

/** Listens on `port` (0: any) on 127.0.0.1, closes again and says which port it was. */
function listenAndClose(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** The first port the kernel hands out for port 0 (net.ipv4.ip_local_port_range). */
const EPHEMERAL_PORTS = "/proc/sys/net/ipv4/ip_local_port_range";
/** Dead ports are taken from here up to the first ephemeral port: above the well-known services. */
const FIRST_DEAD_PORT = 10_000;

/**
 * A TCP port on 127.0.0.1 where nothing listens and nothing will: it is below
 * the range the kernel hands out for port 0, where every test server listens.
 * A port from freePort() could be given to the server of another test file
 * running beside this one while a scenario still counts on it being down.
 */
export async function deadPort(): Promise<number> {
  const range = (await Bun.file(EPHEMERAL_PORTS).text()).trim();
  const firstEphemeral = Number(/^(\d+)\s/.exec(range)?.[1]);
  if (!Number.isInteger(firstEphemeral) || firstEphemeral <= FIRST_DEAD_PORT) {
    throw new Error(`Cannot pick a dead port: ${EPHEMERAL_PORTS} is ${JSON.stringify(range)}, expected a range starting above ${FIRST_DEAD_PORT}`);
  }
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = FIRST_DEAD_PORT + Math.floor(Math.random() * (firstEphemeral - FIRST_DEAD_PORT));
    try {
      return await listenAndClose(port);
    } catch {
      // something listens there: another one
    }
  }
  throw new Error(`Cannot pick a dead port: 20 ports from ${FIRST_DEAD_PORT} to ${firstEphemeral - 1} were all in use`);
}
