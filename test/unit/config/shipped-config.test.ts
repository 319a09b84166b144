// The shipped config.d documents every key at its default, commented out. These
// tests uncomment those lines and check they give exactly the built-in
// defaults, so the documentation cannot drift from the code.

import { describe, expect, test } from "bun:test";
import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { checkConfigDir } from "../../../controller/cli/check-config.ts";
import { type ConfigFiles, DEFAULTS_SOURCE, parseConfigLayer, resolveConfig } from "../../../controller/config/layers.ts";
import { DEFAULT_CONFIG } from "../../../controller/config/schema.ts";

const SHIPPED_DIR = join(import.meta.dir, "../../../config.d");

/** A commented-out setting: "# key = value" at the start of a line. */
const COMMENTED_SETTING = /^# (?=[a-z_]+ = )/;

const nodeFiles: ConfigFiles = {
  readdir: (path) => readdir(path),
  readText: (path) => readFile(path, "utf8"),
  async lstat(path) {
    const stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw error;
    });
    if (stats === undefined) return undefined;
    const type = stats.isFile() ? "file" : stats.isDirectory() ? "directory" : stats.isSymbolicLink() ? "symlink" : "other";
    return { type, size: stats.size, mode: stats.mode & 0o7777 };
  },
};

const names = (await readdir(SHIPPED_DIR)).sort();
const shipped = await Promise.all(
  names.map(async (name) => ({ name, text: await readFile(join(SHIPPED_DIR, name), "utf8") })),
);

function uncommented(text: string): { text: string; settings: number } {
  const lines = text.split("\n");
  const settings = lines.filter((line) => COMMENTED_SETTING.test(line)).length;
  return { text: lines.map((line) => line.replace(COMMENTED_SETTING, "")).join("\n"), settings };
}

test("config.d holds only *.toml files", () => {
  expect(names.length).toBeGreaterThan(0);
  for (const name of names) expect(name).toEndWith(".toml");
});

test("as shipped it checks out and changes no default", async () => {
  const check = await checkConfigDir(nodeFiles, SHIPPED_DIR);
  expect(check.problems).toEqual([]);
  expect(check.summary).toBe(`${SHIPPED_DIR}: ${names.length} config files, 0 rejected; every value is the built-in default`);
});

describe("each file with its settings uncommented gives exactly the defaults", () => {
  for (const { name, text } of shipped) {
    test(name, () => {
      const { text: active, settings } = uncommented(text);
      expect(settings).toBeGreaterThan(0);
      const layer = parseConfigLayer("initramfs", name, active);
      expect(layer).toMatchObject({ status: "parsed" });
      const resolved = resolveConfig([layer]);
      expect(resolved.problems).toEqual([]);
      expect(resolved.config).toEqual(DEFAULT_CONFIG);
    });
  }
});

test("every key of the defaults is documented in some file", () => {
  const layers = shipped.map(({ name, text }) => parseConfigLayer("initramfs", name, uncommented(text).text));
  const resolved = resolveConfig(layers);
  expect(resolved.config).toEqual(DEFAULT_CONFIG);
  const undocumented = Object.entries(resolved.provenance)
    .filter(([, source]) => source === DEFAULTS_SOURCE)
    .map(([key]) => key);
  expect(undocumented).toEqual([]);
});
