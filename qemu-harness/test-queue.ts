// The decisions of scripts/run-qemu-tests, kept pure so unit tests can check
// them: the order the QEMU test files run in, when the next one may start, and
// the totals read from what each `bun test` printed.

import { basename } from "node:path";
import { plainConsoleText } from "./console-text.ts";

export interface QueuedFile {
  readonly path: string;
  /** roughly how long the file takes with one core to itself: only the order depends on it */
  readonly expectedSeconds: number;
  /** VMs the file runs at the same time: power-cut.test.ts runs two itself */
  readonly vms: number;
}

/**
 * Whether a test file boots the Debian test images (scripts/build-debian-images),
 * which scripts/test builds beside the first QEMU files: those reach them through
 * test/qemu/debian-fixtures.ts, so a file importing it waits for that build.
 */
export function bootsDebianImages(source: string): boolean {
  return /^import [^;]* from "\.\/debian-fixtures\.ts";/m.test(source);
}

export interface FileEstimate {
  readonly expectedSeconds: number;
  readonly vms: number;
}

/**
 * Wall times of the files in a full run two VMs at a time on a 2-core machine
 * (a clean clone of 00038f9, README, Tests), rounded. A file missing here (a
 * new one) is taken as long, so it starts early rather than running last on
 * its own.
 */
export const ESTIMATES: Readonly<Record<string, FileEstimate>> = {
  // 17 rows of three boots each (the cut boots resumed from one saved VM state), two VMs itself
  "power-cut.test.ts": { expectedSeconds: 760, vms: 2 },
  "health.test.ts": { expectedSeconds: 315, vms: 1 },
  "update.test.ts": { expectedSeconds: 470, vms: 1 },
  "delta.test.ts": { expectedSeconds: 200, vms: 1 },
  "boot.test.ts": { expectedSeconds: 195, vms: 1 },
  // one boot of Debian with systemd on the systemd initrd
  "debian.test.ts": { expectedSeconds: 60, vms: 1 },
  "heddle.test.ts": { expectedSeconds: 200, vms: 1 },
  // Debian boots, by kexec and through GRUB: (a) 145 s and its first boot at 0 % about 80 s more, (e) 42 s, (b) 161 s, (c) 188 s, (d) 115 s, (f) 127 s beside another VM
  "kernel-switch.test.ts": { expectedSeconds: 790, vms: 1 },
  // 8 rows, each a cut boot and one or two GRUB boots to Debian's systemd (38-48 s each), two VMs itself
  "kernel-power-cut.test.ts": { expectedSeconds: 400, vms: 2 },
  "network.test.ts": { expectedSeconds: 90, vms: 1 },
  "alchemy.test.ts": { expectedSeconds: 75, vms: 1 },
  // making two disks with scripts/blank-disk, then two boots from them (BIOS, UEFI)
  "grub.test.ts": { expectedSeconds: 92, vms: 1 },
  "pxe.test.ts": { expectedSeconds: 90, vms: 1 },
  "harness.test.ts": { expectedSeconds: 20, vms: 1 },
  "initramfs.test.ts": { expectedSeconds: 5, vms: 1 },
};
export const UNKNOWN_FILE: FileEstimate = { expectedSeconds: 900, vms: 1 };

/**
 * The files that run several VMs first, one after the other while the machine
 * has nothing else started (later, one waits for every running file to end,
 * and the VMs they free stand idle meanwhile); then longest first, so the long
 * files overlap the short ones instead of running last on their own.
 */
export function queueLongestFirst(paths: readonly string[], estimates: Readonly<Record<string, FileEstimate>> = ESTIMATES): QueuedFile[] {
  return paths
    .map((path) => ({ path, ...(estimates[basename(path)] ?? UNKNOWN_FILE) }))
    .sort((a, b) => b.vms - a.vms || b.expectedSeconds - a.expectedSeconds || a.path.localeCompare(b.path));
}

/**
 * The file to start now, if any: the first of the queue that is not held (its
 * images still building) once there are VMs free for it (a file wanting more
 * VMs than the machine runs gets them all). That file is never passed over, so
 * a file wanting two VMs is not starved by short files that fit in one.
 */
export function nextToStart(queue: readonly QueuedFile[], freeVms: number, maxVms: number, held: (file: QueuedFile) => boolean = () => false): QueuedFile | undefined {
  const head = queue.find((file) => !held(file));
  if (head === undefined) return undefined;
  return Math.min(head.vms, maxVms) <= freeVms ? head : undefined;
}

export interface FileCounts {
  readonly pass: number;
  readonly fail: number;
  readonly skip: number;
  readonly todo: number;
}

