// `controller serve`: the development update server (update/dev-server.ts)
// as a command: its options, its checks on the repository folder, and its
// output, the access log batched on stdout.

import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { isMissing, type RepoServer, startRepoServer } from "../update/dev-server.ts";
import { parseOptions, parsePort, untilStopSignal } from "./server-options.ts";

// One write(2) per access log line took a third of the server's time at
// thousands of requests a second (bench/serve.ts), so lines are gathered and
// written together, as nginx's `access_log ... buffer=` does: at most this
// late, or as soon as this many wait.
const ACCESS_LOG_DELAY_MS = 100;
const ACCESS_LOG_MAX_LINES = 256;

export interface LineBuffer {
  /** Keeps the line (without its newline) for the next write. */
  add(line: string): void;
  /** Writes whatever waits, now. */
  flush(): void;
}

/** Lines passed to `write` together, each ending in a newline: after `delayMs` or once `maxLines` wait. */
export function lineBuffer(write: (text: string) => void, delayMs = ACCESS_LOG_DELAY_MS, maxLines = ACCESS_LOG_MAX_LINES): LineBuffer {
  let pending: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const text = pending.join("");
    pending = [];
    write(text);
  };
  const add = (line: string): void => {
    pending.push(`${line}\n`);
    if (pending.length >= maxLines) flush();
    else timer ??= setTimeout(flush, delayMs);
  };
  return { add, flush };
}

const USAGE = "Usage: controller serve --repo DIR --port N [--host ADDRESS]   (default address 127.0.0.1; port 0 picks a free one)\n";

type ServeArgs = { repo: string; port: number; hostname: string };

function parseServeArgs(args: readonly string[]): ServeArgs | string {
  const values = parseOptions(args, ["--repo", "--port", "--host"]);
  if (typeof values === "string") return values;
  const repo = values.get("--repo");
  if (repo === undefined) return "--repo DIR is missing";
  const port = parsePort(values.get("--port"));
  if (typeof port === "string") return port;
  const hostname = values.get("--host") ?? "127.0.0.1";
  if (hostname === "") return "--host needs an address, got an empty one";
  return { repo: resolve(repo), port, hostname };
}

/** Why `path` is not a folder that can be read, or null when it is one. */
async function folderProblem(path: string): Promise<string | null> {
  try {
    return (await stat(path)).isDirectory() ? null : "it is not a folder";
  } catch (error) {
    return isMissing(error) ? "no such folder" : (error as Error).message;
  }
}

/** `controller serve`: serves until SIGINT or SIGTERM; the access log goes to stdout, in batches at most ACCESS_LOG_DELAY_MS late. */
export async function serveCommand(args: readonly string[]): Promise<number> {
  const parsed = parseServeArgs(args);
  if (typeof parsed === "string") {
    process.stderr.write(`Cannot serve: ${parsed}\n${USAGE}`);
    return 2;
  }
  let problem = await folderProblem(parsed.repo);
  if (problem === null && (await folderProblem(join(parsed.repo, "channels"))) !== null) {
    problem = "it has no channels/ folder, so it is not an update repository (those have channels/CHANNEL/manifest.json)";
  }
  if (problem !== null) {
    process.stderr.write(`Cannot serve ${parsed.repo}: ${problem}\n`);
    return 1;
  }
  const accessLog = lineBuffer((text) => process.stdout.write(text));
  let server: RepoServer;
  try {
    server = startRepoServer({ ...parsed, accessLog: accessLog.add });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  const signal = await untilStopSignal(() => process.stdout.write(`serving ${parsed.repo} at ${server.url}\n`));
  await server.stop();
  accessLog.flush();
  process.stdout.write(`stopped by ${signal}\n`);
  return 0;
}
