// GET over HTTP/1.1 on a socket of its own (Bun.connect), for the System
// port: manifests, config files and GiB images. Not bun's fetch: it reads the
// socket on a thread of its own, copies each piece into the body's buffer and
// again into a new array for JavaScript, 64 KiB at a time; a 1 GiB image from
// 127.0.0.1 cost 0.65 CPU s to receive that way, against 0.35 s here, where
// each read of the socket (up to 512 KiB) reaches the install as it came
// (bench/RESULTS.md, "Install throughput and memory"). Not undici either: an
// image's body read through undici's parser left its received buffers for the
// garbage collector, and the install's memory grew with the image.
//
// What a client must do is done here: only http: and https: URLs, first hop
// and every redirect (a server's `Location: file:///…` must not have the
// controller read a local file), and no https: hop redirected to plain http:
// unless config.d allows it; a time limit for connecting and answering, and
// another for each wait for more of the body (a server that stalls mid-image
// must not hold the boot); a deadline for the whole request (a server that
// trickles a byte at a time must not either); a cap on redirects and on the
// size of an answer's headers; https checked against the configured CA
// bundle only, and the certificate's name against the URL's host; the body
// as sent, never decompressed, because its bytes are what the manifest signs;
// a body that ends before its Content-Length or its last chunk is a broken
// connection, never a short file; and one connection per request
// (`Connection: close`), so nothing a server sends past an answer reaches
// another request.

import type { Socket } from "bun";
import { readFile } from "node:fs/promises";
import { type HttpDeadline, HttpRefusal, type HttpRequestOptions, type HttpResponse } from "./system.ts";

/** Object storage and CDNs answer with redirects; a few are plenty, and every hop is still hashed and verified. */
const MAX_REDIRECTS = 3;

/** An answer's status line and headers (interim 100 Continues and a chunked body's trailers included) at most: what a server can make the controller hold before the body. */
const MAX_HEAD_BYTES = 64 * 1024;

/** A chunked body's size line (the size in hex and any extensions) at most. */
const MAX_CHUNK_LINE_BYTES = 4096;

/** Body bytes received but not yet taken at most: above this the socket is not read, so a fast server costs no memory. */
const QUEUE_HIGH_BYTES = 2 << 20;

/** A URL from a server is shown in messages, but not all of a hostile one (headers may be tens of KiB). */
const SHOWN_URL_CHARS = 200;

/** How often the watchdog looks, as a share of the shortest limit it enforces. */
const WATCHDOG_TICKS_PER_LIMIT = 10;

interface RequestState {
  /** when the answer or its body last brought bytes */
  lastByteMs: number;
  /** bytes of the body that came so far */
  bytes: number;
  /** the current window of a "rate" deadline: when it began and the bytes that had come by then */
  windowStartMs: number;
  windowStartBytes: number;
  /** the body was read to its end */
  ended: boolean;
}

/** A connection or body wait that took longer than the request's time limit, or a request past its deadline. */
class HttpTimeout extends Error {}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

function kib(bytes: number): string {
  return `${Math.round((bytes / 1024) * 10) / 10} KiB`;
}

function shown(url: string): string {
  return url.length <= SHOWN_URL_CHARS ? url : `${url.slice(0, SHOWN_URL_CHARS)}…`;
}

/** A socket's errors carry their code (ECONNREFUSED, ECONNRESET); a message without it would say less. */
function describeError(error: unknown): string {
  if (error instanceof HttpTimeout) return error.message;
  const { code, message } = error as { code?: string; message?: string };
  return code === undefined || message?.includes(code) === true ? (message ?? String(error)) : `${message} (${code})`;
}

/**
 * Pure: why a request that began at `startedMs` must end at `nowMs` under its
 * deadline, or undefined while it may go on. A "rate" deadline looks at the
 * window that began at state.windowStartMs; the caller starts the next window
 * once a whole one has passed.
 */
