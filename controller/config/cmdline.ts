// The kernel command line, split exactly as the kernel splits it and read into
// one typed object. A bad value never stops the boot: it becomes a warning
// that names the parameter, the value and what was expected, and the default.

import { normalizeAbsolutePath } from "./schema.ts";

export interface CmdlineParam {
  readonly name: string;
  /** undefined for a bare flag such as `shell`; "" for `shell=` */
  readonly value?: string;
}

/** One `controller.KEY=VALUE`; layers.ts types and checks KEY and VALUE. */
export interface ConfigOverride {
  /** The parameter as written, e.g. controller.boot.real_init */
  readonly param: string;
  /** A TOML dotted key, e.g. boot.real_init or tmpfs."/var/log".size */
  readonly key: string;
  readonly value: string;
}

export interface Cmdline {
  /** The command line as the kernel holds it: without the newline /proc/cmdline adds. */
  readonly raw: string;
  /** root= as given; "controller" means the controller picks the root. */
  readonly root?: string;
  /** real_init=PATH, normalised; absent when not given or invalid. */
  readonly realInit?: string;
  /** `shell`: open a shell before the handoff. */
  readonly shell: boolean;
  /** `rd.controller.debug`: debug lines on the console too. */
  readonly debug: boolean;
  /** `rd.controller.cut=POINT`, for the power-cut tests only: stop dead at that point (cut-points.ts). */
  readonly cut?: string;
  /** Every controller.KEY=VALUE, in command-line order. */
  readonly configOverrides: readonly ConfigOverride[];
  /**
   * Heddle's flags: heddle_boot=dist, heddle_update=NAME or /, heddle_fallback; `kexecFrom` is
   * rd.controller.kexec=NAME, which the controller adds when it kexecs an update (never kexec twice).
   */
  readonly heddle: { readonly boot?: "dist"; readonly update?: string; readonly fallback: boolean; readonly kexecFrom?: string };
  /** rd.controller.kexec_by=VERSION+COMMIT: the controller that kexec'd a slot's own kernel into this boot */
  readonly kexecBy?: string;
  /** GRUB's BOOT_IMAGE=: the kernel file the bootloader loaded, /Kernel/active-kernel or /Kernel/recovery-kernel on a BOOTEXT disk */
  readonly bootImage?: string;
  readonly net: boolean;
  readonly ssh: boolean;
  readonly lldpd: boolean;
  readonly sshKeysUrl?: string;
  readonly commandUrl?: string;
  readonly warnings: readonly string[];
}

/** lib/ctype.c's isspace() for ASCII. */
const KERNEL_SPACE = /[ \t\n\v\f\r]/;

const CONFIG_PREFIX = "controller.";
const OWN_PREFIX = "rd.controller.";
/** `controller.diskless`: boot from RAM (diskless.ts). */
const DISKLESS_FLAG = "controller.diskless";
const OWN_PARAMS = ["rd.controller.debug", "rd.controller.cut", "rd.controller.kexec", "rd.controller.kexec_by"];

/** A Heddle update's folder name: safe on a command line and as one path part. */
export const UPDATE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/**
 * Split a command line as the kernel's parse_args()/next_arg() (lib/params.c,
 * lib/cmdline.c) do, including their quirks: a `"` anywhere toggles quoting,
 * only a `"` right after the first `=` (and the token's last `"`) is dropped,
 * and an `=` as the very first character does not split. Parameters after a
 * bare `--` belong to init and are left out.
 */
export function tokenizeCmdline(raw: string): CmdlineParam[] {
  const line = withoutProcNewline(raw);
  const params: CmdlineParam[] = [];
  let position = skipSpaces(line, 0);
  while (position < line.length) {
    const { param, next } = nextArg(line, position);
    if (param.name === "--" && param.value === undefined) break;
    params.push(param);
    position = skipSpaces(line, next);
  }
  return params;
}

/**
 * The command line without the parameters `drop` picks and with `add` at the
 * end of the kernel's part (before a bare `--`, whose words belong to init).
 * Every word kept is kept exactly as written, quotes included.
 */
