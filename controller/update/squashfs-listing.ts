// The listing of a squashfs image as `unsquashfs -lls IMAGE` prints it
// (squashfs-tools 4.5.1, Debian 12), turned into the ImageTree that the image
// kernel convention (image-kernel.ts) reads: `publish` learns what an image
// holds without mounting it. Pure: the caller runs unsquashfs.
//
//   drwxr-xr-x root/root                75 2026-12-04 19:54 squashfs-root
//   -rw-r--r-- root/root                 2 2026-12-04 19:54 squashfs-root/boot/vmlinuz-6.1.0-57-amd64
//   lrwxrwxrwx root/root                27 2026-12-04 19:54 squashfs-root/vmlinuz -> boot/vmlinuz-6.1.0-57-amd64
//   crw-r--r-- root/root             1,  3 2026-12-04 19:54 squashfs-root/dev/null
//
// A symlink's size is the length of its target, so " -> " inside a name can
// never be mistaken for the arrow.

import type { ImageTree, TreeEntry } from "./image-kernel.ts";

const ROOT = "squashfs-root";
const LINE = /^([-dlcbps])[-rwxsStT]{9} \S+\s+(\d+|\d+,\s*\d+) \d{4}-\d{2}-\d{2} \d{2}:\d{2} (.*)$/;

export type ParsedListing = { readonly ok: true; readonly tree: ImageTree } | { readonly ok: false; readonly problem: string };

/** Pure: `unsquashfs -lls` output → the image's entries by absolute path ("/boot/vmlinuz"). */
export function parseSquashfsListing(text: string): ParsedListing {
  const tree = new Map<string, TreeEntry>();
  const refuse = (lineNumber: number, what: string): ParsedListing => ({ ok: false, problem: `Cannot read the image's listing: line ${lineNumber} ${what}` });
  const lines = text.split("\n");
  for (const [index, line] of lines.entries()) {
    if (line === "" && index === lines.length - 1) continue;
    const match = LINE.exec(line);
    if (match === null) return refuse(index + 1, `is not an entry of \`unsquashfs -lls\`: ${JSON.stringify(line.slice(0, 120))}`);
    const [, kind, size, rest] = match as unknown as [string, string, string, string];
    let name = rest;
    let entry: TreeEntry;
    if (kind === "l") {
      const length = Number(size);
      const arrow = rest.length - length - 4;
      if (arrow < 0 || rest.slice(arrow, arrow + 4) !== " -> ") return refuse(index + 1, `is a symlink whose target is not the ${length} characters its size says`);
      name = rest.slice(0, arrow);
      entry = { type: "symlink", target: rest.slice(arrow + 4) };
    } else if (kind === "-") {
      entry = { type: "file", size: Number(size) };
    } else if (kind === "d") {
      entry = { type: "directory" };
    } else {
      entry = { type: "other" };
    }
    if (name !== ROOT && !name.startsWith(`${ROOT}/`)) return refuse(index + 1, `names ${JSON.stringify(name.slice(0, 120))}, expected a path under ${ROOT}`);
    const path = name === ROOT ? "/" : name.slice(ROOT.length);
    // a name with a line break could forge a line of its own: two entries for one path give it away
    if (tree.has(path)) return refuse(index + 1, `lists ${JSON.stringify(path)} a second time`);
    tree.set(path, entry);
  }
  if (!tree.has("/")) return { ok: false, problem: `Cannot read the image's listing: expected an entry for its root, ${ROOT}, got ${tree.size === 0 ? "no entries at all" : "none"}` };
  tree.delete("/");
  return { ok: true, tree };
}