export function deadlineProblem(
  url: string,
  deadline: HttpDeadline,
  startedMs: number,
  state: Pick<RequestState, "bytes" | "windowStartMs" | "windowStartBytes">,
  nowMs: number,
): string | undefined {
  if (deadline.kind === "total") {
    if (nowMs - startedMs <= deadline.totalMs) return undefined;
    return `deadline: ${url} did not finish within ${seconds(deadline.totalMs)} (timeouts.request_seconds)`;
  }
  if (nowMs - state.windowStartMs < deadline.windowMs) return undefined;
  const brought = state.bytes - state.windowStartBytes;
  if (brought >= (deadline.minBytesPerSecond * deadline.windowMs) / 1000) return undefined;
  return (
    `too slow: ${url} brought ${kib(brought)} in ${seconds(deadline.windowMs)}, less than the ${kib(deadline.minBytesPerSecond)}/s it must average ` +
    `over every ${seconds(deadline.windowMs)} (timeouts.image_min_kib_per_second, timeouts.image_window_seconds)`
  );
}

/** The protocols the controller requests; everything else fetch knows (file:, data:, blob:, s3:) is local or not a server's. */
function isHttp(url: URL): boolean {
  return url.protocol === "http:" || url.protocol === "https:";
}

/** The first URL of a request, refused unless http: or https:. */
function firstHop(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HttpRefusal(`${shown(url)} is not a URL; expected an http:// or https:// URL`);
  }
  if (!isHttp(parsed)) throw new HttpRefusal(`${shown(url)} is not an http:// or https:// URL (its scheme is ${parsed.protocol}); only those are fetched`);
  return parsed;
}

/** Where a redirect from `from` leads, refused unless it is http: or https:, and not plain http: after https: unless allowed. */
function nextHop(from: URL, location: string, allowRedirectToHttp: boolean): URL {
  let target: URL;
  try {
    target = new URL(location, from);
  } catch {
    throw new HttpRefusal(`${from.href} redirected to ${JSON.stringify(shown(location))}, which is not a URL`);
  }
  if (!isHttp(target)) {
    throw new HttpRefusal(`${from.href} redirected to ${shown(target.href)}: refused, only http:// and https:// URLs are followed (its scheme is ${target.protocol})`);
  }
  if (from.protocol === "https:" && target.protocol === "http:" && !allowRedirectToHttp) {
    throw new HttpRefusal(`${from.href} redirected to ${shown(target.href)}: refused, an https:// URL is not followed to plain http:// unless update.allow_redirect_to_http is true`);
  }
  return target;
}

function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
}

async function readCaBundle(url: string, caBundle: string): Promise<string> {
  try {
    return await readFile(caBundle, "utf8");
  } catch (error) {
    throw new Error(`Cannot check the certificate of ${url}: the CA bundle ${caBundle} (update.ca_bundle) cannot be read: ${(error as Error).message}`);
  }
}

/** The status line and headers a server has answered with. */
interface Head {
  readonly status: number;
  /** header names in lowercase; a header sent twice has its values joined by ", " */
  readonly headers: Record<string, string>;
}

/** How a body ends: after Content-Length bytes, after its last chunk, or when the server closes the connection. */
type Framing = { readonly kind: "length"; left: number } | { readonly kind: "chunked" } | { readonly kind: "close" };

/** Where a chunked body's parser is: in a size line, in a chunk's data, at the CRLF after it, or in the trailers after the last. */
type ChunkState = { kind: "size"; line: string } | { kind: "data"; left: number } | { kind: "crlf"; seen: string } | { kind: "trailers"; line: string; bytes: number };

const CRLF_CRLF = Buffer.from("\r\n\r\n");
/** "HTTP/1.1 ": how every answer begins */
const STATUS_PREFIX_BYTES = 9;

