// `controller check-config DIR`: read a config.d exactly as the boot would,
// before it reaches a machine, and tell every problem at once.

import { type ConfigFiles, DEFAULTS_SOURCE, loadConfigDir, resolveConfig } from "../config/layers.ts";
import { decodePublicKey } from "../update/signing.ts";
import { print } from "./output.ts";
import { thisMachine } from "./this-machine.ts";
import { USAGE } from "./usage.ts";

export interface ConfigCheck {
  /** Every problem, each naming the file and the key; none means the folder is fine. */
  readonly problems: readonly string[];
  /** One line on what was read and what the folder sets. */
  readonly summary: string;
}

/** Check DIR's *.toml files over the built-in defaults; sources are the real file paths. */
export async function checkConfigDir(files: ConfigFiles, dir: string): Promise<ConfigCheck> {
  const folder = dir.replace(/(.)\/+$/, "$1");
  const layers = await loadConfigDir(files, "initramfs", folder, folder);
  if (layers.some((layer) => layer.status === "missing")) {
    // At boot a missing folder is normal; here it is a typo in DIR.
    return { problems: [`${folder}: Cannot check config files: no such folder`], summary: `${folder}: not found` };
  }
  const resolved = resolveConfig(layers);
  const entries = resolved.layers.filter((layer) => layer.source.startsWith(`${folder}/`));
  const checked = entries.filter((layer) => layer.status !== "ignored");
  const rejected = checked.filter((layer) => layer.status === "rejected").length;
  const ignored = entries
    .filter((layer) => layer.status === "ignored")
    .map((layer) => layer.source.slice(folder.length + 1));
  const setKeys = Object.entries(resolved.provenance)
    .filter(([, source]) => source !== DEFAULTS_SOURCE)
    .map(([key]) => key);
  const summary = [
    `${folder}: ${checked.length} config ${checked.length === 1 ? "file" : "files"}, ${rejected} rejected`,
    ...(ignored.length === 0 ? [] : [`ignored (hidden or not *.toml): ${ignored.join(", ")}`]),
    setKeys.length === 0 ? "every value is the built-in default" : `sets ${setKeys.join(", ")}`,
  ].join("; ");
  return { problems: [...resolved.problems, ...weakTrustedKeys(resolved.config.update.trusted_keys, resolved.provenance["update.trusted_keys"] ?? DEFAULTS_SOURCE)], summary };
}

/**
 * Keys spelled right that must not be trusted (small order, non-canonical):
 * the boot skips them but told, so they are problems here, before they reach
 * a machine; the config file itself stays valid, and its other keys count.
 */
function weakTrustedKeys(keys: readonly string[], source: string): string[] {
  return keys.flatMap((key, index) => {
    try {
      decodePublicKey(key);
      return [];
    } catch (error) {
      return [`${source}: key update.trusted_keys[${index}]: ${(error as Error).message}`];
    }
  });
}

/** Prints every problem, then the summary. Exit status 0; 1 when there are problems; 2 for wrong arguments. */
export async function checkConfigCommand(args: readonly string[]): Promise<number> {
  const [dir] = args;
  if (dir === undefined || args.length > 1) {
    process.stderr.write(`check-config needs exactly one folder, got ${args.length}\n${USAGE}`);
    return 2;
  }
  const { problems, summary } = await checkConfigDir(thisMachine().system, dir);
  for (const problem of problems) print(problem);
  print(summary);
  return problems.length === 0 ? 0 : 1;
}
