// SHA512SUMS of a Heddle update: every file the kexec uses must match it.

import { HEDDLE_UPDATE_FILES as FILES } from "../system/paths.ts";

export type ParsedSums = { readonly ok: true; readonly sums: ReadonlyMap<string, string> } | { readonly ok: false; readonly problem: string };

/** Pure: `sha512sum` output, "HASH  NAME" (or "HASH *NAME") per line; a leading "./" on a name is dropped. */
export function parseSha512Sums(text: string): ParsedSums {
  const sums = new Map<string, string>();
  const lines = text.split("\n");
  for (const [index, line] of lines.entries()) {
    if (line.trim() === "") continue;
    const match = /^([0-9a-fA-F]{128}) [ *](.+)$/.exec(line.replace(/\r$/, ""));
    if (match === null) return { ok: false, problem: `line ${index + 1} is not "SHA512  NAME" as sha512sum writes it: ${JSON.stringify(line.slice(0, 80))}` };
    const name = (match[2] as string).replace(/^\.\//, "");
    if (sums.has(name)) return { ok: false, problem: `line ${index + 1} lists ${name} a second time` };
    sums.set(name, (match[1] as string).toLowerCase());
  }
  return { ok: true, sums };
}

/**
 * Pure: why files do not match their checksums, one problem per file. Every file
 * the boot uses must be listed; a listed boot file that is not there is also a
 * problem (a deleted cmdline would change what boots).
 */
export function checkSums(sums: ReadonlyMap<string, string>, used: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  for (const [name, actual] of used) {
    const expected = sums.get(name);
    if (expected === undefined) problems.push(`${name} is not listed in ${FILES.sums}`);
    else if (expected !== actual) problems.push(`${name} has sha512 ${actual.slice(0, 16)}…, ${FILES.sums} expects ${expected.slice(0, 16)}…`);
  }
  for (const name of [FILES.kernel, FILES.initrd, FILES.cmdline]) {
    if (sums.has(name) && !used.has(name)) problems.push(`${FILES.sums} lists ${name}, but the update has no such file`);
  }
  return problems;
}