export function editCmdline(raw: string, drop: (name: string) => boolean, add: readonly string[] = []): string {
  const line = withoutProcNewline(raw);
  const kept: string[] = [];
  let initArgs: string | undefined;
  let position = skipSpaces(line, 0);
  while (position < line.length) {
    const { param, next } = nextArg(line, position);
    if (param.name === "--" && param.value === undefined) {
      initArgs = line.slice(position).trimEnd();
      break;
    }
    if (!drop(param.name)) kept.push(line.slice(position, Math.min(next - 1, line.length)));
    position = skipSpaces(line, next);
  }
  return [...kept, ...add, ...(initArgs === undefined ? [] : [initArgs])].join(" ");
}

/** /proc/cmdline appends a newline the kernel never parsed; inside an open quote it would join a value. */
function withoutProcNewline(raw: string): string {
  return raw.endsWith("\n") ? raw.slice(0, -1) : raw;
}

function skipSpaces(line: string, position: number): number {
  let next = position;
  while (next < line.length && KERNEL_SPACE.test(line.charAt(next))) next++;
  return next;
}

/** A port of next_arg(): `chars` mirrors the kernel's buffer, null where it writes '\0'. */
function nextArg(line: string, start: number): { param: CmdlineParam; next: number } {
  let begin = start;
  let inQuote = false;
  let quoted = false;
  if (line.charAt(begin) === '"') {
    begin++;
    inQuote = true;
    quoted = true;
  }
  let i = 0;
  let equals = 0;
  for (; begin + i < line.length; i++) {
    const char = line.charAt(begin + i);
    if (KERNEL_SPACE.test(char) && !inQuote) break;
    // `equals === 0` is the kernel's test too: an "=" at index 0 never splits.
    if (equals === 0 && char === "=") equals = i;
    if (char === '"') inQuote = !inQuote;
  }
  const chars: (string | null)[] = line.slice(begin, begin + i).split("");
  let valueStart: number | undefined;
  if (equals !== 0) {
    chars[equals] = null;
    valueStart = equals + 1;
    if (chars[valueStart] === '"') {
      valueStart++;
      if (chars[i - 1] === '"') chars[i - 1] = null;
    }
  }
  if (quoted && i > 0 && chars[i - 1] === '"') chars[i - 1] = null;
  const name = upToNull(chars, 0);
  const param = valueStart === undefined ? { name } : { name, value: upToNull(chars, valueStart) };
  return { param, next: begin + i + 1 };
}

function upToNull(chars: readonly (string | null)[], start: number): string {
  const end = chars.indexOf(null, start);
  return chars.slice(start, end === -1 ? undefined : end).join("");
}

