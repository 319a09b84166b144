// The signed manifest of an update channel: what it may contain, which config
// files a machine takes from it, and whether a machine installs it. Pure, no
// I/O: the controller, `publish` and `verify` all read manifests through here,
// so a publisher can never write one that a controller would refuse.
// docs/updates.md tells the repository format and the threats these rules meet.

import { z } from "../config/zod.ts";
import { isHostname } from "../config/schema.ts";
import { valueAt } from "../config/value-at.ts";
import { chunkIndexMaxBytes } from "./chunk-index.ts";
import { CHUNK_HASHES, chunkCount, MIN_CHUNK_BYTES } from "./chunks.ts";
import { isKernelRelease, RELEASE_EXPECTED } from "./kernel-release.ts";

/**
 * The format `publish` writes for an image without a kernel: a controller from
 * before format 2 takes it exactly as before.
 */
export const MANIFEST_FORMAT = 1;
/**
 * Format 2 adds the optional `kernel` section (the image carries its kernel,
 * issue 14). A controller that knows only format 1 refuses a format-2 manifest
 * as a whole and boots its local system: that is deliberate, because one that
 * dropped the unknown key would boot the new root filesystem on its old kernel,
 * without modules (see docs/issue-14/kernel-convention.md).
 */
export const MANIFEST_FORMAT_KERNEL = 2;
/**
 * Format 3 adds the optional `rollout` section (a version for a share of the
 * channel's machines, issue 17) to what format 2 may hold. `publish` and
 * `rollout` write it only for a share below 100 %: a controller that dropped
 * the unknown key would install the version at once, so a canary at 5 % would
 * reach every machine that runs an older controller. Those refuse format 3 as a
 * whole and boot their local system until the version reaches 100 %, which is
 * written as format 1 or 2 again, without the key.
 */
export const MANIFEST_FORMAT_ROLLOUT = 3;
/** Every manifest format this controller reads; any other is refused as a whole. */
export const MANIFEST_FORMATS: readonly number[] = [MANIFEST_FORMAT, MANIFEST_FORMAT_KERNEL, MANIFEST_FORMAT_ROLLOUT];
/** Caps on what a controller downloads before it has checked anything: a hostile server cannot send endless data. */
export const MANIFEST_MAX_BYTES = 65536;
export const SIGNATURE_MAX_BYTES = 4096;
export const CONFIG_FILE_MAX_BYTES = 65536;

const CHANNEL = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const VERSION = /^(?:0|[1-9][0-9]{0,8})(?:\.(?:0|[1-9][0-9]{0,8})){0,3}$/;
const VERSION_EXPECTED = 'a version such as "1.2.0" (1 to 4 dot-separated numbers of at most 9 digits, no leading zeros)';
const SHA512 = /^[0-9a-f]{128}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;
const CONFIG_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*\.toml$/;
const CONFIG_FILE_NAME_MAX = 128;
const UTC_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;
// Deliberately narrower than what a URL may hold: no "%" (the URL parser reads "%2e%2e" as ".."),
// no "\" (read as "/"), no ":" (a scheme), no "?" or "#"; so a relative URL never leaves the base.
const RELATIVE_URL_PART = /^[A-Za-z0-9._~+-]+$/;
const ABSOLUTE_URL = /^https?:\/\/[^\s\u0000-\u001f\u007f]+$/i;

export function isChannel(value: string): boolean {
  return CHANNEL.test(value);
}

export function isVersion(value: string): boolean {
  return VERSION.test(value);
}

export function isMac(value: string): boolean {
  return MAC.test(value);
}

/** A name that lands in config.d and never leaves it: no "/", no "..", not hidden, *.toml. */
export function isConfigFileName(value: string): boolean {
  return value.length <= CONFIG_FILE_NAME_MAX && CONFIG_FILE_NAME.test(value);
}

/** An ISO 8601 time in UTC as toISOString writes it, a real date (no February 30). */
export function isUtcTimestamp(value: string): boolean {
  if (!UTC_TIMESTAMP.test(value)) return false;
  const time = Date.parse(value);
  // the round trip refuses dates the parser would roll over, such as February 30
  return Number.isFinite(time) && new Date(time).toISOString().slice(0, 19) === value.slice(0, 19);
}

