// The controller's configuration as layers, lowest precedence first: built-in
// defaults, the initramfs config.d, the BOOTEXT config.d, the update server's,
// then each `controller.KEY=VALUE` on the kernel command line. A layer that
// does not check out is rejected as a whole and the boot goes on as if it
// were absent; every key of the result remembers which layer set it.

import { parse, TomlError } from "smol-toml";
import { BOOTEXT_MOUNT, INITRAMFS_CONFIG_DIR } from "../system/paths.ts";
import type { FileType, System } from "../system/system.ts";
import type { ConfigOverride } from "./cmdline.ts";
import {
  checkConfigLayer,
  checkMergedConfig,
  type Config,
  type ConfigLayerValues,
  DEFAULT_CONFIG,
  dottedKey,
  NEW_TMPFS_DEFAULTS,
} from "./schema.ts";
import { valueAt } from "./value-at.ts";

/** Where a layer comes from; the order here is the precedence, lowest first. */
const LAYER_KINDS = ["initramfs", "bootext", "server", "cmdline"] as const;
export type LayerKind = (typeof LAYER_KINDS)[number];

/** The source named in provenance for every value no layer changed. */
export const DEFAULTS_SOURCE = "built-in defaults";

/** One layer as loaded, before it meets the layers below it. */
export type ConfigLayer =
  | {
      readonly kind: LayerKind;
      /** e.g. bootext:config.d/20-site.toml or cmdline:controller.boot.real_init */
      readonly source: string;
      readonly status: "parsed";
      readonly values: ConfigLayerValues;
    }
  | {
      readonly kind: LayerKind;
      readonly source: string;
      /** rejected: unreadable or invalid; ignored: not a *.toml file; missing: a folder that is not there */
      readonly status: "rejected" | "ignored" | "missing";
      readonly problems: readonly string[];
    };

/** What became of one layer, for the boot report and `check-config`. */
export interface LayerRecord {
  readonly kind: LayerKind | "defaults";
  readonly source: string;
  readonly status: "applied" | "rejected" | "ignored" | "missing";
  /** Each problem is a whole sentence that starts with the source. */
  readonly problems: readonly string[];
}

export interface ResolvedConfig {
  readonly config: Config;
  /** Leaf dotted key (labels.system, tmpfs."/etc".size) to the source of its value. */
  readonly provenance: Readonly<Record<string, string>>;
  /** The defaults, then every layer in precedence order. */
  readonly layers: readonly LayerRecord[];
  /** Every problem of every layer. */
  readonly problems: readonly string[];
}

/** The part of System that reading a config folder needs. */
export type ConfigFiles = Pick<System, "readdir" | "readText" | "lstat">;

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * Merge the layers over the built-in defaults. The layers may come in any
 * order: they are sorted by kind (stably, so files keep their order), which
 * lets the boot add the BOOTEXT layers to the early ones and resolve again.
 */
export function resolveConfig(layers: readonly ConfigLayer[]): ResolvedConfig {
  const ordered = [...layers].sort((a, b) => LAYER_KINDS.indexOf(a.kind) - LAYER_KINDS.indexOf(b.kind));
  // a copy: callers own the result and may not know it could be the defaults themselves
  let config = structuredClone(DEFAULT_CONFIG);
  const provenance: Record<string, string> = {};
  for (const path of leafPaths(DEFAULT_CONFIG)) provenance[dottedKey(path)] = DEFAULTS_SOURCE;
  const records: LayerRecord[] = [{ kind: "defaults", source: DEFAULTS_SOURCE, status: "applied", problems: [] }];

  for (const layer of ordered) {
    const { kind, source } = layer;
    if (layer.status !== "parsed") {
      records.push({ kind, source, status: layer.status, problems: layer.problems });
      continue;
    }
    const merged = mergeLayer(config, layer.values);
    if (!merged.ok) {
      records.push({ kind, source, status: "rejected", problems: merged.problems.map((problem) => `${source}: ${problem}`) });
      continue;
    }
    config = merged.config;
    for (const path of merged.setPaths) provenance[dottedKey(path)] = source;
    records.push({ kind, source, status: "applied", problems: [] });
  }
  return { config, provenance, layers: records, problems: records.flatMap((record) => record.problems) };
}

type Merged = { ok: true; config: Config; setPaths: string[][] } | { ok: false; problems: string[] };

/**
 * The config with one layer on top, checked as a whole: some rules need the
 * layers below (a new tmpfs, distinct labels). `values` passed checkConfigLayer
 * (a layer is "parsed" only then), so checkMergedConfig checks the rest.
 */
