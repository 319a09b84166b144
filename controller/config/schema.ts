// The shape of the controller's configuration, written once: the full Config
// the boot stages read, and the partial layer that one config file or one
// `controller.KEY=VALUE` override may give. Every leaf carries the sentence
// that tells a person what it expects, so a problem reads
// `key timeouts.devices_seconds: expected an integer from 1 to 3600, got "ten"`.

import { z } from "./zod.ts";
import { valueAt } from "./value-at.ts";
import { DOWNLOAD_WINDOW_EXPECTED, isDownloadWindow, isTimeZone } from "./download-window.ts";

const HOSTNAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9-]{1,63})*$/;

/** A host name as update.machine_name and a manifest's machine selectors take it. */
export function isHostname(value: string): boolean {
  return HOSTNAME.test(value);
}

/** The most update.max_manifest_validity_days allows, and publish's cap on --expires-days. */
export const MAX_MANIFEST_VALIDITY_DAYS = 3650;

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * The path with `//` collapsed and a trailing `/` dropped, or undefined when it
 * is not absolute, names "/" itself, has a "." or ".." part or a control
 * character. Shared with the kernel command line's real_init=.
 */
export function normalizeAbsolutePath(path: string): string | undefined {
  if (!path.startsWith("/") || CONTROL_CHARS.test(path)) return undefined;
  const parts = path.split("/").filter((part) => part !== "");
  if (parts.length === 0 || parts.some((part) => part === "." || part === "..")) return undefined;
  return `/${parts.join("/")}`;
}

function isNormalizedAbsolutePath(path: string): boolean {
  return normalizeAbsolutePath(path) === path;
}

/** A path that stays inside the folder it is relative to: no leading "/", no ".", ".." or empty parts. */
function isInsideRelativePath(path: string): boolean {
  if (path === "" || CONTROL_CHARS.test(path)) return false;
  return path.split("/").every((part) => part !== "" && part !== "." && part !== "..");
}

/** A string leaf; `expected` completes "expected ..." for both a wrong type and a bad value. */
function text(expected: string, valid: (value: string) => boolean) {
  return z.string({ error: expected }).refine(valid, { error: expected });
}

function integer(min: number, max: number) {
  const expected = `an integer from ${min} to ${max}`;
  return z
    .number({ error: expected })
    .int({ error: expected })
    .min(min, { error: expected })
    .max(max, { error: expected });
}

const flag = z.boolean({ error: "true or false" });

function table<Shape extends z.ZodRawShape>(shape: Shape) {
  return z.strictObject(shape, { error: "a table" });
}

const label = text(
  "a filesystem label such as \"SYSFS\" (not empty, no control characters)",
  (value) => value !== "" && !CONTROL_CHARS.test(value),
);

function insidePath(example: string) {
  return text(
    `a relative path such as "${example}" (no leading /, no "." or ".." parts, no empty parts)`,
    isInsideRelativePath,
  );
}

const labelsShape = { system: label, backup: label, deprived: label, bootext: label };

const slotShape = {
  image: insidePath("system.squashfs"),
  fs_type: text("a filesystem type such as \"ext4\"", (value) => /^[a-z0-9][a-z0-9._-]*$/.test(value)),
};

/**
 * `boot.kernel_switch`: how a boot gets onto the kernel its slot's image
 * carries when that is not the running kernel (plans/kernel-switch.ts decides):
 *   "kexec"  count the attempt, kexec the slot's kernel and initrd (checked against
 *            their signed sha512) with rd.controller.kexec, so the next controller
 *            never kexecs again; BOOTEXT's entries, when there are some, are brought
 *            in step first and a failed kexec reboots into them. Needs no bootloader
 *            (PXE, QEMU's -kernel), hence the default.
 *   "reboot" write the kernel and initrd as BOOTEXT's active entry (the previous pair
 *            becomes the recovery entry), then reboot. The choice under Secure Boot's
 *            lockdown, where kexec loads only signed kernels.
 *   "off"    boot on the running kernel, as before.
 */