function isManifestUrl(value: string): boolean {
  if (ABSOLUTE_URL.test(value)) return URL.canParse(value);
  return value.split("/").every((part) => RELATIVE_URL_PART.test(part) && part !== "." && part !== "..");
}

/** Compare two versions part by part as numbers, missing parts as 0: negative when a < b, 0 when equal, positive when a > b. */
export function compareVersions(a: string, b: string): number {
  for (const version of [a, b]) {
    if (!isVersion(version)) throw new Error(`Cannot compare versions: ${JSON.stringify(version)} is not a version, expected ${VERSION_EXPECTED}`);
  }
  const left = a.split(".").map(Number);
  const right = b.split(".").map(Number);
  for (let index = 0; index < Math.max(left.length, right.length); index++) {
    const difference = (left[index] ?? 0) - (right[index] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}

// --- the schema ----------------------------------------------------------------

/** A string leaf; `expected` completes "expected ..." for both a wrong type and a bad value. */
function text(expected: string, valid: (value: string) => boolean) {
  return z.string({ error: expected }).refine(valid, { error: expected });
}

function integer(min: number, max: number, what: string) {
  const expected = `${what}: an integer from ${min} to ${max}`;
  return z
    .number({ error: expected })
    .int({ error: expected })
    .min(min, { error: expected })
    .max(max, { error: expected });
}

function object<Shape extends z.ZodRawShape>(shape: Shape, expected: string) {
  // not strict: unknown keys are dropped, so later fields can be added without a new format
  return z.object(shape, { error: expected });
}

function list<Item extends z.ZodType>(item: Item, expected: string) {
  return z.array(item, { error: expected });
}

const sha512 = text("128 lowercase hex characters (a sha512)", (value) => SHA512.test(value));
const sha256 = text("64 lowercase hex characters (a sha256)", (value) => SHA256.test(value));

const url = text(
  'a URL relative to the server such as "images/<sha512>.squashfs" (letters, digits, ".", "_", "~", "+", "-" and "/" only; ' +
    'no leading "/", no "." or ".." parts) or an absolute http:// or https:// URL',
  isManifestUrl,
);

const timestamp = text('a UTC time such as "2026-11-23T10:00:00.000Z"', isUtcTimestamp);

/**
 * Optional, and no new format: a controller that predates chunks drops the key
 * and verifies the whole image's sha512, so a fleet can take a manifest with
 * chunks before all its machines run a controller that reads them. The same
 * holds for the sha256 list within (chunks.ts says which list a machine checks).
 */
const chunksSchema = object(
  {
    size: integer(MIN_CHUNK_BYTES, Number.MAX_SAFE_INTEGER, "the chunk size in bytes"),
    sha512: list(sha512, "a list of sha512s, one per chunk"),
    sha256: list(sha256, "a list of sha256s, one per chunk").optional(),
  },
  "an object with size and sha512 (a list of the sha512 of every chunk), and optionally sha256 (the same for sha256)",
);

/**
 * The image's chunk index (chunk-index.ts), for delta installs. Optional, and
 * no new format, as with chunks: a controller that predates delta installs
 * drops the key and downloads the whole image.
 */
const indexSchema = object(
  { url, size: integer(1, Number.MAX_SAFE_INTEGER, "the index size in bytes"), sha512 },
  "an object with url, size and sha512 (of the image's chunk index file)",
);

const imageSchema = object(
  {
    url,
    size: integer(1, Number.MAX_SAFE_INTEGER, "the image size in bytes"),
    sha512,
    format: z.literal("squashfs", { error: '"squashfs"' }),
    chunks: chunksSchema.optional(),
    index: indexSchema.optional(),
  },
  "an object with url, size, sha512 and format, and optionally chunks and index",
).superRefine((image, context) => {
  if (image.index !== undefined && image.index.size > chunkIndexMaxBytes(image.size)) {
    context.addIssue({
      code: "custom",
      path: ["index", "size"],
      message: `at most ${chunkIndexMaxBytes(image.size)} bytes (the largest index of an image of ${image.size} bytes)`,
      params: { got: `${image.index.size}` },
    });
  }
  if (image.chunks === undefined) return;
  const count = chunkCount(image.size, image.chunks.size);
  for (const algorithm of CHUNK_HASHES) {
    const hashes = image.chunks[algorithm];
    if (hashes === undefined || hashes.length === count) continue;
    context.addIssue({
      code: "custom",
      path: ["chunks", algorithm],
      message: `${count} ${algorithm}s: the image's ${image.size} bytes in chunks of ${image.chunks.size}`,
      params: { got: `${hashes.length}` },
    });
  }
});

const configFileSchema = object(
  {
    name: text(
      `a config.d file name such as "50-fleet.toml" (at most ${CONFIG_FILE_NAME_MAX} characters: a letter or digit, ` +
        'then letters, digits, ".", "_" or "-", ending in .toml)',
      isConfigFileName,
    ),
    url,
    size: integer(0, CONFIG_FILE_MAX_BYTES, "the file size in bytes"),
    sha512,
  },
  "an object with name, url, size and sha512",
);

/** A list of config files whose names are unique: two files with one name would race for one config.d entry. */
const configFilesSchema = list(configFileSchema, "a list of config files").superRefine((files, context) => {
  files.forEach((file, index) => {
    const first = files.findIndex((other) => other.name === file.name);
    if (first !== index) {
      context.addIssue({ code: "custom", path: [index, "name"], message: `a name no other file of this list has ([${first}] has it too)` });
    }
  });
});

const machineEntrySchema = object(
  {
    mac: text('a MAC address in lowercase such as "52:54:00:12:34:56"', isMac).optional(),
    hostname: text('a hostname such as "lab-07" or "lab-07.example.org"', isHostname).optional(),
    files: configFilesSchema,
  },
  "an object with mac or hostname, and files",
)
  .superRefine((entry, context) => {
    const { mac, hostname } = entry;
    if ((mac === undefined) === (hostname === undefined)) {
      context.addIssue({
        code: "custom",
        path: [],
        message: "exactly one of mac and hostname",
        params: { got: mac === undefined ? "neither" : "both" },
      });
    }
  })
  // the refinement above leaves exactly one selector; the type says so
  .transform((entry): MachineEntry =>
    entry.mac !== undefined ? { mac: entry.mac, files: entry.files } : { hostname: entry.hostname ?? "", files: entry.files },
  );

/** The biggest kernel (bzImage) and initrd a manifest may sign: sanity caps, far above Debian's (8 MiB and about 60 MiB). */
export const KERNEL_MAX_BYTES = 256 * 1024 * 1024;
export const INITRD_MAX_BYTES = 2 * 1024 * 1024 * 1024;
const IMAGE_PATH_MAX = 255;

/** An absolute path inside the image such as "/boot/vmlinuz-6.1.0-28-amd64": normalised, no "." or "..", no odd characters. */
export function isImagePath(value: string): boolean {
  return (
    value.length <= IMAGE_PATH_MAX &&
    /^(?:\/[A-Za-z0-9._+~-]+)+$/.test(value) &&
    value.split("/").every((part, index) => (index === 0 ? part === "" : part !== "." && part !== ".."))
  );
}

const imagePath = text(
  `an absolute path inside the image such as "/boot/vmlinuz-6.1.0-28-amd64" (at most ${IMAGE_PATH_MAX} characters; ` +
    'letters, digits, ".", "_", "+", "~", "-" and "/"; no "." or ".." parts, no "//", no trailing "/")',
  isImagePath,
);

function bootFileSchema(what: string, max: number) {
  return object(
    { path: imagePath, size: integer(1, max, `the ${what}'s size in bytes`), sha512 },
    `an object with path (the regular file inside the image, symlinks resolved), size and sha512 of the ${what}`,
  );
}

/**
 * Format 2 only: the kernel the image carries and its initrd, both files inside
 * the image (the image's sha512 already covers them; their own hashes let the
 * boot check what it kexecs or copies to BOOTEXT without the image), and the
 * release that the kernel's header names and /lib/modules has.
 */
const kernelSchema = object(
  {
    release: text(RELEASE_EXPECTED, isKernelRelease),
    /** UTS_VERSION, "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)": tells two builds of one release apart */
    build: text("the kernel's build string such as \"#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)\" (1 to 256 printable ASCII characters)", (value) =>
      /^[\x20-\x7e]{1,256}$/.test(value),
    ).optional(),
    vmlinuz: bootFileSchema("kernel", KERNEL_MAX_BYTES),
    initrd: bootFileSchema("initrd", INITRD_MAX_BYTES),
  },
  "an object with release, vmlinuz and initrd (each with path, size and sha512), and optionally build",
).superRefine((kernel, context) => {
  if (kernel.vmlinuz.path === kernel.initrd.path) {
    context.addIssue({ code: "custom", path: ["initrd", "path"], message: `a file other than the kernel's (${kernel.vmlinuz.path})` });
  }
});

/** Format 3 only: the share of the channel's machines that take this version (plans/rollout.ts places each machine). */
const rolloutSchema = object(
  {
    percent: z
      .number({ error: "the share of machines that take this version: a number from 0 to 100" })
      .min(0, { error: "the share of machines that take this version: a number from 0 to 100" })
      .max(100, { error: "the share of machines that take this version: a number from 0 to 100" }),
  },
  "an object with percent (the share of the channel's machines that take this version, 0 to 100)",
);

const manifestSchema = object(
  {
    format: z.union([z.literal(MANIFEST_FORMAT), z.literal(MANIFEST_FORMAT_KERNEL), z.literal(MANIFEST_FORMAT_ROLLOUT)]),
    channel: text('a channel name such as "stable" (a lowercase letter or digit, then up to 63 of them or ".", "_", "-")', isChannel),
    version: text(VERSION_EXPECTED, isVersion),
    created: timestamp,
    expires: timestamp,
    image: imageSchema,
    kernel: kernelSchema.optional(),
    rollout: rolloutSchema.optional(),
    config: object(
      { fleet: configFilesSchema, machines: list(machineEntrySchema, "a list of machine entries") },
      "an object with fleet and machines",
    ),
  },
  "a JSON object",
).superRefine((manifest, context) => {
  if (Date.parse(manifest.expires) <= Date.parse(manifest.created)) {
    context.addIssue({ code: "custom", path: ["expires"], message: `a time after created (${manifest.created})` });
  }
});

export interface ManifestFile {
  readonly name: string;
  readonly url: string;
  readonly size: number;
  readonly sha512: string;
}

export type MachineEntry =
  | { readonly mac: string; readonly files: readonly ManifestFile[] }
  | { readonly hostname: string; readonly files: readonly ManifestFile[] };

export type Manifest = z.output<typeof manifestSchema>;

/**
 * The format a manifest needs: 3 for a rollout below 100 % (older controllers
 * refuse it), else 2 when it signs a kernel, else 1 (byte for byte as before).
 */
export function manifestFormatFor(options: { readonly kernel: boolean; readonly rolloutPercent: number | undefined }): number {
  if (options.rolloutPercent !== undefined && options.rolloutPercent < 100) return MANIFEST_FORMAT_ROLLOUT;
  return options.kernel ? MANIFEST_FORMAT_KERNEL : MANIFEST_FORMAT;
}

/** A format-2 manifest's kernel section: the kernel an image carries, its initrd and its release. */
export type SignedKernel = NonNullable<Manifest["kernel"]>;

// --- parsing -------------------------------------------------------------------

export type ParsedManifest = { ok: true; manifest: Manifest } | { ok: false; problems: string[] };

/** Read manifest.json's exact bytes; every problem is a sentence that starts with `source` and names the key. */
export function parseManifest(bytes: Uint8Array, source: string): ParsedManifest {
  const refuse = (problem: string): ParsedManifest => ({ ok: false, problems: [`${source}: ${problem}`] });
  if (bytes.length > MANIFEST_MAX_BYTES) {
    return refuse(`Cannot read the manifest: it is ${bytes.length} bytes, expected at most ${MANIFEST_MAX_BYTES}`);
  }
  const badByte = firstInvalidUtf8Byte(bytes);
  if (badByte !== undefined) {
    const byte = bytes[badByte];
    const what = byte === undefined ? "it ends inside a character" : `byte ${badByte} is 0x${byte.toString(16).padStart(2, "0")}`;
    return refuse(`Cannot read the manifest: it is not UTF-8 (${what})`);
  }
  const text = new TextDecoder().decode(bytes);
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    const reason = (error as Error).message.replace(/^JSON Parse error: /, "");
    const offset = jsonErrorOffset(text);
    const where = offset === undefined ? "" : ` at ${lineAndColumn(text, offset)}`;
    return refuse(`JSON syntax error${where}: ${reason}`);
  }
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return refuse(`expected a JSON object, got ${describeValue(input)}`);
  }
  // Another format may mean other rules for every other key; its other problems would mislead.
  const format = (input as Record<string, unknown>)["format"];
  if (typeof format !== "number" || !MANIFEST_FORMATS.includes(format)) {
    const formats = `${MANIFEST_FORMATS.slice(0, -1).join(", ")} or ${MANIFEST_FORMATS.at(-1)}`;
    return refuse(`key format: expected ${formats} (the manifest formats this controller knows), got ${describeValue(format)}`);
  }
  // Format 1 never had a kernel section, nor formats 1 and 2 a rollout: there they are unknown keys, dropped as before, never trusted.
  const record = input as Record<string, unknown>;
  const known =
    format === MANIFEST_FORMAT ? withoutKey(withoutKey(record, "kernel"), "rollout")
    : format === MANIFEST_FORMAT_KERNEL ? withoutKey(record, "rollout")
    : record;
  const result = manifestSchema.safeParse(known);
  if (result.success) return { ok: true, manifest: result.data };
  return { ok: false, problems: result.error.issues.map((issue) => `${source}: ${describeJsonIssue(input, issue)}`) };
}

