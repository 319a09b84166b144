// Runs the QEMU test files two VMs at a time: one `bun test` process per file,
// the files that run two VMs themselves first, then longest first, from a queue. Under TCG a VM keeps one host core busy, and the
// CI machine has two; one file after the other left the second core idle and
// took over an hour. Each file's output is kept in its own log and printed
// whole when the file ends (with its wall time), so two files' lines never mix;
// each failed test's lines come again above the summary; the last line is the total, "N passed, N failed". Exits 1 when any file fails.
// A file that passed has its disks removed as it ends (its consoles and
// screenshots stay); a failed file's stay, for the QEMU command lines it printed.
//
// With --debian-images-job DIR (scripts/test), the Debian test images are still
// building in the background, in a folder that holds the job's pid, its log and,
// once it has ended, its exit-code: the files that boot those images wait for
// it, and are failed with its log if it failed; the others start at once.
//
//   bun scripts/run-qemu-tests.ts [--vms N] [--logs DIR] [--disks DIR] [--debian-images-job DIR] [FILE...]
//   (default: every test/qemu/*.test.ts, 2 VMs, logs in build/qemu-test-logs, disks in build/scenario-disks)

import { closeSync, mkdirSync, openSync, readFileSync, statfsSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { clearPassedFolder, DISKS_DIR_ENV, processFolder, RUN_OWNER_ENV } from "../qemu-harness/run-folder.ts";
import { bootsDebianImages, type FileResult, failureExcerpts, failuresOf, formatDuration, nextToStart, parseBunCounts, type QueuedFile, queueLongestFirst, summary } from "../qemu-harness/test-queue.ts";

const REPO = resolve(import.meta.dir, "..");
const DEFAULT_LOG_DIR = join(REPO, "build/qemu-test-logs");
const DEFAULT_DISKS_DIR = join(REPO, "build/scenario-disks");
const DEFAULT_VMS = 2;

interface RunnerOptions {
  readonly vms: number;
  readonly logDir: string;
  readonly disksDir: string;
  readonly files: string[];
  readonly debianImagesJob: string | undefined;
}

function options(): RunnerOptions {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: { vms: { type: "string" }, logs: { type: "string" }, disks: { type: "string" }, "debian-images-job": { type: "string" } },
    allowPositionals: true,
  });
  const vmsText = values.vms ?? String(DEFAULT_VMS);
  if (!/^[1-9]\d*$/.test(vmsText)) throw new Error(`Cannot use --vms ${JSON.stringify(vmsText)}: expected a whole number of at least 1`);
  const files = positionals.length > 0 ? positionals.map((file) => resolve(file)) : [...new Bun.Glob("test/qemu/*.test.ts").scanSync({ cwd: REPO, absolute: true })];
  if (files.length === 0) throw new Error(`Cannot run the QEMU tests: no test/qemu/*.test.ts in ${REPO}`);
  const job = values["debian-images-job"];
  return {
    vms: Number(vmsText),
    logDir: resolve(values.logs ?? DEFAULT_LOG_DIR),
    disksDir: resolve(values.disks ?? DEFAULT_DISKS_DIR),
    files,
    debianImagesJob: job === undefined ? undefined : resolve(job),
  };
}

type JobState = { readonly ended: false } | { readonly ended: true; readonly failure: string | undefined };

/** Where the background build of the Debian images stands, from its folder (see the top of this file). */
function debianImagesJobState(dir: string): JobState {
  const read = (name: string) => {
    try {
      return readFileSync(join(dir, name), "utf8").trim();
    } catch {
      return undefined;
    }
  };
  const exitCode = read("exit-code");
  if (exitCode !== undefined) return { ended: true, failure: exitCode === "0" ? undefined : `scripts/build-debian-images exited with code ${exitCode}` };
  const pid = Number(read("pid"));
  if (!Number.isInteger(pid) || pid <= 0) return { ended: false };
  try {
    process.kill(pid, 0);
    return { ended: false };
  } catch {
    return { ended: true, failure: `scripts/build-debian-images (pid ${pid}) ended without writing ${join(dir, "exit-code")}` };
  }
}

const running = new Set<Subprocess>();
/** Each failed file's failed tests (failureExcerpts), taken from its output as the file ends. */
const failedTests = new Map<string, string[][]>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    for (const child of running) child.kill(signal);
    process.exit(128 + (signal === "SIGINT" ? 2 : 15));
  });
}

function say(text: string): void {
  process.stderr.write(`==> ${text}\n`);
}

/** One file in its own bun test process; its output (stdout and stderr, in order) goes to a log. */
async function runFile(file: QueuedFile, logDir: string, disksDir: string): Promise<FileResult> {
  const log = join(logDir, `${basename(file.path, ".test.ts")}.log`);
  const name = relative(REPO, file.path);
  say(`start ${name} (log: ${shortPath(log)}; ${roomForDisks(disksDir)})`);
  const fd = openSync(log, "w");
  const started = performance.now();
  try {
    const child = Bun.spawn([process.execPath, "test", file.path], {
      cwd: REPO,
      env: { ...process.env, [RUN_OWNER_ENV]: String(process.pid), [DISKS_DIR_ENV]: disksDir },
      stdin: "ignore",
      stdout: fd,
      stderr: fd,
    });
    running.add(child);
    const exitCode = await child.exited;
    running.delete(child);
    const seconds = (performance.now() - started) / 1000;
    const output = readFileSync(log, "utf8");
    const result = { path: file.path, exitCode, seconds, counts: parseBunCounts(output) };
    const failed = failuresOf(result) > 0;
    if (failed) failedTests.set(file.path, failureExcerpts(output));
    const folder = processFolder(disksDir, process.pid, child.pid);
    const verdict = failed ? `FAILED (exit code ${exitCode})` : `passed${await disksRemoved(folder)}`;
    process.stderr.write(`\n==> ${name}: ${formatDuration(seconds)}, ${verdict}\n${output.trimEnd()}\n==> end of ${name}\n\n`);
    return result;
  } finally {
    closeSync(fd);
  }
}