function mergeLayer(config: Config, values: ConfigLayerValues): Merged {
  const candidate: Record<string, unknown> = structuredClone(config);
  const tmpfs = candidate["tmpfs"] as Record<string, unknown>;
  const setPaths: string[][] = [];
  const problems: string[] = [];
  const refused = new Set<string>();
  for (const [mountPoint, entry] of Object.entries(values.tmpfs ?? {})) {
    if (Object.hasOwn(tmpfs, mountPoint)) continue;
    const missing = (["size", "mode"] as const).filter((key) => entry[key] === undefined);
    if (missing.length > 0) {
      refused.add(mountPoint);
      problems.push(
        `key ${dottedKey(["tmpfs", mountPoint])}: expected size and mode for a new tmpfs mount point ` +
          `(enabled defaults to true, seed_from_image to false), got no ${missing.join(" and no ")}`,
      );
      continue;
    }
    tmpfs[mountPoint] = { ...NEW_TMPFS_DEFAULTS };
    for (const key of Object.keys(NEW_TMPFS_DEFAULTS)) setPaths.push(["tmpfs", mountPoint, key]);
  }
  for (const path of leafPaths(values)) {
    // A refused entry has no table to land in; its problem is already told.
    if (path[0] === "tmpfs" && refused.has(path[1] ?? "")) continue;
    setLeaf(candidate, path, valueAt(values, path));
    setPaths.push(path);
  }
  const checked = checkMergedConfig(candidate as Config);
  if (!checked.ok) problems.push(...checked.problems);
  return checked.ok && problems.length === 0 ? { ok: true, config: checked.value, setPaths } : { ok: false, problems };
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** Paths of the non-table values, in document order. */
function leafPaths(table: object, prefix: readonly string[] = []): string[][] {
  return Object.entries(table).flatMap(([key, value]) =>
    isTable(value) ? leafPaths(value, [...prefix, key]) : [[...prefix, key]],
  );
}

/** Tables on the way exist: a layer only reaches known sections and tmpfs entries made above. */
function setLeaf(table: Record<string, unknown>, path: readonly string[], value: unknown): void {
  const parent = valueAt(table, path.slice(0, -1)) as Record<string, unknown>;
  parent[path.at(-1) as string] = value;
}

/** One config file's text as a layer; problems name `source`, every key, what it expects and what it got. */
export function parseConfigLayer(kind: LayerKind, source: string, text: string): ConfigLayer {
  const rejected = (problems: string[]): ConfigLayer => ({
    kind,
    source,
    status: "rejected",
    problems: problems.map((problem) => `${source}: ${problem}`),
  });
  // readText decodes invalid UTF-8 to U+FFFD; a TOML parser would accept it inside a string.
  const badLine = text.split("\n").findIndex((line) => line.includes("\uFFFD"));
  if (badLine !== -1) return rejected([`expected UTF-8 text, got invalid bytes on line ${badLine + 1}`]);
  const document = parseToml(text);
  if (typeof document === "string") return rejected([document]);
  const checked = checkConfigLayer(document);
  return checked.ok ? { kind, source, status: "parsed", values: checked.value } : rejected(checked.problems);
}

/** The parsed document, or the syntax error as one line with its position. */
function parseToml(text: string): Record<string, unknown> | string {
  try {
    return parse(text);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const reason = (error.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "");
    return `TOML syntax error at line ${error.line}, column ${error.column}: ${reason}`;
  }
}

/**
 * Every `*.toml` file of a folder as a layer, in byte order of the names (as
 * systemd orders drop-ins). Other entries are ignored, and so are hidden files,
 * which a `*.toml` glob skips too (editors leave .#name.toml behind). `name`
 * is how sources call the folder, e.g. "bootext:config.d".
 */
export async function loadConfigDir(files: ConfigFiles, kind: LayerKind, dir: string, name: string): Promise<ConfigLayer[]> {
  const path = dir.replace(/(.)\/+$/, "$1");
  const folderLayer = (status: "rejected" | "missing", problems: string[]): ConfigLayer[] => [
    { kind, source: name, status, problems },
  ];
  let entries: string[];
  try {
    const info = await files.lstat(path);
    if (info === undefined) return folderLayer("missing", []);
    if (info.type !== "directory") {
      return folderLayer("rejected", [`${name}: Cannot read config files: ${path} is ${FILE_TYPES[info.type]}, expected a folder`]);
    }
    entries = await files.readdir(path);
  } catch (error) {
    return folderLayer("rejected", [`${name}: Cannot read config files: ${describeError(error)}`]);
  }
  const names = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

  const layers: ConfigLayer[] = [];
  for (const entry of names) {
    const source = `${name}/${entry}`;
    if (entry.startsWith(".") || !entry.endsWith(".toml")) {
      layers.push({ kind, source, status: "ignored", problems: [] });
      continue;
    }
    layers.push(await loadConfigFile(files, kind, `${path === "/" ? "" : path}/${entry}`, source));
  }
  return layers;
}

async function loadConfigFile(files: ConfigFiles, kind: LayerKind, path: string, source: string): Promise<ConfigLayer> {
  const rejected = (problem: string): ConfigLayer => ({ kind, source, status: "rejected", problems: [`${source}: ${problem}`] });
  try {
    const info = await files.lstat(path);
    // A symlink on BOOTEXT would be followed inside the initramfs, not on BOOTEXT: only plain files count.
    if (info?.type !== "file") {
      return rejected(`Cannot read it as a config file: it is ${info === undefined ? "gone" : FILE_TYPES[info.type]}, expected a regular file`);
    }
    return parseConfigLayer(kind, source, await files.readText(path));
  } catch (error) {
    return rejected(`Cannot read it: ${describeError(error)}`);
  }
}

const FILE_TYPES: Record<FileType, string> = {
  file: "a regular file",
  directory: "a folder",
  symlink: "a symlink",
  other: "a special file",
};

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The config.d baked into the initramfs. */
export function loadInitramfsConfig(files: ConfigFiles): Promise<ConfigLayer[]> {
  return loadConfigDir(files, "initramfs", INITRAMFS_CONFIG_DIR, `initramfs:${INITRAMFS_CONFIG_DIR}`);
}

/** The config.d on BOOTEXT, once it is mounted; `config` says which folder (bootext.config_dir). */
export function loadBootextConfig(files: ConfigFiles, config: Config): Promise<ConfigLayer[]> {
  const dir = config.bootext.config_dir;
  return loadConfigDir(files, "bootext", `${BOOTEXT_MOUNT}/${dir}`, `bootext:${dir}`);
}

/** Each controller.KEY=VALUE as its own layer, in command-line order. */
export function cmdlineLayers(overrides: readonly ConfigOverride[]): ConfigLayer[] {
  return overrides.map(overrideLayer);
}

/**
 * `KEY = VALUE` read as TOML, so numbers, booleans and inline tables keep their
 * type; when that does not fit, VALUE as a TOML string, so that
 * controller.tmpfs."/tmp".size=128m needs no quotes that the kernel would eat.
 */
function overrideLayer({ param, key, value }: ConfigOverride): ConfigLayer {
  const source = `cmdline:${param}`;
  const rejected = (problems: string[]): ConfigLayer => ({
    kind: "cmdline",
    source,
    status: "rejected",
    problems: problems.map((problem) => `${source}: ${problem}`),
  });
  // One line, so a value cannot smuggle in a second key on a line of its own.
  if (CONTROL_CHARS.test(key) || CONTROL_CHARS.test(value)) {
    return rejected([`expected a value without control characters or line breaks, got ${JSON.stringify(value)}`]);
  }
  if (typeof parseToml(`${key} = 0`) === "string") {
    return rejected([
      `expected a TOML dotted key after "controller.", got ${JSON.stringify(key)}; ` +
        `quote parts that are not letters, digits, _ or -, as in controller.tmpfs."/var/log".size=128m`,
    ]);
  }
  const asWritten = parseToml(`${key} = ${value}`);
  const writtenCheck = typeof asWritten === "string" ? undefined : checkConfigLayer(asWritten);
  if (writtenCheck?.ok) return { kind: "cmdline", source, status: "parsed", values: writtenCheck.value };

  // JSON's string escapes are all valid in a TOML basic string.
  const asString = parseToml(`${key} = ${JSON.stringify(value)}`);
  if (typeof asString === "string") return rejected([writtenCheck === undefined ? asString : writtenCheck.problems].flat());
  const stringCheck = checkConfigLayer(asString);
  if (stringCheck.ok) return { kind: "cmdline", source, status: "parsed", values: stringCheck.value };
  // Valid TOML that does not fit says more (got 99999) than its string form (got "99999").
  return rejected(writtenCheck === undefined ? stringCheck.problems : writtenCheck.problems);
}

/**
 * The keys a machine takes from its own config only, never from an update
 * server's (boot/boot-config.ts and boot/disk-boot.ts keep the machine's own):
 * which signing keys it trusts, the name that picks its config, and where it
 * reports (a server could otherwise send every report, token and all, to a
 * host of its choosing). The ones a layer sets, as dotted keys, for `publish`
 * to warn about a fleet config that would set them in vain.
 */
export function machineOnlyKeysIn(values: ConfigLayerValues): string[] {
  const keys: string[] = [];
  if (values.update?.trusted_keys !== undefined) keys.push("update.trusted_keys");
  if (values.update?.machine_name !== undefined) keys.push("update.machine_name");
  keys.push(...Object.keys(values.fleet ?? {}).map((key) => `fleet.${key}`));
  return keys;
}
