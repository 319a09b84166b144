// Reads what the test system's init (test/image/init) prints on the console.
// The format is defined there; this is its only reader. Kernel messages may land
// between marker lines, so lines that look like printk output are skipped.

import { plainConsoleText } from "./console-text.ts";

export const MARKER_PREFIX = "@@TEST ";

/** A line the kernel printed: "[   12.345678] ...". Exactly six decimals, so a JSON line like "[1.5]," is not one. */
const KERNEL_LINE = /^\[\s*\d+\.\d{6}\] /;

export interface MountMarker {
  readonly target: string;
  readonly fstype: string;
  readonly options: readonly string[];
  /** The device or filesystem name from /proc/mounts: /dev/loop0, /dev/vdb1, tmpfs. */
  readonly source: string;
}

/** What `@@TEST file PATH ...` said about a path named in test.cat=. */
export type FileMarker =
  | { readonly state: "content"; readonly content: string }
  | { readonly state: "missing" }
  | { readonly state: "directory" }
  | { readonly state: "unreadable" };

/** A folder's filesystem type and whether the init could create a file in it. */
export interface FolderMarker {
  readonly fstype: string;
  readonly writable: boolean;
}

/** What the init said about one `controller-health` call (mark-good, mark-shutdown). */
export type LifecycleMarker = { readonly state: "ran"; readonly exitCode: number } | { readonly state: "skipped" };

export interface TestMarkers {
  /** Every marker line, without "@@TEST ", in order: also the ones this parser has no field for. */
  readonly lines: readonly string[];
  readonly initStarted?: { readonly path: string; readonly pid: number };
  /** The content of the booted image's /etc/test-image-id ("system-a", "system-b"), or "missing". */
  readonly imageId?: string;
  /** Whether writing to / failed ("ro") or worked ("rw"). */
  readonly root?: "ro" | "rw";
  readonly etc?: FolderMarker;
  readonly varLog?: FolderMarker;
  readonly tmp?: FolderMarker;
  /** How many kernel-log lines start with "controller: ": the controller copies its console lines there. */
  readonly kmsgControllerLines?: number;
  /** /proc/mounts as the booted system saw it, in order. */
  readonly mounts: readonly MountMarker[];
  readonly files: ReadonlyMap<string, FileMarker>;
  /** "printed": `report` holds the parsed JSON; "missing": the init found no report file; "absent": no report markers at all. */
  readonly reportState: "printed" | "missing" | "absent";
  readonly report?: unknown;
  /** The output of `controller status` and its exit code. */
  readonly status?: { readonly output: string; readonly exitCode: number | undefined };
  /** `controller-health start` after the status, or "skipped" with test.no_mark_good. */
  readonly markGood?: LifecycleMarker;
  /** `controller-health stop` before the poweroff, or "skipped" with test.unclean_shutdown. */
  readonly markShutdown?: LifecycleMarker;
  /** The init reached its last marker before the shell and the shutdown. */
  readonly done: boolean;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Parse the markers in a console transcript (raw or plain; \r and escape sequences are removed first). */
export function parseTestMarkers(consoleText: string): TestMarkers {
  const lines = plainConsoleText(consoleText)
    .split("\n")
    .filter((line) => !KERNEL_LINE.test(line));
  const markerLines: string[] = [];
  const mounts: MountMarker[] = [];
  const files = new Map<string, FileMarker>();
  const result: Mutable<TestMarkers> = { lines: markerLines, mounts, files, reportState: "absent", done: false };
  let statusOutput: string | undefined;

  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] ?? "";
    if (line === "@@REPORT-BEGIN") {
      const block = blockUntil(lines, index, "@@REPORT-END");
      result.reportState = "printed";
      result.report = parseReport(block.text);
      index = block.endIndex;
    } else if (line === "@@REPORT missing") {
      result.reportState = "missing";
    } else if (line === "@@STATUS-BEGIN") {
      const block = blockUntil(lines, index, "@@STATUS-END");
      statusOutput = block.text;
      index = block.endIndex;
    } else if (line.startsWith("@@STATUS-EXIT ")) {
      const exitCode = parseWholeNumber(line.slice("@@STATUS-EXIT ".length), line);
      result.status = { output: statusOutput ?? "", exitCode };
    } else if (line.startsWith(MARKER_PREFIX)) {
      const body = line.slice(MARKER_PREFIX.length);
      markerLines.push(body);
      parseMarker(body, line, result, mounts, files);
    }
  }
  // A status block whose exit line never came (the VM died) still counts.
  if (result.status === undefined && statusOutput !== undefined) {
    result.status = { output: statusOutput, exitCode: undefined };
  }
  return result;
}

