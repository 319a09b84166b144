// Fleet serving: many machines asking one update server for the channel's
// manifest and for parts of the image at once (a fleet booting after a power
// cut, or resuming downloads). Measures `controller serve` (the compiled
// binary, as it would run) against Debian's nginx serving the same
// repository, with wrk as the load generator, everything on 127.0.0.1.

import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawn, type Subprocess } from "bun";
import { fixed, freePort, MiB, progress, run, table } from "./lib.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");
const CONTROLLER = join(REPO_ROOT, "dist/controller");
const IMAGE_SIZE = 128 * MiB;
const RANGE_SIZE = MiB;
const CHANNEL = "stable";
const CLIENTS = [100, 1000] as const;
const DURATION_SECONDS = 10;
const WARMUP_SECONDS = 3;
// two cores are shared by the server and wrk; more wrk threads would only take turns
const WRK_THREADS = 2;
// a controller waits far longer than wrk's default 2 s before it gives up on a request
const TIMEOUT_SECONDS = 10;
// 1000 connections for wrk plus as many for the server, with room for files and logs
const OPEN_FILES = 8192;

/** The command run with at least OPEN_FILES open files allowed, when the inherited limit is lower. */
function withOpenFiles(command: readonly string[]): string[] {
  const limit = run(["sh", "-c", "ulimit -n"]).stdout.trim();
  if (limit === "unlimited" || Number(limit) >= OPEN_FILES) return [...command];
  return ["sh", "-c", `ulimit -n ${OPEN_FILES} && exec "$@"`, "sh", ...command];
}

/** The installed Debian package's version: wrk has no option that prints its version and exits 0. */
function debianVersion(name: string): string {
  return run(["dpkg-query", "--show", "--showformat=${Version}", name]).stdout.trim();
}


/** "hsqs" (what publish checks for) and random bytes: nothing a server could compress or cache by content. */
async function writeImage(path: string): Promise<void> {
  const handle = await open(path, "w");
  try {
    const first = randomBytes(MiB);
    first.write("hsqs", 0, "latin1");
    await handle.write(first);
    for (let written = MiB; written < IMAGE_SIZE; written += MiB) await handle.write(randomBytes(MiB));
  } finally {
    await handle.close();
  }
}

interface Repository {
  readonly path: string;
  readonly manifestUrl: string;
  readonly imageUrl: string;
  readonly imageFile: string;
}

/** A repository as `controller publish` makes it: one channel, one image. */
async function publishRepository(dir: string): Promise<Repository> {
  const path = join(dir, "repo");
  const image = join(dir, "system.squashfs");
  const key = join(dir, "key");
  await writeImage(image);
  run([CONTROLLER, "keygen", key]);
  run([CONTROLLER, "publish", "--repo", path, "--channel", CHANNEL, "--version", "1.0", "--image", image, "--key", `${key}.secret`]);
  const manifestUrl = `channels/${CHANNEL}/manifest.json`;
  const manifest = JSON.parse(await readFile(join(path, manifestUrl), "utf8")) as { image: { url: string; size: number } };
  if (manifest.image.size !== IMAGE_SIZE) throw new Error(`Cannot use the published repository: its image has ${manifest.image.size} bytes, not ${IMAGE_SIZE}`);
  return { path, manifestUrl, imageUrl: manifest.image.url, imageFile: join(path, manifest.image.url) };
}

/**
 * The nginx configuration measured, as docs/serving.md shows it: the README's
 * production server block (without TLS: the load is on 127.0.0.1) in an
 * nginx.conf of its own. Only the paths and the port are the bench's.
 */
function nginxConfig(dir: string, repo: string, port: number): string {
  return `worker_processes auto;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;

events {
    # the default, 512 per worker (768 in Debian's nginx.conf), is below 1000 clients when most land on one worker
    worker_connections 4096;
}

http {
    access_log ${dir}/nginx-access.log;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
    default_type application/octet-stream;
    types {
        application/json json;
        text/plain sig toml pub;
    }
    tcp_nopush on;

    server {
        listen 127.0.0.1:${port};

        root ${repo};
        autoindex off;
        sendfile on;
        # Range, If-Range, ETag and Last-Modified work for static files as they are
        max_ranges 1;

        # only the repository's own files (not a publish's temporary names, not a key put there by mistake)
        location / {
            return 404;
        }
        # replaced by every publish: caches must ask again (ETag) every time
        location ~ "^/channels/[a-z0-9][a-z0-9._-]{0,63}/manifest\\.json$" {
            expires -1;
        }
        # named by the sha512 of their content, so a name never changes meaning: cache for good
        location ~ "^/(images/[0-9a-f]{128}\\.squashfs|config/[0-9a-f]{128}\\.toml|channels/[a-z0-9][a-z0-9._-]{0,63}/signatures/[0-9a-f]{128}\\.sig)$" {
            add_header Cache-Control "public, max-age=31536000, immutable";
        }
    }
}
`;
}

