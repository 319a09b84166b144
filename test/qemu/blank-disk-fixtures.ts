// Disks made the way an admin makes them: scripts/blank-disk, run as a
// command, fetching the first image from a repository the controller binary
// published (keygen, publish) and the controller's serve code serves on
// 127.0.0.1 (the VM reaches it at 10.0.2.100 through guestfwd). The tests then
// change a made disk only through debugfs on BOOTEXT, never by mounting it.

import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { grubenv, type GrubEntry } from "../../controller/plans/grub-config.ts";
import { formatHealth } from "../../controller/plans/slot-health.ts";
import { repoHandler } from "../../controller/update/dev-server.ts";
import { runCommand } from "../../qemu-harness/command.ts";
import type { Firmware } from "../../qemu-harness/grub-disk.ts";
import { GUEST_FORWARD_ADDRESS } from "../../qemu-harness/qemu-args.ts";
import { ARTIFACTS, requireArtifacts, runFolder } from "./fixtures.ts";
import { GRUB_APPEND } from "./grub-fixtures.ts";
import { FLEET_CONFIG, MARKED_GOOD } from "./update-fixtures.ts";

const BLANK_DISK = resolve(import.meta.dir, "../../scripts/blank-disk");

export interface FleetRepo {
  readonly work: string;
  /** the .pub file keygen wrote, as the admin passes it to --key */
  readonly publicKeyFile: string;
  /** where the host (blank-disk) fetches from */
  readonly hostUrl: string;
  /** where the VM asks, written into BOOTEXT's config.d */
  readonly guestUrl: string;
  readonly port: number;
  /** the server's access log */
  readonly accessLog: string[];
}

let made: Promise<FleetRepo> | undefined;

/** A repository with system-a as version 1.0 of channel stable and the fleet's config file, served for the rest of the run. */
export function fleetRepo(): Promise<FleetRepo> {
  made ??= (async () => {
    await requireArtifacts();
    const work = join(await runFolder(), "blank-disk");
    await mkdir(work, { recursive: true });
    const key = join(work, "fleet");
    await runCommand([ARTIFACTS.controller, "keygen", key]);
    const fleetConfig = join(work, FLEET_CONFIG.name);
    await writeFile(fleetConfig, FLEET_CONFIG.text);
    const repo = join(work, "repo");
    await runCommand([ARTIFACTS.controller, "publish", "--repo", repo, "--channel", "stable", "--version", "1.0", "--image", ARTIFACTS.systemA, "--config", fleetConfig, "--key", `${key}.secret`]);
    const accessLog: string[] = [];
    const handler = repoHandler(repo, (line) => accessLog.push(line));
    // a VM under TCG may pause long between requests on one connection
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 120, fetch: (request, srv) => handler(request, srv) });
    server.unref();
    const port = server.port as number;
    return { work, publicKeyFile: `${key}.pub`, hostUrl: `http://127.0.0.1:${port}/`, guestUrl: `http://${GUEST_FORWARD_ADDRESS}:${port}/`, port, accessLog };
  })();
  return made;
}

export interface MadeDisk {
  readonly path: string;
  /** what blank-disk said on stderr */
  readonly output: string;
  readonly seconds: number;
}

export interface BlankDiskOptions {
  /** the disk's size as blank-disk takes it; 1G by default */
  readonly size?: string;
  /** the first pair GRUB boots: the project's kernel with the shell initramfs by default, or the first image's own ("image", a format-2 manifest) */
  readonly kernel?: "project" | "image";
  /** config.d files for BOOTEXT (--config) */
  readonly configFiles?: readonly string[];
}