function withoutKey(input: Record<string, unknown>, key: string): Record<string, unknown> {
  const { [key]: _dropped, ...rest } = input;
  return rest;
}

/** One zod issue of a JSON document as "key a.b[2]: expected ..., got ...", the value shown short. */
export function describeJsonIssue(input: unknown, issue: z.core.$ZodIssue): string {
  const got = issue.code === "custom" && typeof issue.params?.["got"] === "string" ? issue.params["got"] : describeValue(valueAt(input, issue.path));
  return `key ${keyPath(issue.path)}: expected ${issue.message}, got ${got}`;
}

/** config.machines[0].files[1].sha512, as a person finds it in the JSON. */
function keyPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(the whole document)";
  return path.map((part, index) => (typeof part === "number" ? `[${part}]` : `${index === 0 ? "" : "."}${String(part)}`)).join("");
}

/** A JSON value, short: a hostile manifest may hold a 60 KiB string. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object" && value !== null) return "an object";
  // JSON.parse reads 1e400 as Infinity, which JSON.stringify would call null
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  const json = JSON.stringify(value);
  return json.length > 80 ? `${json.slice(0, 77)}..." (${json.length} characters)` : json;
}

/** The offset of the first byte that is not part of well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
function firstInvalidUtf8Byte(bytes: Uint8Array): number | undefined {
  let index = 0;
  while (index < bytes.length) {
    const lead = bytes[index] ?? 0;
    if (lead < 0x80) {
      index++;
      continue;
    }
    // [continuation bytes, lowest and highest allowed second byte] per the Unicode standard's table 3-7
    const form: readonly [number, number, number] | undefined =
      lead >= 0xc2 && lead <= 0xdf ? [1, 0x80, 0xbf]
      : lead === 0xe0 ? [2, 0xa0, 0xbf]
      : lead === 0xed ? [2, 0x80, 0x9f]
      : lead >= 0xe1 && lead <= 0xef ? [2, 0x80, 0xbf]
      : lead === 0xf0 ? [3, 0x90, 0xbf]
      : lead >= 0xf1 && lead <= 0xf3 ? [3, 0x80, 0xbf]
      : lead === 0xf4 ? [3, 0x80, 0x8f]
      : undefined;
    if (form === undefined) return index;
    const [count, low, high] = form;
    for (let next = 1; next <= count; next++) {
      const byte = bytes[index + next];
      const [min, max] = next === 1 ? [low, high] : [0x80, 0xbf];
      if (byte === undefined || byte < min || byte > max) return index + next;
    }
    index += count + 1;
  }
  return undefined;
}

/**
 * Where text stops being JSON (RFC 8259), for the error message: bun's
 * JSON.parse says what it expected but not where. Iterative, so a hostile
 * "[[[[..." cannot overflow the stack. Undefined when the syntax is fine (a
 * parse can still fail, e.g. on nesting too deep for the parser).
 */