interface Server {
  readonly name: string;
  readonly url: string;
  readonly process: Subprocess;
  readonly command: readonly string[];
}

/** Waits until the server answers the manifest, or says why it did not. */
async function waitUntilServing(server: Server, manifestUrl: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (server.process.exitCode !== null) {
      throw new Error(`Cannot start ${server.name}: ${server.command.join(" ")} exited with status ${server.process.exitCode}`);
    }
    try {
      if ((await fetch(new URL(manifestUrl, server.url))).ok) return;
    } catch {
      // not listening yet
    }
    await Bun.sleep(100);
  }
  throw new Error(`Cannot start ${server.name}: ${server.command.join(" ")} did not answer ${manifestUrl} within 10 s`);
}

async function startServe(dir: string, repo: Repository): Promise<Server> {
  const port = await freePort();
  const command = withOpenFiles([CONTROLLER, "serve", "--repo", repo.path, "--port", String(port)]);
  // the access log goes to a file, as nginx's does: both servers write one line per request
  const log = Bun.file(join(dir, "serve-access.log"));
  const server = { name: "controller serve", url: `http://127.0.0.1:${port}/`, command, process: spawn(command, { stdout: log, stderr: "inherit" }) };
  await waitUntilServing(server, repo.manifestUrl);
  return server;
}

async function startNginx(dir: string, repo: Repository): Promise<Server> {
  const port = await freePort();
  const config = join(dir, "nginx.conf");
  await writeFile(config, nginxConfig(dir, repo.path, port));
  // started by root, nginx's workers run as nobody: they must be able to reach the repository
  await chmod(dir, 0o755);
  // -e: the log nginx writes to before it has read the config; "daemon off" keeps the master this bench's child
  const command = withOpenFiles(["nginx", "-c", config, "-p", dir, "-e", join(dir, "nginx-error.log"), "-g", "daemon off;"]);
  const server = { name: "nginx", url: `http://127.0.0.1:${port}/`, command, process: spawn(command, { stdout: "ignore", stderr: "inherit" }) };
  await waitUntilServing(server, repo.manifestUrl);
  return server;
}

/** Before any load: the manifest and a range of the image come back byte for byte. */
async function verifyServer(server: Server, repo: Repository): Promise<void> {
  const manifest = await readFile(join(repo.path, repo.manifestUrl));
  const gotManifest = Buffer.from(await (await fetch(new URL(repo.manifestUrl, server.url))).arrayBuffer());
  if (!gotManifest.equals(manifest)) throw new Error(`Cannot measure ${server.name}: the manifest it serves differs from the file`);
  const image = await readFile(repo.imageFile);
  const start = 12_345_678;
  const end = start + RANGE_SIZE - 1;
  const response = await fetch(new URL(repo.imageUrl, server.url), { headers: { Range: `bytes=${start}-${end}` } });
  const body = Buffer.from(await response.arrayBuffer());
  if (response.status !== 206 || !body.equals(image.subarray(start, end + 1))) {
    throw new Error(`Cannot measure ${server.name}: Range bytes=${start}-${end} of the image is status ${response.status} with ${body.length} bytes that differ from the file's`);
  }
}

/** What the clients ask for: what a fleet's boot check asks, and that mixed with image downloads. */
const MIXES = {
  manifest: "the manifest only",
  mixed: "every other request the manifest, the others a 1 MiB Range at a random offset of the image",
} as const;
type Mix = keyof typeof MIXES;

/** wrk's requests, the mix named by the script's argument; done() prints the figures as one JSON line. */
function wrkScript(repo: Repository): string {
  return `local image_size = ${IMAGE_SIZE}
local range_size = ${RANGE_SIZE}
local counter = 0
local threads = 0
local ranges = false

-- each thread its own offsets
function setup(thread)
  threads = threads + 1
  thread:set("seed", os.time() * 100 + threads)
end

function init(args)
  math.randomseed(seed)
  ranges = args[1] == "mixed"
end

function request()
  counter = counter + 1
  if not ranges or counter % 2 == 1 then
    return wrk.format("GET", "/${repo.manifestUrl}")
  end
  local start = math.random(0, image_size - range_size)
  return wrk.format("GET", "/${repo.imageUrl}", { Range = "bytes=" .. start .. "-" .. (start + range_size - 1) })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,"status_errors":%d,"socket_errors":%d}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
`;
}

interface Figures {
  readonly requestsPerSecond: number;
  readonly mibPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly statusErrors: number;
  readonly socketErrors: number;
}

