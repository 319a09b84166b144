// controller/'s folders are layers (README, "Layout"): a file imports its own folder and the
// folders below it, never one above, and nothing imports in a circle. A module that needs a
// piece of one that needs it back shows a piece that belongs a layer down. Type-only imports
// count too: they tie two files' meanings together all the same, except that plans/ may name
// the System port's types (a plan says which file type it expects) without calling it, and
// the paths and tool names of system/paths.ts, constants that do nothing (a plan says where
// a mount goes and which program a service runs).

import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative, resolve } from "node:path";

const CONTROLLER = resolve(import.meta.dir, "../../controller");

/** Lowest first. main.ts, at the top, only dispatches to cli/. */
const LAYERS = ["system", "config", "update", "fleet", "plans", "boot", "cli", "main.ts"] as const;

/** The one file of system/ that plans/ may take values from: paths and tool names, constants only. */
const PATHS = "system/paths.ts";

const IMPORT = /^(import|export)\s(type\s)?[^;]*?\sfrom\s+"([^"]+)";/gms;

interface Import {
  /** the file imported, relative to controller/, or the module's name ("node:fs", "zod") */
  readonly target: string;
  readonly typeOnly: boolean;
}

/** Pure: every file's imports, with local ones resolved to paths relative to controller/. */
function importGraph(sources: ReadonlyMap<string, string>): Map<string, Import[]> {
  const graph = new Map<string, Import[]>();
  for (const [file, text] of sources) {
    const imports = [...text.matchAll(IMPORT)].map((match): Import => {
      const specifier = match[3] ?? "";
      const target = specifier.startsWith(".") ? normalize(join(dirname(file), specifier)) : specifier;
      return { target, typeOnly: match[2] !== undefined };
    });
    graph.set(file, imports);
  }
  return graph;
}

/** Pure: the circles of the graph, each as the files along it, starting and ending with the same one. */
function importCircles(graph: ReadonlyMap<string, readonly Import[]>): string[][] {
  const circles: string[][] = [];
  const done = new Set<string>();
  const visit = (file: string, path: string[]): void => {
    const at = path.indexOf(file);
    if (at >= 0) {
      circles.push([...path.slice(at), file]);
      return;
    }
    if (done.has(file)) return;
    for (const next of graph.get(file) ?? []) if (graph.has(next.target)) visit(next.target, [...path, file]);
    done.add(file);
  };
  for (const file of [...graph.keys()].sort()) visit(file, []);
  return circles;
}

function layerOf(file: string): number {
  return LAYERS.indexOf((file.includes("/") ? file.slice(0, file.indexOf("/")) : file) as (typeof LAYERS)[number]);
}

/** Pure: every import that breaks the layering, as "FILE imports TARGET: WHY". */
function layerViolations(graph: ReadonlyMap<string, readonly Import[]>): string[] {
  const problems: string[] = [];
  for (const [file, imports] of graph) {
    const layer = layerOf(file);
    if (layer < 0) problems.push(`${file} is in no layer: expected it in one of ${LAYERS.join(", ")}`);
    for (const { target, typeOnly } of imports) {
      if (graph.has(target)) {
        const below = layerOf(target);
        if (below > layer) problems.push(`${file} imports ${target}: a layer above its own`);
        if (file === "main.ts" && below !== LAYERS.indexOf("cli")) problems.push(`${file} imports ${target}: main.ts only dispatches to cli/`);
        if (layer === LAYERS.indexOf("plans") && layerOf(target) === LAYERS.indexOf("system") && !typeOnly && target !== PATHS) {
          problems.push(`${file} imports ${target}: plans/ has no I/O, it may name the System's types only`);
        }
      } else if (layer === LAYERS.indexOf("plans") && /^(node|bun):/.test(target)) {
        problems.push(`${file} imports ${target}: plans/ has no I/O`);
      }
    }
  }
  return problems;
}

function controllerSources(): Map<string, string> {
  const files = readdirSync(CONTROLLER, { recursive: true, encoding: "utf8" }).filter((name) => name.endsWith(".ts"));
  return new Map(files.map((name) => [relative(CONTROLLER, join(CONTROLLER, name)), readFileSync(join(CONTROLLER, name), "utf8")] as const));
}

test("the circle finder finds a circle of three and a file that imports itself, and nothing in a tree", () => {
  const graph = (edges: Record<string, string[]>) => new Map(Object.entries(edges).map(([file, to]) => [file, to.map((target) => ({ target, typeOnly: false }))]));
  expect(importCircles(graph({ "a.ts": ["b.ts"], "b.ts": ["c.ts"], "c.ts": ["a.ts"] }))).toEqual([["a.ts", "b.ts", "c.ts", "a.ts"]]);
  expect(importCircles(graph({ "a.ts": ["a.ts"] }))).toEqual([["a.ts", "a.ts"]]);
  expect(importCircles(graph({ "a.ts": ["b.ts", "c.ts"], "b.ts": ["c.ts"], "c.ts": [] }))).toEqual([]);
});

test("the import reader resolves local imports against the file's folder and tells type-only imports", () => {
  const text = 'import type { X } from "../system/system.ts";\nimport {\n  y,\n} from "./c.ts";\nimport { z } from "node:fs";\n';
  expect(importGraph(new Map([["boot/a.ts", text]]))).toEqual(
    new Map([
      [
        "boot/a.ts",
        [
          { target: "system/system.ts", typeOnly: true },
          { target: "boot/c.ts", typeOnly: false },
          { target: "node:fs", typeOnly: false },
        ],
      ],
    ]),
  );
});

test("the layer check refuses an import upwards, a plan that does I/O, a file outside the layers, and main.ts doing more than dispatch; a plan may name paths", () => {
  const sources = new Map([
    ["system/log.ts", 'import { x } from "../boot/run-boot.ts";\n'],
    ["boot/run-boot.ts", 'import { y } from "../system/log.ts";\n'],
    ["system/paths.ts", ""],
    ["plans/mounts.ts", 'import type { System } from "../system/log.ts";\nimport { readFile } from "node:fs/promises";\nimport { z } from "../system/log.ts";\nimport { NEWROOT } from "../system/paths.ts";\n'],
    ["stray.ts", ""],
    ["main.ts", 'import { runBoot } from "./boot/run-boot.ts";\n'],
  ]);
  expect(layerViolations(importGraph(sources))).toEqual([
    "system/log.ts imports boot/run-boot.ts: a layer above its own",
    "plans/mounts.ts imports node:fs/promises: plans/ has no I/O",
    "plans/mounts.ts imports system/log.ts: plans/ has no I/O, it may name the System's types only",
    "stray.ts is in no layer: expected it in one of system, config, update, fleet, plans, boot, cli, main.ts",
    "main.ts imports boot/run-boot.ts: main.ts only dispatches to cli/",
  ]);
});

test("controller/ imports in no circle", () => {
  const graph = importGraph(controllerSources());
  expect(graph.size).toBeGreaterThan(50);
  expect(importCircles(graph)).toEqual([]);
});

test("controller/ imports only its own layer and those below: system, config, update, fleet, plans, boot, cli, main.ts", () => {
  expect(layerViolations(importGraph(controllerSources()))).toEqual([]);
});