function parseMarker(
  body: string,
  line: string,
  result: Mutable<TestMarkers>,
  mounts: MountMarker[],
  files: Map<string, FileMarker>,
): void {
  const space = body.indexOf(" ");
  const key = space === -1 ? body : body.slice(0, space);
  const rest = space === -1 ? "" : body.slice(space + 1);
  switch (key) {
    case "init-started": {
      const fields = parseFields(rest, ["path", "pid"], line);
      result.initStarted = { path: fields.path, pid: parseWholeNumber(fields.pid, line) };
      break;
    }
    case "image-id":
      result.imageId = rest;
      break;
    case "root":
      if (rest !== "ro" && rest !== "rw") throw malformed(line, '"ro" or "rw"');
      result.root = rest;
      break;
    case "etc":
      result.etc = parseFolder(rest, line);
      break;
    case "var-log":
      result.varLog = parseFolder(rest, line);
      break;
    case "tmp":
      result.tmp = parseFolder(rest, line);
      break;
    case "mount": {
      const [target, fstype, options, source, ...extra] = rest.split(" ");
      if (target === undefined || fstype === undefined || options === undefined || source === undefined) {
        throw malformed(line, "TARGET FSTYPE OPTIONS SOURCE");
      }
      if (extra.length > 0) throw malformed(line, "TARGET FSTYPE OPTIONS SOURCE, without spaces in them");
      mounts.push({ target, fstype, options: options.split(","), source });
      break;
    }
    case "file": {
      const pathEnd = rest.indexOf(" ");
      if (pathEnd === -1) throw malformed(line, "PATH content=...|missing|directory|unreadable");
      files.set(rest.slice(0, pathEnd), parseFileState(rest.slice(pathEnd + 1), line));
      break;
    }
    case "kmsg":
      result.kmsgControllerLines = parseWholeNumber(parseFields(rest, ["controller-lines"], line)["controller-lines"], line);
      break;
    case "mark-good":
      result.markGood = parseLifecycle(rest, line);
      break;
    case "mark-shutdown":
      result.markShutdown = parseLifecycle(rest, line);
      break;
    case "done":
      result.done = true;
      break;
    // Other markers (a test's own, or ones added later) are only in `lines`.
  }
}

function parseFolder(rest: string, line: string): FolderMarker {
  const fields = parseFields(rest, ["fstype", "writable"], line);
  if (fields.writable !== "yes" && fields.writable !== "no") throw malformed(line, "writable=yes or writable=no");
  return { fstype: fields.fstype, writable: fields.writable === "yes" };
}

function parseLifecycle(rest: string, line: string): LifecycleMarker {
  if (rest === "skipped") return { state: "skipped" };
  if (!rest.startsWith("exit=")) throw malformed(line, "exit=N or skipped");
  return { state: "ran", exitCode: parseWholeNumber(rest.slice("exit=".length), line) };
}

function parseFileState(state: string, line: string): FileMarker {
  if (state.startsWith("content=")) return { state: "content", content: unescapeContent(state.slice("content=".length)) };
  if (state === "missing" || state === "directory" || state === "unreadable") return { state };
  throw malformed(line, "content=..., missing, directory or unreadable after the path");
}

/** The init writes a file on one line: "\" as "\\", a line break as "\n". */
function unescapeContent(escaped: string): string {
  return escaped.replace(/\\(\\|n)/g, (_, char: string) => (char === "n" ? "\n" : "\\"));
}

/** "a=1 b=2" with exactly the expected keys, in any order. */
function parseFields<K extends string>(text: string, keys: readonly K[], line: string): Record<K, string> {
  const found = new Map<string, string>();
  for (const word of text.split(" ")) {
    const equals = word.indexOf("=");
    if (equals > 0) found.set(word.slice(0, equals), word.slice(equals + 1));
  }
  const fields = {} as Record<K, string>;
  for (const key of keys) {
    const value = found.get(key);
    if (value === undefined) throw malformed(line, keys.map((k) => `${k}=...`).join(" "));
    fields[key] = value;
  }
  return fields;
}

function parseWholeNumber(text: string, line: string): number {
  if (!/^\d+$/.test(text)) throw malformed(line, "a whole number");
  return Number(text);
}

function blockUntil(lines: readonly string[], beginIndex: number, endMarker: string): { text: string; endIndex: number } {
  const endIndex = lines.indexOf(endMarker, beginIndex + 1);
  if (endIndex === -1) {
    throw new Error(`console has ${lines[beginIndex]} but no ${endMarker} after it: the output was cut off`);
  }
  return { text: lines.slice(beginIndex + 1, endIndex).join("\n"), endIndex };
}

function parseReport(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`the boot report between @@REPORT-BEGIN and @@REPORT-END is not JSON (${reason}):\n${text}`);
  }
}

function malformed(line: string, expected: string): Error {
  return new Error(`malformed console marker: expected ${expected}, found: ${JSON.stringify(line)}`);
}