function jsonErrorOffset(text: string): number | undefined {
  let index = 0;
  const open: ("[" | "{")[] = [];
  const skipSpace = (): void => {
    while (index < text.length && " \t\n\r".includes(text[index] ?? "")) index++;
  };
  const match = (pattern: RegExp): boolean => {
    pattern.lastIndex = index;
    const found = pattern.exec(text);
    if (found === null) return false;
    index += found[0].length;
    return true;
  };
  const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
  const LITERAL = /true|false|null/y;
  /** A key and its colon, after "{" or a "," in an object. */
  const key = (): boolean => {
    skipSpace();
    if (!match(STRING)) return false;
    skipSpace();
    if (text[index] !== ":") return false;
    index++;
    return true;
  };

  skipSpace();
  for (;;) {
    // a value starts here
    const char = text[index];
    if (char === "[" || char === "{") {
      index++;
      skipSpace();
      if (text[index] === (char === "[" ? "]" : "}")) {
        index++;
      } else {
        open.push(char);
        if (char === "{" && !key()) return index;
        skipSpace();
        continue;
      }
    } else if (!match(STRING) && !match(NUMBER) && !match(LITERAL)) {
      return index;
    }
    // after a value: a comma, a closing bracket, or the end
    for (;;) {
      skipSpace();
      const container = open.at(-1);
      if (container === undefined) return index === text.length ? undefined : index;
      if (text[index] === (container === "[" ? "]" : "}")) {
        index++;
        open.pop();
        continue;
      }
      if (text[index] !== ",") return index;
      index++;
      if (container === "{" && !key()) return index;
      skipSpace();
      break;
    }
  }
}

