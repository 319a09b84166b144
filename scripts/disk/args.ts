// scripts/blank-disk's command line, pure: what the admin typed becomes the
// options of one run, or every problem with it at once, each naming the
// option, what it got and what it expects.

import { isChannel } from "../../controller/update/manifest.ts";
import { isPublicKeyText } from "../../controller/update/signing.ts";
import type { Firmware } from "../../qemu-harness/grub-disk.ts";

export const USAGE = `Usage: scripts/blank-disk --target DISK [--size SIZE] --repo URL --key KEY [--key KEY ...]
         [--channel NAME] [--server URL ...] [--firmware bios|efi] [--kernel FILE --initrd FILE]
         [--append CMDLINE] [--bootext-size SIZE] [--config FILE ...] [--work DIR] [--force]

Makes DISK (a disk image file, or a block device: run as root) a managed machine's disk:
GPT, a BIOS boot partition (or an EFI System Partition), SYSFS holding the channel's
current image from URL with its signed record, an empty BACKUPFS, and BOOTEXT with
GRUB, config.d (servers, trusted keys) and the first kernel pair in Kernel/.

  --target DISK        an image file (made or replaced, at --size) or a block device (all of it)
  --size SIZE          the image file's size, e.g. 8G or 4096M (binary units); a block device has its own
  --repo URL           the repository the first image is fetched from and verified against --key
  --channel NAME       the channel to install and follow (default: stable)
  --key KEY            a trusted public key: its text or a .pub file from \`controller keygen\`; repeatable
  --server URL         an update server the machine asks on every boot; repeatable (default: --repo URL)
  --firmware bios|efi  how the machine starts GRUB (default: bios)
  --kernel FILE        the kernel of the first boot, with --initrd (the controller's dracut initramfs);
  --initrd FILE        not needed, and ignored, when the image's signed manifest names its own kernel
  --append CMDLINE     the kernel command line (default: ${"root=controller console=tty0 console=ttyS0,115200"})
  --bootext-size SIZE  BOOTEXT's size (default: 1G): room for three kernel pairs
  --config FILE        a config.d file for BOOTEXT (e.g. 30-boot.toml with boot.kernel_switch = "reboot"),
                       checked as the controller will read it; repeatable
  --work DIR           where the parts are built before they are written (default: beside an image file, else /var/tmp)
  --force              write over a disk that already has a partition table
`;

export const DEFAULT_APPEND = "root=controller console=tty0 console=ttyS0,115200";
export const DEFAULT_BOOTEXT_MIB = 1024;
const MIB_PER_UNIT: Readonly<Record<string, number>> = { M: 1, G: 1024, T: 1024 * 1024 };

export interface BlankDiskOptions {
  readonly target: string;
  /** the image file's size in MiB; undefined for a block device, or a file whose size stays */
  readonly sizeMiB?: number;
  readonly repo: string;
  readonly channel: string;
  /** public key texts (files already read by the caller) */
  readonly keys: readonly string[];
  readonly servers: readonly string[];
  readonly firmware: Firmware;
  readonly kernel?: { readonly kernel: string; readonly initrd: string };
  readonly append: string;
  readonly bootextMiB: number;
  /** the site's own config.d files for BOOTEXT, besides the one naming the servers and keys */
  readonly configFiles: readonly string[];
  readonly work?: string;
  readonly force: boolean;
}

export type ParsedArgs = { readonly ok: true; readonly options: BlankDiskOptions } | { readonly ok: false; readonly problems: readonly string[] };

/** Pure: "8G", "4096M", "512MiB" → MiB; undefined for anything else. */
export function parseSizeMiB(text: string): number | undefined {
  const match = /^([1-9][0-9]*)([MGT])(?:i?B)?$/i.exec(text);
  if (match === null) return undefined;
  const value = Number(match[1]) * (MIB_PER_UNIT[(match[2] ?? "").toUpperCase()] ?? 0);
  return Number.isSafeInteger(value) ? value : undefined;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "http:" || url.protocol === "https:") && url.host !== "";
  } catch {
    return false;
  }
}

const VALUED = new Set(["--target", "--size", "--repo", "--channel", "--key", "--server", "--firmware", "--kernel", "--initrd", "--append", "--bootext-size", "--config", "--work"]);
const REPEATABLE = new Set(["--key", "--server", "--config"]);

/**
 * Pure: the options, or every problem. `readKey` turns a --key that is not a
 * key's text into the text of the file it names (undefined when it cannot).
 */
