// The bootloader's side of BOOTEXT, AnthillaOS's BootExt layout: GRUB boots
// the kernel and initramfs that the links in BOOTEXT/Kernel point at, so the
// controller changes what boots by replacing links and grubenv, never grub.cfg.
// grub.cfg is written once, when the disk is made; it is pure text here.

/** Where GRUB's files live on BOOTEXT (its prefix): grub.cfg, grubenv and the i386-pc modules. */
export const GRUB_DIR = "grub";
/** The links GRUB boots, relative to BOOTEXT's root; each names a file in the same folder. */
export const KERNEL_LINKS = {
  activeKernel: "Kernel/active-kernel",
  activeInitrd: "Kernel/active-initrd",
  recoveryKernel: "Kernel/recovery-kernel",
  recoveryInitrd: "Kernel/recovery-initrd",
} as const;
/** The menu entries' ids, the values grubenv's next_entry and saved_entry take. */
export const GRUB_ENTRIES = ["active", "recovery"] as const;
export type GrubEntry = (typeof GRUB_ENTRIES)[number];

export interface GrubConfigSpec {
  /** The BOOTEXT filesystem label GRUB searches for its root. */
  readonly bootextLabel: string;
  /** The kernel command line both entries boot with. */
  readonly append: string;
  /**
   * Seconds the menu waits. 0 by default: a lab machine boots unattended and
   * TCG makes every second count; the entry is chosen through grubenv instead.
   */
  readonly timeoutSeconds?: number;
}

export type GrubConfig = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly problem: string };

/**
 * Characters GRUB's script parser treats specially (quotes, variables, command
 * separators, blocks). Kept out rather than escaped: how GRUB re-quotes a
 * quoted argument for the kernel differs between versions, and no command line
 * the project uses needs them.
 */
const GRUB_SPECIAL = /["'\\$;|&<>{}`\n\r#]/;
/** ext4 stores at most 16 bytes of label. */
const LABEL = /^[A-Za-z0-9_-]{1,16}$/;

/**
 * Pure: grub.cfg for BOOTEXT. Which entry boots: grubenv's next_entry once
 * (GRUB clears it before booting, as grub-reboot's does), else saved_entry,
 * else "active". So a new kernel is tried once with next_entry=active while
 * saved_entry=recovery; if it never comes up, the next boot is recovery's
 * with no person at the machine, and the system that comes up healthy sets
 * saved_entry=active.
 */
export function grubConfig(spec: GrubConfigSpec): GrubConfig {
  const timeout = spec.timeoutSeconds ?? 0;
  if (!Number.isInteger(timeout) || timeout < 0) return { ok: false, problem: `Cannot write grub.cfg: the timeout must be a whole number of seconds, got ${timeout}` };
  if (!LABEL.test(spec.bootextLabel)) return { ok: false, problem: `Cannot write grub.cfg: the BOOTEXT label must be 1-16 letters, digits, _ or -, got ${JSON.stringify(spec.bootextLabel)}` };
  const append = spec.append.trim().replace(/\s+/g, " ");
  const special = GRUB_SPECIAL.exec(append);
  if (special !== null) {
    return { ok: false, problem: `Cannot write grub.cfg: the command line has ${JSON.stringify(special[0])}, which GRUB's parser would change, got ${JSON.stringify(spec.append)}` };
  }
  const entry = (id: GrubEntry, kernel: string, initrd: string) => [
    `menuentry "${id}" --id ${id} {`,
    `  echo "grub: booting ${id}: /${kernel} /${initrd}"`,
    `  linux /${kernel} ${append}`,
    `  initrd /${initrd}`,
    "}",
  ];
  const lines = [
    "# BOOTEXT/grub/grub.cfg, written when the disk was made (controller/plans/grub-config.ts).",
    "# What boots is chosen by the links in /Kernel and by grubenv, not by editing this file.",
    "serial --unit=0 --speed=115200",
    "terminal_input serial",
    "terminal_output serial",
    `search --no-floppy --label --set=root ${spec.bootextLabel}`,
    `set timeout=${timeout}`,
    "set default=active",
    "if [ -s ${prefix}/grubenv ]; then",
    "  load_env",
    "fi",
    "# next_entry boots once (grub-reboot's convention); saved_entry is the lasting choice.",
    'if [ -n "${next_entry}" ]; then',
    '  set default="${next_entry}"',
    "  set next_entry=",
    "  save_env next_entry",
    'elif [ -n "${saved_entry}" ]; then',
    '  set default="${saved_entry}"',
    "fi",
    ...entry("active", KERNEL_LINKS.activeKernel, KERNEL_LINKS.activeInitrd),
    ...entry("recovery", KERNEL_LINKS.recoveryKernel, KERNEL_LINKS.recoveryInitrd),
  ];
  return { ok: true, text: `${lines.join("\n")}\n` };
}

/** GRUB's environment block is exactly this many bytes, padded with '#'. */
export const GRUBENV_BYTES = 1024;
const GRUBENV_HEADER = "# GRUB Environment Block\n";

/**
 * Pure: a grubenv file, as grub-editenv writes it. GRUB's save_env rewrites the
 * block in place and refuses one of another size, so the size is exact.
 */
export function grubenv(values: Readonly<Record<string, string>>): GrubConfig {
  let body = GRUBENV_HEADER;
  for (const [name, value] of Object.entries(values)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return { ok: false, problem: `Cannot write grubenv: a variable name must be letters, digits and _, got ${JSON.stringify(name)}` };
    if (/[\n\\]/.test(value)) return { ok: false, problem: `Cannot write grubenv: ${name}'s value has a line break or backslash, got ${JSON.stringify(value)}` };
    body += `${name}=${value}\n`;
  }
  const bytes = Buffer.byteLength(body);
  if (bytes > GRUBENV_BYTES) return { ok: false, problem: `Cannot write grubenv: its variables take ${bytes} bytes, the block holds ${GRUBENV_BYTES}` };
  return { ok: true, text: body + "#".repeat(GRUBENV_BYTES - bytes) };
}
