// scripts/blank-disk's --config files: the site's own config.d files for
// BOOTEXT, each checked by the controller's own parser before anything is
// written, so a file the controller would reject never reaches a disk.

import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { parseConfigLayer } from "../../controller/config/layers.ts";
import { UPDATE_CONFIG_FILE } from "./layout.ts";

export interface SiteConfigFile {
  /** its name in config.d */
  readonly name: string;
  readonly text: string;
}

/** The --config files, each checked by the controller's own parser before anything is written; a name may not shadow blank-disk's own file. */
export async function readSiteConfig(files: readonly string[]): Promise<SiteConfigFile[]> {
  const read: SiteConfigFile[] = [];
  for (const file of files) {
    const name = basename(file);
    if (name === UPDATE_CONFIG_FILE) throw new Error(`Cannot use --config ${file}: blank-disk writes config.d/${UPDATE_CONFIG_FILE} itself (servers and keys); give the file another name`);
    if (!name.endsWith(".toml")) throw new Error(`Cannot use --config ${file}: expected a .toml file (the controller reads only config.d/*.toml)`);
    if (read.some((earlier) => earlier.name === name)) throw new Error(`Cannot use --config ${file}: another --config file is also named ${name}`);
    const text = await readFile(file, "utf8").catch((error: Error) => {
      throw new Error(`Cannot read --config ${file}: ${error.message}`);
    });
    const parsed = parseConfigLayer("bootext", name, text);
    if (parsed.status !== "parsed") throw new Error(`Cannot use --config ${file}: ${parsed.problems.join("; ")}`);
    read.push({ name, text });
  }
  return read;
}