export const KERNEL_SWITCH_MODES = ["kexec", "reboot", "off"] as const;
export const KERNEL_SWITCH_DEFAULT: (typeof KERNEL_SWITCH_MODES)[number] = "kexec";

const bootShape = {
  real_init: text(
    "a normalised absolute path such as \"/sbin/init\" (no //, no trailing /, no \".\" or \"..\" parts)",
    isNormalizedAbsolutePath,
  ),
  kernel_switch: z.enum(KERNEL_SWITCH_MODES, { error: 'one of "kexec", "reboot" or "off"' }),
};

const timeoutsShape = {
  devices_seconds: integer(1, 3600),
  command_seconds: integer(1, 3600),
  network_seconds: integer(1, 3600),
  server_seconds: integer(1, 3600),
  request_seconds: integer(1, 3600),
  image_min_kib_per_second: integer(1, 1048576),
  image_window_seconds: integer(1, 3600),
};

const bootextShape = { config_dir: insidePath("config.d"), read_only: flag };

const overmountsShape = { enabled: flag, source: insidePath("DIRS") };

/** An update server's base URL: http or https, no credentials, query or fragment (the repository paths are appended). */
function isServerUrl(value: string): boolean {
  if (/[?#\s\u0000-\u001f\u007f]/.test(value)) return false;
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.username === "" && url.password === "";
  } catch {
    return false;
  }
}

/** base64 of a 32-byte ed25519 public key, as `controller keygen` prints it. */
function isPublicKeyText(value: string): boolean {
  return /^[A-Za-z0-9+/]{43}=$/.test(value) && Buffer.from(value, "base64").length === 32;
}

function list<T extends z.ZodType>(item: T, expected: string) {
  return z.array(item, { error: expected });
}

const updateShape = {
  servers: list(
    text("an http:// or https:// base URL such as \"https://updates.example.org/lab/\" (no user, query or fragment)", isServerUrl),
    "an array of base URLs such as [\"https://updates.example.org/lab/\"]",
  ),
  channel: text("a channel name such as \"stable\" (lowercase letters, digits, \".\", \"_\" or \"-\", at most 64)", (value) =>
    /^[a-z0-9][a-z0-9._-]{0,63}$/.test(value),
  ),
  trusted_keys: list(
    text("an ed25519 public key as `controller keygen` prints it (base64 of 32 bytes, 44 characters)", isPublicKeyText),
    "an array of public keys such as [\"BASE64...=\"]",
  ),
  ca_bundle: text(
    "a normalised absolute path such as \"/etc/ssl/certs/ca-certificates.crt\" (no //, no trailing /, no \".\" or \"..\" parts)",
    isNormalizedAbsolutePath,
  ),
  resume_attempts: integer(0, 100),
  machine_name: text("a host name such as \"lab-07\" or \"lab-07.example.org\", or \"\" for none", (value) => value === "" || isHostname(value)),
  max_manifest_validity_days: integer(1, MAX_MANIFEST_VALIDITY_DAYS),
  allow_redirect_to_http: flag,
  download_window: text(DOWNLOAD_WINDOW_EXPECTED, isDownloadWindow),
  timezone: text('a time zone such as "UTC" or "Europe/Berlin" (an IANA name the controller knows)', isTimeZone),
};

const healthShape = {
  max_attempts: integer(1, 100),
  require_clean_shutdown: flag,
  verify_image: flag,
  fsck: flag,
  required_files: list(
    text("a normalised absolute path inside the image such as \"/sbin/init\" (no //, no trailing /, no \".\" or \"..\" parts)", isNormalizedAbsolutePath),
    "an array of paths such as [\"/sbin/init\"]",
  ),
  both_unhealthy: text("one of \"newest\", \"backup\" or \"shell\"", (value) => ["newest", "backup", "shell"].includes(value)),
};

const networkShape = {
  interfaces: list(
    text("a network interface name such as \"eth0\" (1 to 15 characters, no \"/\", space or control character)", (value) =>
      /^[^/\s\u0000-\u001f\u007f]{1,15}$/.test(value) && value !== "." && value !== "..",
    ),
    "an array of interface names such as [\"eth0\"]",
  ),
};

/**
 * One public key line as OpenSSH and dropbear read authorized_keys: a key type
 * dropbear knows, the key in base64, an optional comment. Options before the
 * type (from="...", command="...") are not taken: a lab key is a plain key.
 */
export const AUTHORIZED_KEY_LINE =
  /^(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}(?: [^\u0000-\u001f\u007f]*)?$/;

const sshShape = {
  authorized_keys: list(
    text("a public key line such as \"ssh-ed25519 AAAAC3Nz... admin@lab\" (type, base64 key, optional comment; no options, no line breaks)", (value) =>
      AUTHORIZED_KEY_LINE.test(value),
    ),
    "an array of public key lines such as [\"ssh-ed25519 AAAAC3Nz... admin@lab\"]",
  ),
  wait_seconds: integer(1, 86400),
  port: integer(1, 65535),
};

const remoteShape = { allow_unsigned: flag, command_timeout_seconds: integer(1, 86400) };

/** Where the image of a diskless boot lives: a tmpfs of its own under /run/controller, which moves into the booted system. */
const DISKLESS_DIR_PREFIX = "/run/controller/";

/** PXE and diskless boots: the image from the update server, run from RAM (diskless.ts). */
const disklessShape = {
  mode: text("one of \"off\", \"always\" or \"when-no-slots\"", (value) => ["off", "always", "when-no-slots"].includes(value)),
  ram_margin_mib: integer(0, 1048576),
  dir: text(
    `a normalised absolute path under ${DISKLESS_DIR_PREFIX} such as "${DISKLESS_DIR_PREFIX}diskless" (no //, no trailing /, no "." or ".." parts)`,
    (value) => isNormalizedAbsolutePath(value) && value.startsWith(DISKLESS_DIR_PREFIX),
  ),
};

/**
 * Where the booted system sends its reports (fleet/report-sender.ts, `controller fleet-report`).
 * The token is not a value here: the boot report holds every value and goes to the fleet server,
 * whose page shows it. Only the machine's own config sets these, never a server's (boot-config.ts).
 */
const fleetShape = {
  server: text(
    "an http:// or https:// base URL such as \"https://fleet.example.org/\" (no user, query or fragment), or \"\" for none",
    (value) => value === "" || isServerUrl(value),
  ),
  token_file: text(
    "a normalised absolute path such as \"/etc/controller/fleet-token\" (no //, no trailing /, no \".\" or \"..\" parts)",
    isNormalizedAbsolutePath,
  ),
  ca_bundle: text(
    "a normalised absolute path such as \"/etc/ssl/certs/ca-certificates.crt\", or \"\" for the controller's built-in certificate authorities",
    (value) => value === "" || isNormalizedAbsolutePath(value),
  ),
};

/** Heddle's updates on BOOTEXT, booted with kexec (heddle.ts). */
const heddleShape = {
  updates_dir: insidePath("updates"),
  allow_unsigned: flag,
  prompt_seconds: integer(1, 3600),
};

const tmpfsEntryShape = {
  enabled: flag,
  // No leading zero: the kernel's memparse reads "064m" as octal.
  size: text("a tmpfs size such as \"64m\", \"2g\" or \"50%\" (digits with an optional k, m or g; or 1 to 100 then %)", (value) =>
    /^(?:[1-9][0-9]*[kmgKMG]?|(?:100|[1-9][0-9]?)%)$/.test(value),
  ),
  // A string, because TOML has no octal literal without 0o and people write 0755.
  mode: text("an octal mode as a string such as \"0755\" (3 or 4 digits from 0 to 7)", (value) =>
    /^[0-7]{3,4}$/.test(value),
  ),
  seed_from_image: flag,
};

/** Defaults of a [tmpfs."/path"] table that no lower layer knows; size and mode have no sensible default. */
export const NEW_TMPFS_DEFAULTS = { enabled: true, seed_from_image: false } as const;

const tmpfsPath = text(
  "a normalised absolute path other than \"/\" as the mount point, such as \"/var/log\" (no //, no trailing /, no \".\" or \"..\" parts)",
  isNormalizedAbsolutePath,
);

const SECTION_SHAPES = {
  labels: labelsShape,
  slot: slotShape,
  boot: bootShape,
  timeouts: timeoutsShape,
  bootext: bootextShape,
  overmounts: overmountsShape,
  update: updateShape,
  network: networkShape,
  health: healthShape,
  heddle: heddleShape,
  ssh: sshShape,
  remote: remoteShape,
  diskless: disklessShape,
  fleet: fleetShape,
} as const;

const LABEL_KEYS = Object.keys(labelsShape) as (keyof typeof labelsShape)[];

const labelsSchema = table(labelsShape).superRefine((labels, context) => {
  // Two roles on one label would make the controller mount one partition as both.
  LABEL_KEYS.forEach((key, index) => {
    const earlier = LABEL_KEYS.slice(0, index).find((other) => labels[other] === labels[key]);
    if (earlier !== undefined) {
      context.addIssue({ code: "custom", path: [key], message: `a label different from labels.${earlier}` });
    }
  });
});

/** The whole configuration; its type is Config. */
const configSchema = table({
  labels: labelsSchema,
  slot: table(slotShape),
  boot: table(bootShape),
  timeouts: table(timeoutsShape),
  bootext: table(bootextShape),
  overmounts: table(overmountsShape),
  update: table(updateShape),
  network: table(networkShape),
  health: table(healthShape),
  heddle: table(heddleShape),
  ssh: table(sshShape),
  remote: table(remoteShape),
  diskless: table(disklessShape),
  fleet: table(fleetShape),
  tmpfs: z.record(tmpfsPath, table(tmpfsEntryShape), { error: "a table" }),
});

const configLayerSchema = table({
  labels: table(labelsShape).partial(),
  slot: table(slotShape).partial(),
  boot: table(bootShape).partial(),
  timeouts: table(timeoutsShape).partial(),
  bootext: table(bootextShape).partial(),
  overmounts: table(overmountsShape).partial(),
  update: table(updateShape).partial(),
  network: table(networkShape).partial(),
  health: table(healthShape).partial(),
  heddle: table(heddleShape).partial(),
  ssh: table(sshShape).partial(),
  remote: table(remoteShape).partial(),
  diskless: table(disklessShape).partial(),
  fleet: table(fleetShape).partial(),
  tmpfs: z.record(tmpfsPath, table(tmpfsEntryShape).partial(), { error: "a table" }),
}).partial();

/** The fully resolved configuration the boot stages read. */
export type Config = z.infer<typeof configSchema>;
export type TmpfsEntry = Config["tmpfs"][string];
/** What one layer sets: any subset of Config. */
export type ConfigLayerValues = z.infer<typeof configLayerSchema>;

export const DEFAULT_CONFIG: Config = {
  labels: { system: "SYSFS", backup: "BACKUPFS", deprived: "DEPRIVED", bootext: "BOOTEXT" },
  slot: { image: "system.squashfs", fs_type: "ext4" },
  boot: { real_init: "/sbin/init", kernel_switch: KERNEL_SWITCH_DEFAULT },
  timeouts: {
    devices_seconds: 30,
    command_seconds: 120,
    network_seconds: 20,
    server_seconds: 15,
    request_seconds: 30,
    image_min_kib_per_second: 64,
    image_window_seconds: 60,
  },
  bootext: { config_dir: "config.d", read_only: false },
  overmounts: { enabled: true, source: "DIRS" },
  update: {
    servers: [],
    channel: "stable",
    trusted_keys: [],
    ca_bundle: "/etc/ssl/certs/ca-certificates.crt",
    resume_attempts: 5,
    allow_redirect_to_http: false,
    machine_name: "",
    max_manifest_validity_days: MAX_MANIFEST_VALIDITY_DAYS,
    download_window: "",
    timezone: "UTC",
  },
  network: { interfaces: [] },
  ssh: { authorized_keys: [], wait_seconds: 600, port: 22 },
  remote: { allow_unsigned: false, command_timeout_seconds: 300 },
  health: { max_attempts: 3, require_clean_shutdown: false, verify_image: true, fsck: true, required_files: [], both_unhealthy: "newest" },
  heddle: { updates_dir: "updates", allow_unsigned: false, prompt_seconds: 120 },
  diskless: { mode: "off", ram_margin_mib: 256, dir: "/run/controller/diskless" },
  fleet: { server: "", token_file: "/etc/controller/fleet-token", ca_bundle: "/etc/ssl/certs/ca-certificates.crt" },
  tmpfs: {
    "/etc": { enabled: true, size: "64m", mode: "0755", seed_from_image: true },
    "/var/log": { enabled: true, size: "64m", mode: "0755", seed_from_image: false },
    "/tmp": { enabled: true, size: "50%", mode: "1777", seed_from_image: false },
  },
};

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problems: string[] };