function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return `line ${line}, column ${offset - before.lastIndexOf("\n")}`;
}

// --- using a manifest ------------------------------------------------------------

/** Who a machine is, as it knows it itself: nothing here comes from what the network says. */
export interface MachineIdentity {
  /** MAC addresses of the machine's own Ethernet interfaces, as /sys lists them */
  readonly macs: readonly string[];
  /** update.machine_name from the machine's local config (initramfs, BOOTEXT, command line); "" when it sets none */
  readonly name: string;
}

export interface ConfigSelection {
  /** the fleet's files and those of every machine entry that matched, in config.d order */
  readonly files: ManifestFile[];
  /** the machine entries that matched, as "mac 52:54:00:12:34:56" or "hostname lab-07" */
  readonly matched: string[];
  /** why the manifest's hostname entries match nothing, when it has some and the machine has no name */
  readonly ignored?: string;
}

/**
 * The config files one machine takes: the fleet's, then those of every machine
 * entry that matches one of its MACs or its name, in manifest order; a file
 * replaces an earlier one of the same name. Sorted by name, the config.d order.
 * A hostname entry matches the name the machine's own config gives it, never a
 * hostname from DHCP: a rogue DHCP server could otherwise hand it another
 * machine's config.
 */
export function selectConfigFiles(manifest: Manifest, machine: MachineIdentity): ConfigSelection {
  const macs = new Set(machine.macs.map((mac) => mac.toLowerCase()));
  const name = machine.name.toLowerCase();
  const byName = new Map<string, ManifestFile>();
  const matched: string[] = [];
  for (const file of manifest.config.fleet) byName.set(file.name, file);
  for (const entry of manifest.config.machines) {
    const matches = "mac" in entry ? macs.has(entry.mac) : name !== "" && entry.hostname.toLowerCase() === name;
    if (!matches) continue;
    matched.push("mac" in entry ? `mac ${entry.mac}` : `hostname ${entry.hostname}`);
    for (const file of entry.files) byName.set(file.name, file);
  }
  const files = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const hasHostnameEntries = manifest.config.machines.some((entry) => "hostname" in entry);
  if (name !== "" || !hasHostnameEntries) return { files, matched };
  return {
    files,
    matched,
    ignored: "hostname entries ignored: no machine name in the local config (update.machine_name); a hostname from DHCP is never used",
  };
}

