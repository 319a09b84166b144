// What of command_url='s output is shown as it comes, and what the report
// keeps of it (boot/command-url.ts runs the script).

/** Pure: the complete lines in `text` from `offset` on, and where the next read starts (after the last line break). */
export function newLines(text: string, offset: number): { lines: string[]; next: number } {
  const end = text.lastIndexOf("\n");
  if (end < offset) return { lines: [], next: offset };
  return { lines: text.slice(offset, end).split("\n"), next: end + 1 };
}

/** Pure: the report's copy of the output, cut at `maxBytes` characters. */
export function capOutput(text: string, maxBytes: number): { output: string; truncated: boolean } {
  return text.length > maxBytes ? { output: text.slice(0, maxBytes), truncated: true } : { output: text, truncated: false };
}
