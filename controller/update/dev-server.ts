// `controller serve`: a development update server. It serves an update
// repository folder (channels/, images/, config/) as plain static files, the
// way nginx would in production, so the controller's downloads (conditional
// requests, resumed Range requests) can be tried against a laptop or a QEMU
// host without setting up a web server. It knows nothing about manifests:
// the controller verifies everything it downloads, so the server only has to
// hand out bytes and must never hand out a file outside the repository.

import { realpathSync, statSync } from "node:fs";
import { join, sep } from "node:path";

/** How the handler learns the client's address; Bun.serve passes its server as the fetch handler's second argument. */
export interface PeerAddresses {
  requestIP(request: Request): { address: string } | null;
}

/** A fetch handler as Bun.serve calls it; `wrap` may put one in front of another (tests use it to drop connections). */
export type RepoHandler = (request: Request, server?: PeerAddresses) => Promise<Response>;

const ALLOW = "GET, HEAD";

const TEXT_EXTENSIONS = [".sig", ".toml", ".pub"];

// A client that stops reading (a guest under TCG writing the image to disk)
// keeps its connection for this long; Bun.serve allows at most 255 s, and a
// development server has few clients, so the longest is the cheapest choice.
const IDLE_TIMEOUT_SECONDS = 255;

function contentType(path: string): string {
  if (path.endsWith(".json")) return "application/json";
  if (TEXT_EXTENSIONS.some((extension) => path.endsWith(extension))) return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

/** What a request path names: a file path inside the repository, or why it names nothing there. */
type Target = { kind: "path"; path: string } | { kind: "refused"; status: 400 | 404 };

/**
 * Maps the URL path to a path under `root` (already a real path). Bun has
 * removed "." and ".." segments from the URL by now, but percent-encoded
 * slashes and dots only appear after decoding, so the decoded segments are
 * checked again here; symlinks are checked by the caller with realpath.
 */
function targetPath(root: string, pathname: string): Target {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return { kind: "refused", status: 400 }; // "%zz" or percent-encoded bytes that are not UTF-8
  }
  // No file in the repository has a name with NUL or a backslash, and "." or ".." would climb out of it.
  if (decoded.includes("\0") || decoded.includes("\\")) return { kind: "refused", status: 404 };
  const segments = decoded.split("/").filter((segment) => segment !== "");
  if (segments.length === 0 || segments.some((segment) => segment === "." || segment === "..")) return { kind: "refused", status: 404 };
  return { kind: "path", path: join(root, ...segments) };
}