/** Repository-relative path of a channel's manifest; refuses a channel name that could leave channels/. */
export function manifestPath(channel: string): string {
  return `${channelDir(channel)}/manifest.json`;
}

/** Repository-relative path of the signature of the manifest whose exact bytes have this sha512. */
export function signaturePath(channel: string, manifestSha512Hex: string): string {
  if (!SHA512.test(manifestSha512Hex)) {
    throw new Error(`Cannot name a signature file: expected 128 lowercase hex characters, got ${describeValue(manifestSha512Hex)}`);
  }
  return `${channelDir(channel)}/signatures/${manifestSha512Hex}.sig`;
}

function channelDir(channel: string): string {
  if (!isChannel(channel)) {
    throw new Error(`Cannot use channel ${describeValue(channel)}: expected a lowercase letter or digit, then up to 63 of them or ".", "_", "-"`);
  }
  return `channels/${channel}`;
}

/** A manifest URL against a server base URL; the base is a folder even without its trailing "/". */
export function resolveRepoUrl(base: string, url: string): string {
  return new URL(url, base.endsWith("/") ? base : `${base}/`).href;
}

export type UpdateDecision = { action: "install" | "up-to-date" } | { action: "refuse"; reason: string };

const DAY_MS = 24 * 60 * 60 * 1000;

