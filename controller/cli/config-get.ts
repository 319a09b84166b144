// `controller config-get DIR KEY`: one value of a config.d folder, resolved
// over the built-in defaults exactly as the boot resolves it. The dracut module
// runs it on the build host to learn which files the initramfs needs (such as
// update.ca_bundle), so no shell script ever reads TOML or repeats a default.

import { type ConfigFiles, loadConfigDir, resolveConfig } from "../config/layers.ts";
import { dottedKey } from "../config/schema.ts";
import { type CommandOutput, PROCESS_OUTPUT } from "./output.ts";
import { thisMachine } from "./this-machine.ts";

const USAGE = "Usage: controller config-get DIR KEY   (e.g. controller config-get config.d update.ca_bundle)\n";

/** Every value that is not a table, by its dotted key as problems and the report name it. */
function leafValues(table: object, prefix: readonly string[] = [], leaves = new Map<string, unknown>()): Map<string, unknown> {
  for (const [key, value] of Object.entries(table)) {
    const path = [...prefix, key];
    if (typeof value === "object" && value !== null && !Array.isArray(value)) leafValues(value, path, leaves);
    else leaves.set(dottedKey(path), value);
  }
  return leaves;
}

/**
 * Prints KEY's value on stdout, an array as one item per line. Exit status 0;
 * 1 when DIR is not a folder; 2 for wrong arguments or a key the config does
 * not have. A file the boot would skip is skipped here too, with its problem
 * on stderr, so the value printed is the one the boot would use.
 */
export async function runConfigGetCommand(args: readonly string[], files: ConfigFiles, output: CommandOutput = PROCESS_OUTPUT): Promise<number> {
  const [dir, key] = args;
  if (dir === undefined || key === undefined || args.length !== 2) {
    output.err(`config-get needs a folder and a key, got ${args.length} ${args.length === 1 ? "argument" : "arguments"}\n${USAGE}`);
    return 2;
  }
  const folder = dir.replace(/(.)\/+$/, "$1");
  const layers = await loadConfigDir(files, "initramfs", folder, folder);
  const folderLayer = layers.find((layer) => layer.source === folder);
  if (folderLayer !== undefined && folderLayer.status !== "parsed") {
    const why = folderLayer.status === "missing" ? [`${folder}: Cannot read config files: no such folder`] : folderLayer.problems;
    output.err(`${why.join("\n")}\n`);
    return 1;
  }
  const resolved = resolveConfig(layers);
  for (const problem of resolved.problems) output.err(`WARNING: ${problem}; the boot skips that file too\n`);

  const leaves = leafValues(resolved.config);
  if (!leaves.has(key)) {
    output.err(`Cannot get ${JSON.stringify(key)}: no such key in the config; the keys are ${[...leaves.keys()].join(", ")}\n`);
    return 2;
  }
  const value = leaves.get(key);
  const lines = Array.isArray(value) ? value.map(String) : [String(value)];
  output.out(lines.map((line) => `${line}\n`).join(""));
  return 0;
}

export function configGetCommand(args: readonly string[]): Promise<number> {
  return runConfigGetCommand(args, thisMachine().system);
}