/** The status line and headers of one answer, or why they are not HTTP/1.x. */
export function parseHead(text: string): Head {
  const [statusLine = "", ...lines] = text.split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (status === null) throw new Error(`the server did not answer in HTTP/1.1: its answer begins ${JSON.stringify(statusLine.slice(0, 40))}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    if (colon < 1 || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw new Error(`the server sent a header line that is not one: ${JSON.stringify(line.slice(0, 40))}`);
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(status[1]), headers };
}

/** How the body of an answer to a GET ends (RFC 9112, 6.3); a Content-Length that is not one number is refused. */
export function framingOf(head: Head): Framing {
  if (head.status === 204 || head.status === 304) return { kind: "length", left: 0 };
  const encoding = head.headers["transfer-encoding"];
  if (encoding !== undefined) return encoding.split(",").at(-1)?.trim().toLowerCase() === "chunked" ? { kind: "chunked" } : { kind: "close" };
  const length = head.headers["content-length"];
  if (length === undefined) return { kind: "close" };
  const values = new Set(length.split(",").map((value) => value.trim()));
  const [only] = values;
  if (values.size !== 1 || only === undefined || !/^\d{1,15}$/.test(only)) throw new Error(`the server sent Content-Length ${JSON.stringify(length.slice(0, 40))}, expected one number of bytes`);
  return { kind: "length", left: Number(only) };
}

/**
 * One GET on a connection of its own: the answer's head, then its body as the
 * socket brings it, each piece as it came (no copy), decoded from chunked
 * encoding when sent so. Reading stops while QUEUE_HIGH_BYTES of the body wait
 * to be taken, so a fast server costs no memory.
 */
class Exchange {
  private socket: Socket | undefined;
  private headBytes: Buffer = Buffer.alloc(0);
  private headTotal = 0;
  private framing: Framing | undefined;
  private chunk: ChunkState = { kind: "size", line: "" };
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private complete = false;
  private discarded = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private headReady!: (head: Head) => void;
  private headFailed!: (error: Error) => void;
  /** the final answer's head (interim 1xx answers are passed over) */
  readonly head = new Promise<Head>((resolve, reject) => {
    this.headReady = resolve;
    this.headFailed = reject;
  });
  /** body bytes that came so far */
  received = 0;

  constructor(private readonly url: URL, private readonly request: string) {
    this.head.catch(() => {});
  }

  async connect(caBundle: string | undefined): Promise<void> {
    const secure = caBundle !== undefined;
    const socket = await Bun.connect({
      // an IPv6 address comes in brackets in a URL, without them to connect
      hostname: this.url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: Number(this.url.port || (secure ? 443 : 80)),
      ...(secure ? { tls: { ca: caBundle } } : {}),
      socket: {
        open: (opened) => {
          // over https the request waits until the certificate is checked
          if (!secure) opened.write(this.request);
        },
        handshake: (shaken, _authorized, problem) => {
          if (problem !== null) {
            this.fail(new Error(`the certificate of ${this.url.origin} is not trusted: ${describeError(problem)} (checked against update.ca_bundle)`));
            return;
          }
          shaken.write(this.request);
        },
        data: (_socket, data) => this.received_(data),
        error: (_socket, error) => this.fail(error),
        close: () => this.closed(),
      },
    });
    this.socket = socket;
    if (this.failure !== undefined || this.complete) socket.end();
  }

  /** Why the exchange ends now: the socket closes and every wait ends. */
  fail(error: Error): void {
    this.failure ??= error;
    this.headFailed(this.failure);
    this.socket?.end();
    this.wakeUp();
  }

  /** Stop reading: what the server still sends is not wanted. */
  close(): void {
    this.discarded = true;
    this.socket?.end();
    this.wakeUp();
  }

  /** The body as it comes; throws when the connection broke before its end. */
  async *body(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = this.queue.shift();
      if (next !== undefined) {
        this.queued -= next.length;
        if (this.queued < QUEUE_HIGH_BYTES) this.socket?.resume();
        yield next;
      } else if (this.failure !== undefined) {
        throw this.failure;
      } else if (this.complete || this.discarded) {
        return;
      } else {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    }
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private received_(data: Uint8Array): void {
    if (this.failure !== undefined || this.complete || this.discarded) return;
    try {
      if (this.framing === undefined) this.readHead(data);
      else this.readBody(data);
    } catch (error) {
      this.fail(error as Error);
      return;
    }
    if (this.queued >= QUEUE_HIGH_BYTES) this.socket?.pause();
    this.wakeUp();
  }

  private readHead(data: Uint8Array): void {
    this.headBytes = this.headBytes.length === 0 ? Buffer.from(data.buffer, data.byteOffset, data.length) : Buffer.concat([this.headBytes, data]);
    for (;;) {
      // something that is not HTTP is refused at its first bytes, not when it ends
      const start = this.headBytes.subarray(0, STATUS_PREFIX_BYTES).toString("latin1");
      if (!"HTTP/1.1 ".startsWith(start) && !"HTTP/1.0 ".startsWith(start)) parseHead(start);
      const end = this.headBytes.indexOf(CRLF_CRLF);
      if (end < 0) {
        if (this.headTotal + this.headBytes.length > MAX_HEAD_BYTES) throw new Error(`the server's headers are larger than ${kib(MAX_HEAD_BYTES)}`);
        return;
      }
      this.headTotal += end + CRLF_CRLF.length;
      if (this.headTotal > MAX_HEAD_BYTES) throw new Error(`the server's headers are larger than ${kib(MAX_HEAD_BYTES)}`);
      const head = parseHead(this.headBytes.subarray(0, end).toString("latin1"));
      const rest = this.headBytes.subarray(end + CRLF_CRLF.length);
      // 100 Continue and other interim answers precede the answer itself; their bytes count against the same cap
      if (head.status >= 100 && head.status < 200) {
        this.headBytes = rest;
        continue;
      }
      this.headBytes = Buffer.alloc(0);
      this.framing = framingOf(head);
      this.headReady(head);
      if (this.framing.kind === "length" && this.framing.left === 0) this.complete = true;
      if (rest.length > 0) this.readBody(rest);
      return;
    }
  }

  private readBody(data: Uint8Array): void {
    const framing = this.framing as Framing;
    if (framing.kind === "close") {
      this.take(data);
    } else if (framing.kind === "length") {
      const piece = data.length <= framing.left ? data : data.subarray(0, framing.left);
      framing.left -= piece.length;
      this.take(piece);
      if (framing.left === 0) {
        // whatever follows the announced bytes is not this answer's
        this.complete = true;
        this.socket?.end();
      }
    } else {
      this.readChunked(data);
    }
  }

  private take(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.queue.push(piece);
    this.queued += piece.length;
    this.received += piece.length;
  }

  /** Chunked transfer coding (RFC 9112, 7.1): size lines in hex, each chunk's data, a CRLF after it, a last chunk of 0 and trailers. */
  private readChunked(data: Uint8Array): void {
    for (let at = 0; at < data.length && !this.complete; ) {
      const state = this.chunk;
      if (state.kind === "data") {
        const piece = data.subarray(at, at + state.left);
        state.left -= piece.length;
        at += piece.length;
        this.take(piece);
        if (state.left === 0) this.chunk = { kind: "crlf", seen: "" };
        continue;
      }
      const byte = String.fromCharCode(data[at++] as number);
      if (state.kind === "crlf") {
        state.seen += byte;
        if (!"\r\n".startsWith(state.seen)) throw new Error("the server's chunked body is broken: a chunk's data is not followed by CRLF");
        if (state.seen === "\r\n") this.chunk = { kind: "size", line: "" };
      } else if (state.kind === "size") {
        state.line += byte;
        if (state.line.length > MAX_CHUNK_LINE_BYTES) throw new Error(`the server's chunked body is broken: a chunk size line is longer than ${MAX_CHUNK_LINE_BYTES} bytes`);
        if (!state.line.endsWith("\r\n")) continue;
        const size = /^([0-9a-fA-F]{1,12})(?:[ \t]*;.*)?\r\n$/.exec(state.line);
        if (size === null) throw new Error(`the server's chunked body is broken: ${JSON.stringify(state.line.slice(0, 40))} is not a chunk size`);
        const left = Number.parseInt(size[1] as string, 16);
        this.chunk = left === 0 ? { kind: "trailers", line: "", bytes: 0 } : { kind: "data", left };
      } else {
        state.line += byte;
        state.bytes++;
        if (this.headTotal + state.bytes > MAX_HEAD_BYTES) throw new Error(`the server's headers are larger than ${kib(MAX_HEAD_BYTES)}`);
        if (!state.line.endsWith("\r\n")) continue;
        if (state.line === "\r\n") {
          this.complete = true;
          this.socket?.end();
        }
        state.line = "";
      }
    }
  }

  private closed(): void {
    if (this.failure === undefined && !this.complete && !this.discarded) {
      if (this.framing === undefined) this.fail(new Error("the server closed the connection without an answer"));
      else if (this.framing.kind === "close") this.complete = true;
      else this.fail(new Error(`the server closed the connection after ${this.received} bytes of the body, before its end`));
    }
    this.headFailed(new Error("the server closed the connection without an answer"));
    this.wakeUp();
  }
}