export function parseArgs(argv: readonly string[], readKey: (file: string) => string | undefined): ParsedArgs {
  const problems: string[] = [];
  const values = new Map<string, string[]>();
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--force") {
      force = true;
      continue;
    }
    if (!VALUED.has(arg)) {
      problems.push(`Cannot use the argument ${JSON.stringify(arg)}: expected one of --force, ${[...VALUED].join(", ")}`);
      continue;
    }
    const value = argv[i + 1];
    if (value === undefined || value.startsWith("--")) {
      problems.push(`Cannot use ${arg}: it needs a value, got ${value === undefined ? "none" : JSON.stringify(value)}`);
      continue;
    }
    i++;
    const list = values.get(arg) ?? [];
    if (list.length > 0 && !REPEATABLE.has(arg)) problems.push(`Cannot use ${arg} twice: got ${JSON.stringify(list[0])} and ${JSON.stringify(value)}`);
    values.set(arg, [...list, value]);
  }
  const one = (name: string) => values.get(name)?.[0];
  const required = (name: string, what: string) => {
    const value = one(name);
    if (value === undefined) problems.push(`Cannot make the disk: ${name} is missing; expected ${what}`);
    return value ?? "";
  };

  const target = required("--target", "the disk image file or block device to write");
  const repo = required("--repo", "the repository's URL, e.g. http://repo.lab:8080/");
  if (repo !== "" && !isHttpUrl(repo)) problems.push(`Cannot use --repo ${JSON.stringify(repo)}: expected an http:// or https:// URL`);
  const servers = values.get("--server") ?? (repo === "" ? [] : [repo]);
  for (const server of servers) if (!isHttpUrl(server)) problems.push(`Cannot use --server ${JSON.stringify(server)}: expected an http:// or https:// URL`);
  const channel = one("--channel") ?? "stable";
  if (!isChannel(channel)) problems.push(`Cannot use --channel ${JSON.stringify(channel)}: expected a channel name such as "stable" (lowercase letters, digits, ".", "_", "-")`);

  const keys: string[] = [];
  const keyArgs = values.get("--key") ?? [];
  if (keyArgs.length === 0) problems.push("Cannot make the disk: --key is missing; expected a trusted public key (its text or the .pub file `controller keygen` wrote)");
  for (const key of keyArgs) {
    const text = isPublicKeyText(key) ? key : readKey(key)?.trim();
    if (text === undefined) problems.push(`Cannot use --key ${JSON.stringify(key)}: it is neither a public key's text nor a file that can be read`);
    else if (!isPublicKeyText(text)) problems.push(`Cannot use --key ${JSON.stringify(key)}: the file holds ${JSON.stringify(text.slice(0, 60))}, expected a public key such as \`controller keygen\` writes to PREFIX.pub`);
    else keys.push(text);
  }

  const firmware = one("--firmware") ?? "bios";
  if (firmware !== "bios" && firmware !== "efi") problems.push(`Cannot use --firmware ${JSON.stringify(firmware)}: expected bios or efi`);

  const kernelFile = one("--kernel");
  const initrdFile = one("--initrd");
  if ((kernelFile === undefined) !== (initrdFile === undefined)) {
    problems.push(`Cannot use ${kernelFile === undefined ? "--initrd" : "--kernel"} alone: the kernel and its initramfs go together (--kernel FILE --initrd FILE)`);
  }

  const sizeText = one("--size");
  const sizeMiB = sizeText === undefined ? undefined : parseSizeMiB(sizeText);
  if (sizeText !== undefined && sizeMiB === undefined) problems.push(`Cannot use --size ${JSON.stringify(sizeText)}: expected a size such as 8G or 4096M`);
  const bootextText = one("--bootext-size");
  const bootextMiB = bootextText === undefined ? DEFAULT_BOOTEXT_MIB : parseSizeMiB(bootextText);
  if (bootextMiB === undefined) problems.push(`Cannot use --bootext-size ${JSON.stringify(bootextText)}: expected a size such as 1G or 512M`);

  if (problems.length > 0) return { ok: false, problems };
  const work = one("--work");
  return {
    ok: true,
    options: {
      target,
      ...(sizeMiB === undefined ? {} : { sizeMiB }),
      repo,
      channel,
      keys,
      servers,
      firmware: firmware as Firmware,
      ...(kernelFile === undefined || initrdFile === undefined ? {} : { kernel: { kernel: kernelFile, initrd: initrdFile } }),
      append: one("--append") ?? DEFAULT_APPEND,
      bootextMiB: bootextMiB ?? DEFAULT_BOOTEXT_MIB,
      configFiles: values.get("--config") ?? [],
      ...(work === undefined ? {} : { work }),
      force,
    },
  };
}