function load(server: Server, script: string, mix: Mix, clients: number, seconds: number): Figures {
  const command = withOpenFiles([
    "wrk",
    "-t",
    String(Math.min(WRK_THREADS, clients)),
    "-c",
    String(clients),
    "-d",
    `${seconds}s`,
    "--timeout",
    `${TIMEOUT_SECONDS}s`,
    "-s",
    script,
    server.url,
    "--",
    mix,
  ]);
  const { stdout } = run(command);
  const line = stdout.split("\n").find((text) => text.startsWith("RESULT "));
  if (line === undefined) throw new Error(`Cannot read the figures of ${command.join(" ")}: no RESULT line in\n${stdout}`);
  const result = JSON.parse(line.slice("RESULT ".length)) as Record<string, number>;
  const value = (name: string): number => result[name] ?? Number.NaN;
  const duration = value("duration_us") / 1e6;
  return {
    requestsPerSecond: value("requests") / duration,
    mibPerSecond: value("bytes") / MiB / duration,
    p50Ms: value("p50_us") / 1000,
    p99Ms: value("p99_us") / 1000,
    statusErrors: value("status_errors"),
    socketErrors: value("socket_errors"),
  };
}

/** The 1-minute load average: the machine is shared, and figures taken under load say so. */
async function loadAverage(): Promise<string> {
  return (await readFile("/proc/loadavg", "utf8")).split(" ")[0] ?? "?";
}

function row(mix: Mix, clients: number, server: Server, figures: Figures): string[] {
  return [
    mix,
    String(clients),
    server.name,
    fixed(figures.requestsPerSecond, 0),
    fixed(figures.mibPerSecond, 0),
    fixed(figures.p50Ms, 1),
    fixed(figures.p99Ms, 1),
    `${figures.statusErrors} + ${figures.socketErrors}`,
  ];
}

/**
 * Every cell for every server, the servers taking turns cell by cell (both
 * listen all along; the idle one costs nothing), so a change in what else
 * runs on the machine falls on both rather than on whichever went last.
 */
function measure(servers: readonly Server[], script: string): string[][] {
  for (const server of servers) {
    progress(`${server.name}: warm-up, ${WARMUP_SECONDS} s`);
    load(server, script, "mixed", CLIENTS[0], WARMUP_SECONDS);
  }
  const rows: string[][] = [];
  for (const mix of Object.keys(MIXES) as Mix[]) {
    for (const clients of CLIENTS) {
      for (const server of servers) {
        progress(`${server.name}: ${mix}, ${clients} clients, ${DURATION_SECONDS} s`);
        const figures = load(server, script, mix, clients, DURATION_SECONDS);
        progress(`${server.name}: ${mix}, ${clients} clients: ${JSON.stringify(figures)}`);
        rows.push(row(mix, clients, server, figures));
      }
    }
  }
  return rows;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "bench-serve-"));
  const servers: Server[] = [];
  try {
    const nginxVersion = debianVersion("nginx");
    const wrkVersion = debianVersion("wrk");
    progress(`publishing a ${IMAGE_SIZE / MiB} MiB image into ${dir}`);
    const repo = await publishRepository(dir);
    const script = join(dir, "requests.lua");
    await writeFile(script, wrkScript(repo));
    servers.push(await startServe(dir, repo));
    servers.push(await startNginx(dir, repo));
    for (const server of servers) await verifyServer(server, repo);
    const loadBefore = await loadAverage();
    const rows = measure(servers, script);
    const loadAfter = await loadAverage();
    process.stdout.write(`## Fleet serving

One repository published by \`controller publish\` (channel \`${CHANNEL}\`, one ${IMAGE_SIZE / MiB} MiB image of random
bytes), served on 127.0.0.1 by \`dist/controller serve\` and by Debian's nginx ${nginxVersion} (the README's
server block in the nginx.conf shown in docs/serving.md: worker_processes auto, sendfile on; both servers write an
access log to a file). The load generator, wrk ${wrkVersion} with ${WRK_THREADS} threads on the same machine, keeps N
connections busy for ${DURATION_SECONDS} s per row (after a ${WARMUP_SECONDS} s warm-up; the servers take turns row by row) with one of two
request mixes: ${Object.entries(MIXES).map(([name, text]) => `\`${name}\`, ${text}`).join("; ")}. A range and the
manifest were checked byte for byte against the files before the load. Latency is per request, over both kinds;
errors are responses other than 200/206 + socket errors (connect, read, write, and no answer within ${TIMEOUT_SECONDS} s). The
machine was shared: its 1-minute load average was ${loadBefore} before and ${loadAfter} after.

${table(["requests", "clients", "server", "requests/s", "MiB/s", "p50 ms", "p99 ms", "errors"], rows)}
`);
  } finally {
    for (const server of servers) server.process.kill("SIGTERM");
    await Promise.all(servers.map((server) => server.process.exited));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
