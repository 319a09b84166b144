// `controller check-config DIR`: read a config.d exactly as the boot would,
// before it reaches a machine, and tell every problem at once.

import { type ConfigFiles, DEFAULTS_SOURCE, loadConfigDir, resolveConfig } from "./config.ts";

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
  return { problems: resolved.problems, summary };
}