/** scripts/blank-disk as the guide runs it: an image file, by default 1 GiB with the project's kernel and the shell initramfs. */
export async function blankDisk(repo: FleetRepo, name: string, firmware: Firmware, options: BlankDiskOptions = {}): Promise<MadeDisk> {
  const path = join(repo.work, `${name}.img`);
  const started = performance.now();
  const kernel = options.kernel === "image" ? [] : ["--kernel", ARTIFACTS.kernel, "--initrd", ARTIFACTS.initramfs.shell];
  const { stderr } = await runCommand([
    BLANK_DISK,
    "--target", path,
    "--size", options.size ?? "1G",
    "--repo", repo.hostUrl,
    "--server", repo.guestUrl,
    "--key", repo.publicKeyFile,
    "--firmware", firmware,
    ...kernel,
    ...(options.configFiles ?? []).flatMap((file) => ["--config", file]),
    "--append", GRUB_APPEND,
    "--bootext-size", "512M",
    "--force",
  ]);
  return { path, output: stderr, seconds: (performance.now() - started) / 1000 };
}

/** A partition's byte offset in a disk blank-disk made: BOOTEXT is its last, SYSFS the one after the BIOS boot or EFI System Partition. */
async function partitionOffset(disk: string, which: "sysfs" | "bootext"): Promise<number> {
  const table = JSON.parse((await runCommand(["sfdisk", "--json", disk])).stdout) as { partitiontable: { partitions: { start: number }[] } };
  const partitions = table.partitiontable.partitions;
  const found = which === "bootext" ? partitions.at(-1) : partitions[1];
  if (found === undefined) throw new Error(`${disk} has no ${which} partition`);
  return found.start * 512;
}

/** BOOTEXT's byte offset in a disk blank-disk made. */
export function bootextOffset(disk: string): Promise<number> {
  return partitionOffset(disk, "bootext");
}

/** debugfs commands run on BOOTEXT (or SYSFS), read-write. */
async function debugfsWrite(disk: string, commands: readonly string[], which: "sysfs" | "bootext" = "bootext"): Promise<void> {
  const script = join(resolve(disk, ".."), "debugfs.cmd");
  await writeFile(script, `${commands.join("\n")}\n`);
  await runCommand(["debugfs", "-w", "-f", script, `${disk}?offset=${await partitionOffset(disk, which)}`]);
}

/**
 * SYSFS's health record says its system came up healthy, as its first boot's
 * mark-good would leave it: until then the install gate keeps updates off the
 * spare slot. A shortcut for tests that start from a running machine.
 */
export async function markSysfsGood(disk: string): Promise<void> {
  const file = join(resolve(disk, ".."), "health.json");
  await writeFile(file, formatHealth(MARKED_GOOD));
  await debugfsWrite(disk, ["cd /controller", `write ${file} health.json`], "sysfs");
}

/** Replaces BOOTEXT's grubenv (a new 1024-byte file, as the controller will write it). */
export async function setGrubenv(disk: string, values: Readonly<Partial<Record<"next_entry" | "saved_entry", GrubEntry>>>): Promise<void> {
  const env = grubenv(values);
  if (!env.ok) throw new Error(env.problem);
  const file = join(resolve(disk, ".."), "grubenv");
  await writeFile(file, env.text);
  await debugfsWrite(disk, ["cd /grub", "rm grubenv", `write ${file} grubenv`]);
}

/**
 * A second pair for the recovery entry, with the systemd initramfs, so the
 * console tells which pair GRUB booted: what the controller's reboot-mode
 * switch will leave (the previous pair as recovery), made by hand here.
 */
export async function addRecoveryPair(disk: string): Promise<void> {
  await debugfsWrite(disk, [
    "mkdir /Kernel/pairs/test-recovery",
    "cd /Kernel/pairs/test-recovery",
    `write ${ARTIFACTS.kernel} vmlinuz`,
    `write ${ARTIFACTS.initramfs.systemd} initrd.img`,
    "cd /Kernel",
    "rm recovery",
    "symlink recovery pairs/test-recovery",
  ]);
}

/** A file on BOOTEXT, read without mounting. */
export async function bootextFile(disk: string, path: string): Promise<string> {
  return (await runCommand(["debugfs", "-R", `cat ${path}`, `${disk}?offset=${await bootextOffset(disk)}`])).stdout;
}