/** Check what one layer (a parsed TOML document) sets; problems name each key, what it expects and what it got. */
export function checkConfigLayer(input: unknown): Checked<ConfigLayerValues> {
  return check(configLayerSchema, input);
}

/** The rules of configSchema that span keys, which no single layer's check can see. */
const crossKeySchema = table({ labels: labelsSchema });

/**
 * Check a configuration merged from the defaults and layers that each passed
 * checkConfigLayer. Every value is then one its key accepts, so what is left
 * of checking it whole against configSchema is the rule across keys (no two
 * roles on one label), with the same problems in the same words. Checking
 * only that matters under TCG, where a boot merges over a dozen layers,
 * twice or three times: the whole check of each cost about 10 ms, and its
 * first run 130–170 ms.
 */
export function checkMergedConfig(input: Config): Checked<Config> {
  const checked = check(crossKeySchema, { labels: input.labels });
  return checked.ok ? { ok: true, value: input } : checked;
}

function check<T>(schema: z.ZodType<T>, input: unknown): Checked<T> {
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problems: result.error.issues.flatMap((issue) => describeIssue(input, issue)) };
}

function describeIssue(input: unknown, issue: z.core.$ZodIssue): string[] {
  const path = issue.path.map(String);
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => `key ${dottedKey([...path, key])}: unknown key; ${knownKeys(path)}`);
    case "invalid_key": {
      // The record's key is the bad value here, e.g. [tmpfs."etc"].
      const expected = issue.issues[0]?.message ?? issue.message;
      return [`key ${dottedKey(path)}: expected ${expected}, got ${JSON.stringify(path.at(-1))}`];
    }
    default:
      return [`key ${dottedKey(path)}: expected ${issue.message}, got ${describeValue(valueAt(input, path))}`];
  }
}

function knownKeys(path: readonly string[]): string {
  const [section, entry] = path;
  if (section === undefined) return `the tables are ${[...Object.keys(SECTION_SHAPES), "tmpfs"].join(", ")}`;
  const keys = entry === undefined && section !== "tmpfs"
    ? Object.keys(SECTION_SHAPES[section as keyof typeof SECTION_SHAPES])
    : Object.keys(tmpfsEntryShape);
  return `[${dottedKey(path)}] has ${keys.join(", ")}`;
}

/** A value as a person wrote it in TOML, short. */
function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" && !Number.isFinite(value)) return Number.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
  if (value instanceof Date) return `the date ${value.toISOString()}`;
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object" && value !== null) return "a table";
  return String(value);
}

/** A TOML dotted key: parts that are not bare keys are quoted, as in tmpfs."/var/log".size. */
export function dottedKey(path: readonly string[]): string {
  return path.map((part) => (/^[A-Za-z0-9_-]+$/.test(part) ? part : JSON.stringify(part))).join(".");
}