/** The highest version verified on any slot of a machine, and that slot ("BACKUPFS on /dev/vda2"). */
export interface VersionFloor {
  readonly version: string;
  readonly slot: string;
}

/** What a machine does with a manifest whose signature checked out. */
export function decideUpdate(options: {
  readonly manifest: Manifest;
  readonly channel: string;
  /** The verified version of the slot that boots; undefined when it has no record. */
  readonly installedVersion: string | undefined;
  /**
   * No lower version installs, so a slot whose record was lost cannot be
   * downgraded by a replayed old manifest. Undefined when no slot has a
   * verified record: then any version may be installed.
   */
  readonly versionFloor: VersionFloor | undefined;
  /** update.max_manifest_validity_days: a longer expires − created would let an old manifest be replayed for that long */
  readonly maxValidityDays: number;
  readonly now: Date;
}): UpdateDecision {
  const { manifest, channel, installedVersion, versionFloor, maxValidityDays, now } = options;
  const what = `version ${manifest.version} from channel ${manifest.channel}`;
  if (manifest.channel !== channel) {
    // a signed manifest of another channel, served in place of ours: mix and match
    return { action: "refuse", reason: `Cannot install ${what}: this machine follows channel ${channel}` };
  }
  if (now.getTime() >= Date.parse(manifest.expires)) {
    return {
      action: "refuse",
      reason:
        `Cannot install ${what}: the manifest expired at ${manifest.expires} and it is now ${now.toISOString()} ` +
        "(the server is frozen or replays an old manifest, or this machine's clock is wrong)",
    };
  }
  const validityMs = Date.parse(manifest.expires) - Date.parse(manifest.created);
  if (validityMs > maxValidityDays * DAY_MS) {
    const days = Number((validityMs / DAY_MS).toFixed(1));
    return {
      action: "refuse",
      reason:
        `Cannot install ${what}: it is valid for ${days} days (created ${manifest.created}, expires ${manifest.expires}), ` +
        `longer than update.max_manifest_validity_days (${maxValidityDays}) allows`,
    };
  }
  if (installedVersion !== undefined && !isVersion(installedVersion)) {
    return {
      action: "refuse",
      reason: `Cannot install ${what}: the installed version ${describeValue(installedVersion)} is not a version, so a downgrade cannot be ruled out`,
    };
  }
  // with no verified version running, any version not below the floor is new to this machine
  const order = installedVersion === undefined ? 1 : compareVersions(manifest.version, installedVersion);
  if (order < 0) {
    return {
      action: "refuse",
      reason:
        `Cannot install ${what}: it is lower than the installed version ${installedVersion} ` +
        "(to roll back, publish the old image under a new version)",
    };
  }
  if (versionFloor !== undefined && compareVersions(manifest.version, versionFloor.version) < 0) {
    return {
      action: "refuse",
      reason:
        `Cannot install ${what}: it is lower than version ${versionFloor.version}, verified on ${versionFloor.slot} ` +
        "(the server replays an old manifest; to roll back, publish the old image under a new version)",
    };
  }
  return { action: order === 0 ? "up-to-date" : "install" };
}
