// controller/ imports in no circle: a module that needs a piece of another
// that needs it back shows a piece that belongs a layer down. Type-only imports
// count too: they tie the two files' meanings together all the same.

import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const CONTROLLER = resolve(import.meta.dir, "../../controller");
const IMPORT = /^(?:import|export)\s[^;]*?\sfrom\s+"(\.\/[^"]+\.ts)";/gms;

/** Pure: every file's local imports, "./x.ts" → "x.ts". */
function importGraph(sources: ReadonlyMap<string, string>): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const [file, text] of sources) graph.set(file, [...text.matchAll(IMPORT)].map((match) => (match[1] ?? "").slice(2)));
  return graph;
}

/** Pure: the circles of the graph, each as the files along it, starting and ending with the same one. */
function importCircles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const circles: string[][] = [];
  const done = new Set<string>();
  const visit = (file: string, path: string[]): void => {
    const at = path.indexOf(file);
    if (at >= 0) {
      circles.push([...path.slice(at), file]);
      return;
    }
    if (done.has(file)) return;
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
    done.add(file);
  };
  for (const file of [...graph.keys()].sort()) visit(file, []);
  return circles;
}

test("the circle finder finds a circle of three and a file that imports itself, and nothing in a tree", () => {
  expect(importCircles(new Map([["a.ts", ["b.ts"]], ["b.ts", ["c.ts"]], ["c.ts", ["a.ts"]]]))).toEqual([["a.ts", "b.ts", "c.ts", "a.ts"]]);
  expect(importCircles(new Map([["a.ts", ["a.ts"]]]))).toEqual([["a.ts", "a.ts"]]);
  expect(importCircles(new Map([["a.ts", ["b.ts", "c.ts"]], ["b.ts", ["c.ts"]], ["c.ts", []]]))).toEqual([]);
  expect(importGraph(new Map([["a.ts", 'import type { X } from "./b.ts";\nimport {\n  y,\n} from "./c.ts";\nimport { z } from "node:fs";\n']]))).toEqual(
    new Map([["a.ts", ["b.ts", "c.ts"]]]),
  );
});

test("controller/ imports in no circle", () => {
  const sources = new Map(
    readdirSync(CONTROLLER)
      .filter((name) => name.endsWith(".ts"))
      .map((name) => [name, readFileSync(join(CONTROLLER, name), "utf8")] as const),
  );
  expect(importCircles(importGraph(sources))).toEqual([]);
});