function isInside(root: string, path: string): boolean {
  return path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * The file to send, or null when the path names no regular file inside the
 * repository. The calls are synchronous, as nginx's are: on a local folder
 * they take microseconds, and their promise versions spent more than that
 * hopping to a thread pool and back (bench/serve.ts: 5,700 against 9,800
 * manifest requests a second).
 */
function findFile(root: string, path: string): { path: string; size: number; etag: string; modified: Date } | null {
  let real: string;
  try {
    real = realpathSync(path);
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
  // A symlink in the repository may point anywhere; only what it resolves to inside the repository is served.
  // (Someone who can swap a symlink between this check and the read can also write the repository's files,
  // which the controller does not trust anyway: it verifies every byte.)
  if (!isInside(root, real)) return null;
  const info = statSync(real, { bigint: true });
  if (!info.isFile()) return null; // folders are not listed
  // A strong ETag, because If-Range only ever matches a strong one (RFC 9110 13.1.5) and resuming an image
  // download is what If-Range is for. Size and mtime alone are what nginx uses; the inode is added because
  // publishing replaces manifest.json by rename(2) (a new inode) and two publishes of the same size can land
  // within one tick of the kernel's coarse file timestamps.
  const etag = `"${info.ino.toString(16)}-${info.size.toString(16)}-${info.mtimeNs.toString(16)}"`;
  return { path: real, size: Number(info.size), etag, modified: new Date(Number(info.mtimeMs)) };
}

/** Whether a file system error says nothing is at the path: missing, a file where a folder should be, a symlink loop, a name too long. */
export function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP" || code === "ENAMETOOLONG";
}

/** The entity tags in an If-None-Match or If-Range value; "*" stays as it is. */
function entityTags(value: string): string[] {
  if (value.trim() === "*") return ["*"];
  return value.match(/(?:W\/)?"[^"]*"/g) ?? [];
}

function weakMatch(value: string, etag: string): boolean {
  return entityTags(value).some((tag) => tag === "*" || tag.replace(/^W\//, "") === etag);
}

/** HTTP dates have whole seconds, so a file's mtime is compared at that precision. */
function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/** RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since; either can turn the answer into 304. */
function notModified(request: Request, etag: string, modified: Date): boolean {
  const ifNoneMatch = request.headers.get("if-none-match");
  if (ifNoneMatch !== null) return weakMatch(ifNoneMatch, etag);
  const ifModifiedSince = request.headers.get("if-modified-since");
  if (ifModifiedSince === null) return false;
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && seconds(modified) <= Math.floor(since / 1000);
}

/** If-Range: the Range applies only while the file is still the one the client has the start of. */
function ifRangeHolds(value: string, etag: string, modified: Date): boolean {
  const trimmed = value.trim();
  // an entity tag must match strongly: a weak tag never does
  if (trimmed.startsWith('"') || trimmed.startsWith("W/")) return trimmed === etag;
  const date = Date.parse(trimmed);
  return !Number.isNaN(date) && Math.floor(date / 1000) === seconds(modified);
}

type RangeAnswer = { kind: "whole" } | { kind: "part"; start: number; end: number } | { kind: "unsatisfiable" };

/**
 * One `bytes=` range (RFC 9110 14.1.2), clamped to the file. Anything this
 * server does not serve as a part gets the whole file, which RFC 9110 14.2
 * allows: other units, invalid syntax, and several ranges (a client resuming
 * a download asks for one; multipart/byteranges would be code for nobody).
 */
function parseRange(value: string, size: number): RangeAnswer {
  const match = /^bytes=(.*)$/i.exec(value.trim());
  if (match === null) return { kind: "whole" };
  const specs = (match[1] ?? "").split(",").map((spec) => spec.trim()).filter((spec) => spec !== "");
  const [spec] = specs;
  if (spec === undefined || specs.length > 1) return { kind: "whole" };
  const bounds = /^(\d*)-(\d*)$/.exec(spec);
  const first = bounds?.[1] ?? "";
  const last = bounds?.[2] ?? "";
  if (bounds === null || (first === "" && last === "")) return { kind: "whole" };
  if (first === "") {
    // "-n": the last n bytes
    const length = Number(last);
    if (length === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "part", start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  if (last !== "" && Number(last) < start) return { kind: "whole" }; // "5-3" is invalid, not unsatisfiable
  if (start >= size) return { kind: "unsatisfiable" };
  return { kind: "part", start, end: last === "" ? size - 1 : Math.min(Number(last), size - 1) };
}

function textResponse(status: number, text: string, headers: Headers | Record<string, string> = {}): Response {
  const body = new TextEncoder().encode(`${text}\n`);
  const all = new Headers(headers);
  all.set("Content-Type", "text/plain; charset=utf-8");
  // set for the access log, which reads every response's length from it
  all.set("Content-Length", String(body.length));
  return new Response(body, { status, headers: all });
}

/** The response for a file that exists; `file.path` is its real path inside the repository. */
function fileResponse(request: Request, file: { path: string; size: number; etag: string; modified: Date }): Response {
  const headers = new Headers({
    "Accept-Ranges": "bytes",
    ETag: file.etag,
    "Last-Modified": file.modified.toUTCString(),
  });
  if (notModified(request, file.etag, file.modified)) return new Response(null, { status: 304, headers });
  headers.set("Content-Type", contentType(file.path));

  let answer: RangeAnswer = { kind: "whole" };
  const range = request.headers.get("range");
  const ifRange = request.headers.get("if-range");
  // Range is defined for GET only (RFC 9110 14.2): a HEAD gets the headers of the whole file.
  if (request.method === "GET" && range !== null && (ifRange === null || ifRangeHolds(ifRange, file.etag, file.modified))) {
    answer = parseRange(range, file.size);
  }
  if (answer.kind === "unsatisfiable") {
    headers.set("Content-Range", `bytes */${file.size}`);
    return textResponse(416, `Range not satisfiable: ${range} but the file has ${file.size} bytes`, headers);
  }
  const [start, end, status] = answer.kind === "part" ? [answer.start, answer.end, 206] : [0, file.size - 1, 200];
  if (answer.kind === "part") headers.set("Content-Range", `bytes ${start}-${end}/${file.size}`);
  headers.set("Content-Length", String(end + 1 - start));
  if (request.method === "HEAD") return new Response(null, { status, headers });
  // A slice of a Bun.file is sent from the file as the client reads (sendfile), never held in memory.
  // (For application/octet-stream Bun adds `Content-Disposition: filename="NAME"`; clients ignore it.)
  return new Response(Bun.file(file.path).slice(start, end + 1), { status, headers });
}

/**
 * Serves the files under `repo` read-only. Every request ends in one
 * accessLog line:
 *   ADDRESS [ISO TIME] "METHOD PATH" STATUS BYTES DURATIONms
 * BYTES is the length of the body the response was given and DURATION the
 * time until the response was ready: the body then goes out from the file
 * (sendfile) without passing through this code, so a client that hangs up
 * early is not seen here.
 */
export function repoHandler(repo: string, accessLog: (line: string) => void): RepoHandler {
  let root: string;
  try {
    root = realpathSync(repo);
  } catch (error) {
    throw new Error(`Cannot serve ${repo}: ${(error as Error).message}`);
  }
  return async (request, server) => {
    const began = performance.now();
    const url = new URL(request.url);
    let response: Response;
    let failure = "";
    try {
      response = answer(root, request, url);
    } catch (error) {
      // the client learns nothing about the server's folders; the person running it does
      failure = ` (${(error as Error).message})`;
      response = textResponse(500, "Internal server error");
    }
    const bytes = request.method === "HEAD" || response.body === null ? 0 : Number(response.headers.get("content-length") ?? 0);
    const address = server?.requestIP(request)?.address ?? "-";
    const duration = Math.round(performance.now() - began);
    // URL paths are percent-encoded, so a request cannot break the line
    accessLog(`${address} [${new Date().toISOString()}] "${request.method} ${url.pathname}${url.search}" ${response.status} ${bytes} ${duration}ms${failure}`);
    return response;
  };
}

function answer(root: string, request: Request, url: URL): Response {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return textResponse(405, `Method ${request.method} not allowed: this server only reads files`, { Allow: ALLOW });
  }
  const target = targetPath(root, url.pathname);
  if (target.kind === "refused") return textResponse(target.status, target.status === 400 ? "Bad request" : "Not found");
  const file = findFile(root, target.path);
  if (file === null) return textResponse(404, "Not found");
  return fileResponse(request, file);
}

export interface RepoServerOptions {
  repo: string;
  /** 0 picks a free port; the returned `port` is the real one. */
  port: number;
  /** Default 127.0.0.1: a development server is not for the network unless asked. */
  hostname?: string;
  /** Default: lines are dropped. */
  accessLog?: (line: string) => void;
  /** Puts a handler in front of the repository handler (tests drop connections this way). */
  wrap?: (handler: RepoHandler) => RepoHandler;
}

export interface RepoServer {
  port: number;
  /** The base URL to put in `update.servers`, with the trailing slash. */
  url: string;
  /** Stops listening and closes open connections, downloads included. */
  stop(): Promise<void>;
}

export function startRepoServer(options: RepoServerOptions): RepoServer {
  const hostname = options.hostname ?? "127.0.0.1";
  const inner = repoHandler(options.repo, options.accessLog ?? (() => {}));
  const handler = options.wrap === undefined ? inner : options.wrap(inner);
  let server;
  try {
    server = Bun.serve({
      hostname,
      port: options.port,
      idleTimeout: IDLE_TIMEOUT_SECONDS,
      fetch: (request, bunServer) => handler(request, bunServer),
    });
  } catch (error) {
    throw new Error(`Cannot serve ${options.repo} at ${hostname} port ${options.port}: ${(error as Error).message}`);
  }
  const port = server.port ?? options.port;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return { port, url: `http://${host}:${port}/`, stop: () => server.stop(true) };
}