/**
 * Clears a passed file's folder (clearPassedFolder) and says what it freed, or nothing when the file made no disks.
 * A disk that cannot be removed is said, not thrown: the file passed, and the run goes on.
 */
async function disksRemoved(folder: string): Promise<string> {
  let freed: number;
  try {
    freed = await clearPassedFolder(folder);
  } catch (error) {
    return `; cannot remove all of its disks in ${shortPath(folder)}: ${(error as Error).message}`;
  }
  if (freed === 0) return "";
  const size = freed >= 1e9 ? `${(freed / 1e9).toFixed(1)} GB` : `${Math.max(1, Math.round(freed / 1e6))} MB`;
  return `; its disks removed, ${size} (its consoles and screenshots stay in ${shortPath(folder)})`;
}

/** The space left on the disks' filesystem: each file's start says it, so a full disk shows before a test fails on it. */
function roomForDisks(disksDir: string): string {
  try {
    mkdirSync(disksDir, { recursive: true });
    const { bavail, bsize } = statfsSync(disksDir);
    return `${((bavail * bsize) / 1e9).toFixed(1)} GB free for its disks`;
  } catch (error) {
    return `the room for its disks is unknown: ${(error as Error).message}`;
  }
}

function shortPath(path: string): string {
  return path.startsWith(`${REPO}/`) ? relative(REPO, path) : path;
}

/**
 * Each failed test's lines once more, just above the summary: a CI page that
 * shows only the end of the output still shows why a file failed.
 */
function printFailuresAgain(results: readonly FileResult[]): void {
  for (const result of results.filter((row) => failuresOf(row) > 0)) {
    const name = relative(REPO, result.path);
    const excerpts = failedTests.get(result.path) ?? [];
    const body = excerpts.length === 0 ? "(no failed test printed: the whole log is above)" : excerpts.map((lines) => lines.join("\n")).join("\n\n");
    process.stderr.write(`==> failed in ${name}, again:\n${body}\n==> end of the failures of ${name}\n\n`);
  }
}

async function main(): Promise<number> {
  const { vms, logDir, disksDir, files, debianImagesJob } = options();
  mkdirSync(logDir, { recursive: true });
  const queue = queueLongestFirst(files);
  const bootingDebian = new Set(queue.filter((file) => bootsDebianImages(readFileSync(file.path, "utf8"))).map((file) => file.path));
  say(`${queue.length} QEMU test files, ${vms} VMs at a time, longest first: ${queue.map((file) => basename(file.path)).join(", ")}`);
  const started = performance.now();
  const results: FileResult[] = [];
  let freeVms = vms;
  let debianImages: JobState = { ended: true, failure: undefined };
  if (debianImagesJob !== undefined) {
    debianImages = debianImagesJobState(debianImagesJob);
    if (!debianImages.ended && bootingDebian.size > 0) {
      say(`held until the Debian test images are built: ${[...bootingDebian].map((path) => basename(path)).join(", ")}`);
    }
  }
  await new Promise<void>((done) => {
    const startWhatFits = () => {
      const held = (file: QueuedFile) => !debianImages.ended && bootingDebian.has(file.path);
      for (let file = nextToStart(queue, freeVms, vms, held); file !== undefined; file = nextToStart(queue, freeVms, vms, held)) {
        queue.splice(queue.indexOf(file), 1);
        const taken = Math.min(file.vms, vms);
        freeVms -= taken;
        void runFile(file, logDir, disksDir).then((result) => {
          results.push(result);
          freeVms += taken;
          if (results.length === files.length) done();
          else startWhatFits();
        });
      }
    };
    /** Once the job has ended: its log, whole; if it failed, the files waiting for it fail without running. */
    const jobEnded = (job: string, state: JobState & { ended: true }) => {
      const log = join(job, "log");
      let text = "(no log was written)";
      try {
        text = readFileSync(log, "utf8").trimEnd();
      } catch {}
      const verdict = state.failure === undefined ? "built" : `NOT built: ${state.failure}`;
      process.stderr.write(`\n==> Debian test images ${verdict}, ${formatDuration((performance.now() - started) / 1000)} into the QEMU tests (log: ${log})\n${text}\n==> end of the Debian test images' log\n\n`);
      if (state.failure === undefined) return;
      for (const file of queue.filter((queued) => bootingDebian.has(queued.path))) {
        queue.splice(queue.indexOf(file), 1);
        say(`${relative(REPO, file.path)}: FAILED, not run: it boots the Debian test images, which did not build (${state.failure}; their log is above)`);
        results.push({ path: file.path, exitCode: 1, seconds: 0, counts: undefined });
      }
      if (results.length === files.length) done();
    };
    if (debianImagesJob !== undefined) {
      if (debianImages.ended) jobEnded(debianImagesJob, debianImages);
      else {
        const poll = setInterval(() => {
          const state = debianImagesJobState(debianImagesJob);
          if (!state.ended) return;
          clearInterval(poll);
          debianImages = state;
          jobEnded(debianImagesJob, state);
          startWhatFits();
        }, 2000);
      }
    }
    startWhatFits();
  });
  printFailuresAgain(results);
  const lines = summary(results, (performance.now() - started) / 1000, vms);
  process.stderr.write(`${lines.join("\n")}\n`);
  return results.some((result) => failuresOf(result) > 0) ? 1 : 0;
}

try {
  process.exit(await main());
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(2);
}