/** Read the command line; the last of a repeated parameter wins, as with dracut's getarg. */
export function parseCmdline(raw: string): Cmdline {
  const params = new Map<string, string | undefined>();
  for (const { name, value } of tokenizeCmdline(raw)) {
    // delete first so the Map's order is the order of each parameter's last occurrence
    params.delete(name);
    params.set(name, value);
  }
  const warnings: string[] = [];
  const reader = new ParamReader(params, warnings);

  const configOverrides: ConfigOverride[] = [];
  for (const [name, value] of params) {
    if (name.startsWith(OWN_PREFIX) && !OWN_PARAMS.includes(name)) {
      warnings.push(`${name}: unknown parameter; the rd.controller.* parameters are ${OWN_PARAMS.join(", ")}`);
    }
    if (!name.startsWith(CONFIG_PREFIX)) continue;
    if (name === DISKLESS_FLAG) {
      // a flag, not a config key (which would be a table): it stands for controller.diskless.mode=always
      if (reader.flag(name)) configOverrides.push({ param: name, key: "diskless.mode", value: "always" });
      continue;
    }
    const key = name.slice(CONFIG_PREFIX.length);
    if (key === "") {
      warnings.push(`${describeParam(name, value)}: expected controller.KEY=VALUE such as controller.boot.real_init=/sbin/init; ignoring it`);
    } else if (value === undefined) {
      warnings.push(`${name}: expected ${name}=VALUE; ignoring it`);
    } else {
      configOverrides.push({ param: name, key, value });
    }
  }

  const root = reader.value("root", "root=DEVICE or root=controller", "ignoring it", (value) => value);
  const realInit = reader.value("real_init", "an absolute path such as /sbin/init", "using the default", normalizeAbsolutePath);
  const heddleBoot = reader.value("heddle_boot", "dist", "ignoring it", (value) =>
    value === "dist" ? value : undefined,
  );
  const heddleUpdate = reader.value("heddle_update", "/ or an update name such as lab-2024.1", "ignoring it", (value) =>
    value === "/" || UPDATE_NAME.test(value) ? value : undefined,
  );
  const kexecFrom = reader.value("rd.controller.kexec", "the name of the update that was kexec'd", "ignoring it", (value) =>
    UPDATE_NAME.test(value) ? value : undefined,
  );
  const kexecBy = reader.value("rd.controller.kexec_by", "the version+commit of the controller that kexec'd", "ignoring it", (value) =>
    UPDATE_NAME.test(value) ? value : undefined,
  );
  // as GRUB's linux command was given it: a path, or one with a device such as (hd0,gpt2)/vmlinuz
  const bootImage = reader.value("BOOT_IMAGE", "the kernel the bootloader loaded, such as /Kernel/active-kernel", "ignoring it", (value) => (value === "" ? undefined : value));
  const sshKeysUrl = reader.value("ssh_keys_url", "an http:// or https:// URL", "ignoring it", httpUrl);
  const commandUrl = reader.value("command_url", "an http:// or https:// URL", "ignoring it", httpUrl);
  const cut = reader.value("rd.controller.cut", "a cut point name such as switch-first-label", "ignoring it", (value) =>
    /^[a-z0-9-]+$/.test(value) ? value : undefined,
  );

  return {
    raw: withoutProcNewline(raw),
    ...(root === undefined ? {} : { root }),
    ...(realInit === undefined ? {} : { realInit }),
    shell: reader.flag("shell"),
    debug: reader.flag("rd.controller.debug"),
    ...(cut === undefined ? {} : { cut }),
    configOverrides,
    heddle: {
      ...(heddleBoot === undefined ? {} : { boot: heddleBoot }),
      ...(heddleUpdate === undefined ? {} : { update: heddleUpdate }),
      fallback: reader.flag("heddle_fallback"),
      ...(kexecFrom === undefined ? {} : { kexecFrom }),
    },
    ...(kexecBy === undefined ? {} : { kexecBy }),
    ...(bootImage === undefined ? {} : { bootImage }),
    net: reader.flag("net"),
    ssh: reader.flag("ssh"),
    lldpd: reader.flag("lldpd"),
    ...(sshKeysUrl === undefined ? {} : { sshKeysUrl }),
    ...(commandUrl === undefined ? {} : { commandUrl }),
    warnings,
  };
}

const TRUE_WORDS = new Set(["1", "yes", "true", "on"]);
const FALSE_WORDS = new Set(["0", "no", "false", "off"]);

/** Reads one parameter at a time, turning every bad value into a warning. */
class ParamReader {
  constructor(
    private readonly params: ReadonlyMap<string, string | undefined>,
    private readonly warnings: string[],
  ) {}

  /** Absent: false. Bare: true. Otherwise one of the usual words, or a warning and false. */
  flag(name: string): boolean {
    if (!this.params.has(name)) return false;
    const value = this.params.get(name);
    if (value === undefined || TRUE_WORDS.has(value)) return true;
    if (FALSE_WORDS.has(value)) return false;
    this.warnings.push(
      `${describeParam(name, value)}: expected ${name} alone or ${name}= one of 1, yes, true, on, 0, no, false, off; using false`,
    );
    return false;
  }

  /** The value of NAME=VALUE as `accept` returns it, or undefined with a warning when it is bare or refused. */
  value<T extends string>(
    name: string,
    expected: string,
    fallback: string,
    accept: (value: string) => T | undefined,
  ): T | undefined {
    if (!this.params.has(name)) return undefined;
    const value = this.params.get(name);
    const accepted = value === undefined ? undefined : accept(value);
    if (accepted === undefined) this.warnings.push(`${describeParam(name, value)}: expected ${expected}; ${fallback}`);
    return accepted;
  }
}

function describeParam(name: string, value: string | undefined): string {
  return value === undefined ? name : `${name}=${JSON.stringify(value)}`;
}

/** The URL in its canonical form (the parser drops stray tabs and newlines), or undefined when not http(s). */
function httpUrl(value: string): string | undefined {
  if (!URL.canParse(value)) return undefined;
  const url = new URL(value);
  return url.protocol === "http:" || url.protocol === "https:" ? url.href : undefined;
}
