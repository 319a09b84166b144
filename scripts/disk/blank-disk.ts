// scripts/blank-disk: a blank disk becomes a managed machine's disk in one
// command (usage in args.ts; the walk-through is docs/blank-disk-to-fleet.md).
// The order is the cheap refusals first (arguments, target, layout), then the
// network (the first image, verified), then the disk: nothing is written to
// the target until everything that goes on it is there and checked.

import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { parseConfigLayer } from "../../controller/config/layers.ts";
import { DEFAULT_CONFIG } from "../../controller/config/schema.ts";
import { GRUB_DIR, grubenv } from "../../controller/plans/grub-config.ts";
import { addGrubLoader, buildGrubDisk } from "../../qemu-harness/grub-disk.ts";
import { type BlankDiskOptions, parseArgs, USAGE } from "./args.ts";
import { fetchFirstImage } from "./first-image.ts";
import { choosePair, kernelSourceProblem, writeKernelDir } from "./kernel-pair.ts";
import { planLayout, slotRoomProblem, UPDATE_CONFIG_FILE, updateConfigText } from "./layout.ts";
import { readSiteConfig } from "./site-config.ts";
import { inspectTarget, writeToDevice } from "./target.ts";

function say(line: string): void {
  console.error(`blank-disk: ${line}`);
}

export async function blankDisk(options: BlankDiskOptions): Promise<void> {
  const config = DEFAULT_CONFIG;
  const target = await inspectTarget(options.target, options.sizeMiB, options.force);
  const layout = planLayout(target.sizeMiB, options.firmware, options.bootextMiB);
  if (!layout.ok) throw new Error(layout.problem);
  const configText = updateConfigText(options);
  // the controller's own parser: a file it would reject never reaches the disk
  const parsed = parseConfigLayer("bootext", UPDATE_CONFIG_FILE, configText);
  if (parsed.status !== "parsed") throw new Error(`Cannot write config.d/${UPDATE_CONFIG_FILE}: ${parsed.problems.join("; ")}`);
  const siteConfig = await readSiteConfig(options.configFiles);

  const workParent = options.work ?? (target.kind === "file" ? dirname(resolve(target.path)) : "/var/tmp");
  await mkdir(workParent, { recursive: true });
  const work = await mkdtemp(join(workParent, ".blank-disk-"));
  try {
    const sysfs = join(work, "sysfs");
    const bootext = join(work, "bootext");
    const first = await fetchFirstImage(options.repo, options.channel, options.keys, sysfs, config, (manifest) => kernelSourceProblem(manifest, options.kernel));
    const { manifest } = first.accepted;
    const slotMiB = layout.partitions[0]?.sizeMiB ?? 0;
    const room = slotRoomProblem(slotMiB, manifest.image.size);
    if (room !== undefined) throw new Error(room);
    if (slotMiB * 1024 * 1024 < 2.2 * manifest.image.size) {
      say(`warning: a slot of ${slotMiB} MiB has no room for an update beside this image (${(manifest.image.size / 1e6).toFixed(0)} MB): updates will empty the backup slot first (DEPRIVED)`);
    }

    const chosen = await choosePair(manifest, first.image, options.kernel, join(work, "image-kernel"));
    say(`first kernel pair: ${chosen.source}`);
    const pairId = await writeKernelDir(bootext, chosen.pair);
    await mkdir(join(bootext, config.bootext.config_dir), { recursive: true });
    await writeFile(join(bootext, config.bootext.config_dir, UPDATE_CONFIG_FILE), configText);
    for (const { name, text } of siteConfig) await writeFile(join(bootext, config.bootext.config_dir, name), text);
    await addGrubLoader(bootext, { append: options.append, firmware: options.firmware });
    // an empty environment block: GRUB's save_env (next_entry) only rewrites a grubenv that exists
    const env = grubenv({});
    if (!env.ok) throw new Error(env.problem);
    await writeFile(join(bootext, GRUB_DIR, "grubenv"), env.text);

    const [system, backup, boot] = layout.partitions;
    if (system === undefined || backup === undefined || boot === undefined) throw new Error("Cannot build the disk: the layout has no SYSFS, BACKUPFS and BOOTEXT");
    const image = target.kind === "file" ? target.path : join(work, "disk.img");
    const built = await buildGrubDisk(
      image,
      work,
      [
        { label: system.label, sizeMiB: system.sizeMiB, content: sysfs },
        // empty: the first update installs into it, and then it holds the version to fall back to
        { label: backup.label, sizeMiB: backup.sizeMiB },
        { label: boot.label, sizeMiB: boot.sizeMiB, content: bootext },
      ],
      options.firmware,
    );
    if (target.kind === "block-device") {
      say(`writing ${(built.sizeBytes / 1e9).toFixed(1)} GB to ${target.path}`);
      await writeToDevice(image, target.path);
    }
    say(`${target.path}: ${options.firmware === "efi" ? "EFI System Partition" : "BIOS boot partition"}, ${system.label} ${system.sizeMiB} MiB (version ${manifest.version}), ${backup.label} ${backup.sizeMiB} MiB (empty), ${boot.label} ${boot.sizeMiB} MiB (GRUB, Kernel/pairs/${pairId}, config.d/${UPDATE_CONFIG_FILE})`);
    say(`servers: ${options.servers.join(", ")}; channel ${options.channel}; ${options.keys.length} trusted key${options.keys.length === 1 ? "" : "s"}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  if (process.argv[2] === "--help") {
    console.log(USAGE);
    process.exit(0);
  }
  const args = parseArgs(process.argv.slice(2), (file) => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return undefined;
    }
  });
  if (!args.ok) {
    for (const problem of args.problems) console.error(`blank-disk: ${problem}`);
    console.error(`\n${USAGE}`);
    process.exit(2);
  }
  try {
    await blankDisk(args.options);
  } catch (error) {
    console.error(`blank-disk: ${(error as Error).message}`);
    process.exit(1);
  }
}