/** The request's bytes: a GET on a connection of its own, for the body as sent. */
function requestFor(url: URL, fromByte: number | undefined, toByte: number | undefined): string {
  const from = fromByte ?? 0;
  const range = from > 0 || toByte !== undefined ? `range: bytes=${from}-${toByte ?? ""}\r\n` : "";
  return `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\nuser-agent: controller\r\naccept-encoding: identity\r\n${range}connection: close\r\n\r\n`;
}

/** One request, up to MAX_REDIRECTS redirects followed by hand (each hop checked, keeping the Range and getting its own CA check); the body is left unread. */
async function requestFollowing(url: string, options: HttpRequestOptions, signal: AbortSignal): Promise<{ exchange: Exchange; head: Head }> {
  let current = firstHop(url);
  for (let redirects = 0; ; redirects++) {
    const ca = current.protocol === "https:" ? await readCaBundle(current.href, options.caBundle) : undefined;
    const exchange = new Exchange(current, requestFor(current, options.fromByte, options.toByte));
    const stop = () => exchange.fail(signal.reason as Error);
    signal.addEventListener("abort", stop, { once: true });
    await exchange.connect(ca);
    const head = await exchange.head;
    const location = head.headers["location"];
    if (head.status < 300 || head.status >= 400 || location === undefined) return { exchange, head };
    signal.removeEventListener("abort", stop);
    exchange.close();
    if (redirects === MAX_REDIRECTS) throw new HttpRefusal(`${url} redirected more than ${MAX_REDIRECTS} times`);
    current = nextHop(current, location, options.allowRedirectToHttp);
  }
}

