// A disk that boots through GRUB, in AnthillaOS's BootExt layout: GRUB's
// modules and grub.cfg in BOOTEXT/grub, the kernels and initramfs images in
// BOOTEXT/Kernel with the active-* and recovery-* links GRUB boots. Debian's
// grub-pc-bin provides the BIOS images (scripts/setup installs it),
// grub-efi-amd64-bin the UEFI ones; nothing here touches the host's own
// bootloader: grub-mkimage only writes a file. BIOS and UEFI share BOOTEXT's
// grub.cfg, grubenv and Kernel/; only the first stage differs.

import { copyFile, mkdir, readdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GRUB_DIR, type GrubEntry, grubConfig, grubenv, KERNEL_LINKS } from "../controller/plans/grub-config.ts";
import { runCommand } from "./command.ts";
import { type BiosBootCode, buildDisk, type DiskLayout, type PartitionSpec } from "./disk.ts";

/** Where Debian's grub-pc-bin puts GRUB's BIOS images and modules. */
export const GRUB_I386_PC = "/usr/lib/grub/i386-pc";
/** Where Debian's grub-efi-amd64-bin puts GRUB's UEFI modules. */
export const GRUB_X86_64_EFI = "/usr/lib/grub/x86_64-efi";

export type Firmware = "bios" | "efi";
const PLATFORM_DIRS: Readonly<Record<Firmware, string>> = { bios: GRUB_I386_PC, efi: GRUB_X86_64_EFI };
/** The ESP's size: BOOTX64.EFI is about 1 MB; FAT needs some room around it. */
export const ESP_MIB = 8;
export const BOOTEXT_LABEL = "BOOTEXT";
/**
 * In core.img itself, so it can find BOOTEXT and read grub.cfg; everything
 * else (linux, echo, test, loadenv, ...) is loaded from BOOTEXT/grub/i386-pc.
 */
const CORE_MODULES = ["part_gpt", "ext2", "search", "search_label", "serial", "terminal", "normal"];

/** One kernel and initramfs pair on BOOTEXT/Kernel. */
export interface KernelPair {
  /** Names the copies: Kernel/vmlinuz-NAME and Kernel/initrd-NAME.img; two entries may share one pair. */
  readonly name: string;
  readonly kernel: string;
  readonly initrd: string;
}

/** GRUB's own files on BOOTEXT: grub.cfg, grubenv and the modules. */
export interface GrubLoaderSpec {
  /** The kernel command line of both entries. */
  readonly append: string;
  /** grubenv's variables (next_entry, saved_entry); none gives no grubenv file, so "active" boots. */
  readonly grubenv?: Readonly<Partial<Record<"next_entry" | "saved_entry", GrubEntry>>>;
  /** Whose modules go to BOOTEXT/grub: i386-pc for "bios" (the default), x86_64-efi for "efi". */
  readonly firmware?: Firmware;
}

export interface GrubBootextSpec extends GrubLoaderSpec {
  readonly active: KernelPair;
  readonly recovery: KernelPair;
}

/**
 * Fills `dir` (BOOTEXT's future root, which may already hold config.d, DIRS,
 * ...) with GRUB's files: grub/grub.cfg, grub/grubenv (when asked for) and
 * the modules of the firmware's platform.
 */
export async function addGrubLoader(dir: string, spec: GrubLoaderSpec): Promise<void> {
  const config = grubConfig({ bootextLabel: BOOTEXT_LABEL, append: spec.append });
  if (!config.ok) throw new Error(config.problem);
  const grub = join(dir, GRUB_DIR);
  const platform = PLATFORM_DIRS[spec.firmware ?? "bios"];
  // GRUB looks for its modules in PREFIX/PLATFORM, named as Debian names the folder
  const modules = join(grub, platform.slice(platform.lastIndexOf("/") + 1));
  await mkdir(modules, { recursive: true });
  for (const name of await readdir(platform)) {
    if (name.endsWith(".mod") || name.endsWith(".lst")) await copyFile(join(platform, name), join(modules, name));
  }
  await writeFile(join(grub, "grub.cfg"), config.text);
  if (spec.grubenv !== undefined) {
    const env = grubenv(spec.grubenv);
    if (!env.ok) throw new Error(env.problem);
    await writeFile(join(grub, "grubenv"), env.text);
  }
}

/**
 * GRUB's files (addGrubLoader) and the kernel pairs, each file linked
 * directly: the tests' BOOTEXT, where the two entries' pairs differ.
 */
export async function addGrubFiles(dir: string, spec: GrubBootextSpec): Promise<void> {
  await addGrubLoader(dir, spec);
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

/** GRUB's first commands, in its image: the serial console, then BOOTEXT found by label as root and prefix. */
async function earlyConfig(workDir: string): Promise<string> {
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
  return early;
}

/**
 * boot.img and a core.img that finds the partition labelled BOOTEXT by itself
 * (so partition numbers do not matter), sets its prefix to BOOTEXT/grub and
 * puts its own messages on the serial console before grub.cfg is read.
 */
export async function grubBootCode(workDir: string): Promise<BiosBootCode> {
  const core = join(workDir, "core.img");
  await runCommand(["grub-mkimage", "-O", "i386-pc", "-d", GRUB_I386_PC, "-o", core, "-c", await earlyConfig(workDir), "-p", `/${GRUB_DIR}`, "biosdisk", ...CORE_MODULES]);
  return {
    bootImage: new Uint8Array(await Bun.file(join(GRUB_I386_PC, "boot.img")).arrayBuffer()),
    coreImage: new Uint8Array(await Bun.file(core).arrayBuffer()),
  };
}

/**
 * The ESP's content: GRUB as EFI/BOOT/BOOTX64.EFI, the path UEFI firmware
 * boots when it has no boot entries (no efibootmgr needed), with the same
 * early config as core.img.
 */
export async function grubEfiFolder(workDir: string): Promise<string> {
  const esp = join(workDir, "esp");
  await mkdir(join(esp, "EFI", "BOOT"), { recursive: true });
  const image = join(esp, "EFI", "BOOT", "BOOTX64.EFI");
  await runCommand(["grub-mkimage", "-O", "x86_64-efi", "-d", GRUB_X86_64_EFI, "-o", image, "-c", await earlyConfig(workDir), "-p", `/${GRUB_DIR}`, ...CORE_MODULES]);
  return esp;
}

/**
 * A disk that boots through GRUB: `partitions` must include one labelled
 * BOOTEXT made with addGrubFiles (with the same firmware). "bios": a BIOS boot
 * partition first and GRUB in the MBR; "efi": an EFI System Partition first.
 */
export async function buildGrubDisk(path: string, workDir: string, partitions: readonly PartitionSpec[], firmware: Firmware = "bios"): Promise<DiskLayout> {
  if (!partitions.some((p) => p.label === BOOTEXT_LABEL)) throw new Error(`Cannot build a GRUB disk: no partition is labelled ${BOOTEXT_LABEL}, where GRUB's files live`);
  if (firmware === "efi") {
    const esp: PartitionSpec = { efiSystem: true, label: "ESP", sizeMiB: ESP_MIB, content: await grubEfiFolder(workDir) };
    return buildDisk({ path, partitions: [esp, ...partitions] });
  }
  return buildDisk({ path, partitions, biosBoot: await grubBootCode(workDir) });
}
