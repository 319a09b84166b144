// A disk that boots through GRUB, in AnthillaOS's BootExt layout: GRUB's
// modules and grub.cfg in BOOTEXT/grub, the kernels and initramfs images in
// BOOTEXT/Kernel with the active-* and recovery-* links GRUB boots. Debian's
// grub-pc-bin provides the images (scripts/setup installs it); nothing here
// touches the host's own bootloader: grub-mkimage only writes a file.

import { copyFile, mkdir, readdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GRUB_DIR, type GrubEntry, grubConfig, grubenv, KERNEL_LINKS } from "../controller/plans/grub-config.ts";
import { runCommand } from "./command.ts";
import { type BiosBootCode, buildDisk, type DiskLayout, type PartitionSpec } from "./disk.ts";

/** Where Debian's grub-pc-bin puts GRUB's BIOS images and modules. */
export const GRUB_I386_PC = "/usr/lib/grub/i386-pc";
export const BOOTEXT_LABEL = "BOOTEXT";
/**
 * In core.img itself, so it can find BOOTEXT and read grub.cfg; everything
 * else (linux, echo, test, loadenv, ...) is loaded from BOOTEXT/grub/i386-pc.
 */
const CORE_MODULES = ["biosdisk", "part_gpt", "ext2", "search", "search_label", "serial", "terminal", "normal"];

/** One kernel and initramfs pair on BOOTEXT/Kernel. */
export interface KernelPair {
  /** Names the copies: Kernel/vmlinuz-NAME and Kernel/initrd-NAME.img; two entries may share one pair. */
  readonly name: string;
  readonly kernel: string;
  readonly initrd: string;
}

export interface GrubBootextSpec {
  readonly active: KernelPair;
  readonly recovery: KernelPair;
  /** The kernel command line of both entries. */
  readonly append: string;
  /** grubenv's variables (next_entry, saved_entry); none gives no grubenv file, so "active" boots. */
  readonly grubenv?: Readonly<Partial<Record<"next_entry" | "saved_entry", GrubEntry>>>;
}

/**
 * Fills `dir` (BOOTEXT's future root, which may already hold config.d, DIRS,
 * ...) with GRUB's files and the kernel pairs.
 */
export async function addGrubFiles(dir: string, spec: GrubBootextSpec): Promise<void> {
  const config = grubConfig({ bootextLabel: BOOTEXT_LABEL, append: spec.append });
  if (!config.ok) throw new Error(config.problem);
  const grub = join(dir, GRUB_DIR);
  const modules = join(grub, "i386-pc");
  await mkdir(modules, { recursive: true });
  for (const name of await readdir(GRUB_I386_PC)) {
    if (name.endsWith(".mod") || name.endsWith(".lst")) await copyFile(join(GRUB_I386_PC, name), join(modules, name));
  }
  await writeFile(join(grub, "grub.cfg"), config.text);
  if (spec.grubenv !== undefined) {
    const env = grubenv(spec.grubenv);
    if (!env.ok) throw new Error(env.problem);
    await writeFile(join(grub, "grubenv"), env.text);
  }
  await mkdir(join(dir, "Kernel"), { recursive: true });
  for (const pair of new Map([spec.active, spec.recovery].map((p) => [p.name, p])).values()) {
    if (!/^[A-Za-z0-9._-]+$/.test(pair.name)) throw new Error(`Cannot name a kernel pair: use letters, digits, '.', '_' or '-', got ${JSON.stringify(pair.name)}`);
    await copyFile(pair.kernel, join(dir, "Kernel", `vmlinuz-${pair.name}`));
    await copyFile(pair.initrd, join(dir, "Kernel", `initrd-${pair.name}.img`));
  }
  // Relative links inside Kernel/, as AnthillaOS's: they stay right wherever BOOTEXT is mounted.
  const link = (target: string, at: string) => symlink(target, join(dir, at));
  await link(`vmlinuz-${spec.active.name}`, KERNEL_LINKS.activeKernel);
  await link(`initrd-${spec.active.name}.img`, KERNEL_LINKS.activeInitrd);
  await link(`vmlinuz-${spec.recovery.name}`, KERNEL_LINKS.recoveryKernel);
  await link(`initrd-${spec.recovery.name}.img`, KERNEL_LINKS.recoveryInitrd);
}

/**
 * boot.img and a core.img that finds the partition labelled BOOTEXT by itself
 * (so partition numbers do not matter), sets its prefix to BOOTEXT/grub and
 * puts its own messages on the serial console before grub.cfg is read.
 */
export async function grubBootCode(workDir: string): Promise<BiosBootCode> {
  const early = join(workDir, "grub-early.cfg");
  await writeFile(
    early,
    [
      "serial --unit=0 --speed=115200",
      "terminal_input serial",
      "terminal_output serial",
      `search --no-floppy --label --set=root ${BOOTEXT_LABEL}`,
      `set prefix=($root)/${GRUB_DIR}`,
      "",
    ].join("\n"),
  );
  const core = join(workDir, "core.img");
  await runCommand(["grub-mkimage", "-O", "i386-pc", "-d", GRUB_I386_PC, "-o", core, "-c", early, "-p", `/${GRUB_DIR}`, ...CORE_MODULES]);
  return {
    bootImage: new Uint8Array(await Bun.file(join(GRUB_I386_PC, "boot.img")).arrayBuffer()),
    coreImage: new Uint8Array(await Bun.file(core).arrayBuffer()),
  };
}

/** A disk that boots through GRUB: `partitions` must include one labelled BOOTEXT made with addGrubFiles. */
export async function buildGrubDisk(path: string, workDir: string, partitions: readonly PartitionSpec[]): Promise<DiskLayout> {
  if (!partitions.some((p) => p.label === BOOTEXT_LABEL)) throw new Error(`Cannot build a GRUB disk: no partition is labelled ${BOOTEXT_LABEL}, where GRUB's files live`);
  return buildDisk({ path, partitions, biosBoot: await grubBootCode(workDir) });
}