/** The body as it arrives; throws when the watchdog aborted the request, or when the connection breaks. */
async function* bodyOf(exchange: Exchange, abort: AbortController, state: RequestState, stopWatchdog: () => void): AsyncGenerator<Uint8Array> {
  try {
    for await (const piece of exchange.body()) {
      state.lastByteMs = performance.now();
      state.bytes += piece.length;
      yield piece;
    }
    state.ended = true;
  } catch (error) {
    throw new Error(describeError(abort.signal.reason ?? error));
  } finally {
    stopWatchdog();
    exchange.close();
  }
}

export async function httpGet(url: string, options: HttpRequestOptions): Promise<HttpResponse> {
  const abort = new AbortController();
  const startedMs = performance.now();
  const state: RequestState = { lastByteMs: startedMs, bytes: 0, windowStartMs: startedMs, windowStartBytes: 0, ended: false };
  let silence = "no answer came from";
  const { deadline } = options;
  const shortestLimitMs = Math.min(options.timeoutMs, deadline.kind === "total" ? deadline.totalMs : deadline.windowMs);
  // one timer per request, not one per body piece: a GiB image arrives in thousands of them
  const watchdog = setInterval(
    () => {
      const now = performance.now();
      if (now - state.lastByteMs > options.timeoutMs) {
        abort.abort(new HttpTimeout(`timeout: ${silence} ${url} for ${seconds(options.timeoutMs)} (timeouts.server_seconds)`));
        return;
      }
      const problem = deadlineProblem(url, deadline, startedMs, state, now);
      if (problem !== undefined) {
        abort.abort(new HttpTimeout(problem));
      } else if (deadline.kind === "rate" && now - state.windowStartMs >= deadline.windowMs) {
        state.windowStartMs = now;
        state.windowStartBytes = state.bytes;
      }
    },
    Math.max(shortestLimitMs / WATCHDOG_TICKS_PER_LIMIT, 10),
  );
  let answer: { exchange: Exchange; head: Head };
  try {
    // a connection attempt to a host that drops packets may not give up when told to: the boot does not wait for it
    const answered = requestFollowing(url, options, abort.signal);
    answered.catch(() => {});
    answer = await Promise.race([answered, whenAborted(abort.signal)]);
  } catch (error) {
    clearInterval(watchdog);
    if (error instanceof HttpRefusal) throw error;
    throw new Error(describeError(abort.signal.reason ?? error));
  }
  silence = "no more of the body came from";
  state.lastByteMs = performance.now();
  const { exchange, head } = answer;
  return {
    status: head.status,
    headers: head.headers,
    body: bodyOf(exchange, abort, state, () => clearInterval(watchdog)),
    discard: async () => {
      clearInterval(watchdog);
      // a body left unread (a 404's, or an image refused half-way) closes its connection
      exchange.close();
    },
  };
}
