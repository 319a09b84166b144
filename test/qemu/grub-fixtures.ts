// The disk a real machine would have: GRUB in the MBR and a BIOS boot
// partition, SYSFS with system-a, BOOTEXT with the site config.d and GRUB's
// files, its Kernel/ links pointing at the project's kernel with the shell
// initramfs (active) and with the systemd initramfs (recovery), so the two
// entries are told apart in the booted system by BOOT_IMAGE= in
// /proc/cmdline and on the console by which initramfs ran.

import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DiskLayout } from "../../qemu-harness/disk.ts";
import { addGrubFiles, buildGrubDisk, type Firmware, type GrubBootextSpec } from "../../qemu-harness/grub-disk.ts";
import { ARTIFACTS, requireArtifacts, runFolder, SCENARIO_CMDLINE, SITE_CONFIG } from "./fixtures.ts";

/** The command line the -kernel scenarios use (fixtures.ts vmOptions), and /proc/cmdline printed by the test system. */
export const GRUB_APPEND = `${SCENARIO_CMDLINE} test.cat=/proc/cmdline`;

export interface GrubDisk {
  readonly layout: DiskLayout;
  /** Seconds buildGrubDisk and the BOOTEXT files took. */
  readonly buildSeconds: number;
}

/** Builds one GRUB disk named `name` in this run's folder, with grubenv's variables if given, for BIOS unless told. */
export async function grubDisk(name: string, grubenv?: GrubBootextSpec["grubenv"], firmware: Firmware = "bios"): Promise<GrubDisk> {
  await requireArtifacts();
  const work = join(await runFolder(), `grub-${name}`);
  const sysfs = join(work, "sysfs");
  const bootext = join(work, "bootext");
  await mkdir(sysfs, { recursive: true });
  await Bun.write(join(sysfs, "system.squashfs"), Bun.file(ARTIFACTS.systemA));
  const started = performance.now();
  for (const [relative, content] of Object.entries(SITE_CONFIG)) {
    await mkdir(join(bootext, relative, ".."), { recursive: true });
    await writeFile(join(bootext, relative), content);
  }
  await addGrubFiles(bootext, {
    active: { name: "shell", kernel: ARTIFACTS.kernel, initrd: ARTIFACTS.initramfs.shell },
    recovery: { name: "systemd", kernel: ARTIFACTS.kernel, initrd: ARTIFACTS.initramfs.systemd },
    append: GRUB_APPEND,
    firmware,
    ...(grubenv === undefined ? {} : { grubenv }),
  });
  const layout = await buildGrubDisk(join(work, "disk.img"), work, [
    { label: "SYSFS", sizeMiB: 120, content: sysfs },
    // two kernels (8 MB each), two initramfs images (~95 MB each), GRUB's modules (3.5 MB)
    { label: "BOOTEXT", sizeMiB: 320, content: bootext },
  ], firmware);
  return { layout, buildSeconds: (performance.now() - started) / 1000 };
}