/**
 * The counts bun test prints at its end (" 12 pass", " 0 fail", " 1 skip", " 2 todo", one a line);
 * undefined when it printed none (it crashed, or never got to run a test).
 */
export function parseBunCounts(output: string): FileCounts | undefined {
  const counts = { pass: 0, fail: 0, skip: 0, todo: 0 };
  let found = false;
  for (const line of plainConsoleText(output).split("\n")) {
    const match = /^ *(\d+) (pass|fail|skip|todo)$/.exec(line);
    if (match?.[1] === undefined || match[2] === undefined) continue;
    counts[match[2] as keyof FileCounts] = Number(match[1]);
    found = true;
  }
  return found ? counts : undefined;
}

export interface FileResult {
  readonly path: string;
  readonly exitCode: number;
  readonly seconds: number;
  /** undefined when bun test printed no counts */
  readonly counts: FileCounts | undefined;
}

/**
 * Failures as CI counts them: a file whose bun test exits non-zero without
 * counting a failed test (a crash, an error outside any test) counts as one.
 */
export function failuresOf(result: FileResult): number {
  const failed = result.counts?.fail ?? 0;
  return result.exitCode !== 0 && failed === 0 ? 1 : failed;
}

/** The lines bun test prints when a test ends: "(pass) a > b [12.00ms]", "(fail) ...". */
const TEST_END = /^\((pass|fail|skip|todo)\) /;

/**
 * What bun test printed for each failed test, from the output of one file: the
 * lines since the previous test ended (the test's own output, then bun's error
 * with its source excerpt) through the "(fail)" line and bun's "^ this test
 * timed out" under it. A block longer than maxLines keeps its last lines, where
 * bun puts the error. The runner prints these again under its summary, so a
 * failure is still in sight where CI shows only the end of the output.
 */
export function failureExcerpts(output: string, maxLines = 80): string[][] {
  const lines = plainConsoleText(output).split("\n");
  const excerpts: string[][] = [];
  let blockStart = 0;
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] ?? "";
    const ended = TEST_END.exec(line);
    if (ended === null) {
      // a file's header ("x.test.ts:") starts a block as a test's end does
      if (/^\S.*\.test\.ts:$/.test(line)) blockStart = index + 1;
      continue;
    }
    if (ended[1] === "fail") {
      let end = index + 1;
      while (end < lines.length && /^ {2}\^ /.test(lines[end] ?? "")) end++;
      const block = lines.slice(blockStart, end);
      excerpts.push(block.length > maxLines ? [`(${block.length - maxLines} earlier lines are in the file's log)`, ...block.slice(-maxLines)] : block);
      index = end - 1;
    }
    blockStart = index + 1;
  }
  return excerpts;
}

/** "12m05s", "48s" */
export function formatDuration(seconds: number): string {
  const whole = Math.round(seconds);
  const minutes = Math.floor(whole / 60);
  const rest = String(whole % 60).padStart(2, "0");
  return minutes === 0 ? `${whole}s` : `${minutes}m${rest}s`;
}

/** One line per file, slowest first, and the total line CI reads last: "N passed, N failed". */
export function summary(results: readonly FileResult[], wallSeconds: number, maxVms: number): string[] {
  const rows = [...results].sort((a, b) => b.seconds - a.seconds);
  const width = Math.max(...rows.map((row) => basename(row.path).length));
  const lines = rows.map((row) => {
    const counts = row.counts === undefined ? "no test counts printed" : `${row.counts.pass} pass, ${row.counts.fail} fail`;
    const verdict = failuresOf(row) === 0 ? "ok" : `FAILED (exit code ${row.exitCode})`;
    return `${basename(row.path).padEnd(width)}  ${formatDuration(row.seconds).padStart(6)}  ${counts}  ${verdict}`;
  });
  const passed = results.reduce((sum, row) => sum + (row.counts?.pass ?? 0), 0);
  const failed = results.reduce((sum, row) => sum + failuresOf(row), 0);
  const skipped = results.reduce((sum, row) => sum + (row.counts?.skip ?? 0) + (row.counts?.todo ?? 0), 0);
  const summed = results.reduce((sum, row) => sum + row.seconds, 0);
  lines.push(
    `QEMU test files: ${results.length}, ${maxVms} VMs at a time: ${formatDuration(wallSeconds)} wall (the files' own times add up to ${formatDuration(summed)})`,
    `${passed} passed, ${failed} failed${skipped === 0 ? "" : `, ${skipped} skipped`}`,
  );
  return lines;
}
