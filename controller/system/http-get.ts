// GET over bun's own fetch, for the System port: manifests, config files and
// GiB images. Not undici: an image's body read through undici's parser left
// its received buffers for the garbage collector, and the install's memory
// grew with the image (130 MiB at 256 MiB, 167 MiB at 4 GiB); bun's fetch
// hands the body over from native code and stays flat (bench/RESULTS.md).
//
// What fetch does not do itself is done here: only http: and https: URLs,
// first hop and every redirect (bun's fetch also reads file:, data:, blob: and
// s3: URLs, and a server's `Location: file:///…` would have the controller
// read a local file as if the server had sent it), and no https: hop
// redirected to plain http: unless config.d allows it; a time limit for
// connecting and answering, and another for each wait for more of the body (a
// server that stalls mid-image must not hold the boot); a deadline for the
// whole request (a server that trickles a byte at a time must not either); a
// cap on redirects; https checked against the configured CA bundle only; the
// body as sent, never decompressed, because its bytes are what the manifest
// signs.

import { readFile } from "node:fs/promises";
import { type HttpDeadline, HttpRefusal, type HttpRequestOptions, type HttpResponse } from "./system.ts";

/** Object storage and CDNs answer with redirects; a few are plenty, and every hop is still hashed and verified. */
const MAX_REDIRECTS = 3;

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

/** fetch's own errors say little ("Unable to connect…"); its code says what happened: ConnectionRefused, UNABLE_TO_VERIFY_LEAF_SIGNATURE. */
function describeFetchError(error: unknown): string {
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

/** One request, up to MAX_REDIRECTS redirects followed by hand (each hop checked, keeping the Range and getting its own CA check); the body is left unread. */
async function fetchFollowing(url: string, options: HttpRequestOptions, signal: AbortSignal): Promise<Response> {
  let current = firstHop(url);
  for (let redirects = 0; ; redirects++) {
    const headers: Record<string, string> = { "user-agent": "controller", "accept-encoding": "identity" };
    if (options.fromByte !== undefined && options.fromByte > 0) headers["range"] = `bytes=${options.fromByte}-`;
    const ca = current.protocol === "https:" ? await readCaBundle(current.href, options.caBundle) : undefined;
    const response = await fetch(current.href, {
      headers,
      signal,
      redirect: "manual",
      decompress: false,
      ...(ca === undefined ? {} : { tls: { ca } }),
    });
    const location = response.headers.get("location");
    if (response.status < 300 || response.status >= 400 || location === null) return response;
    await response.body?.cancel();
    if (redirects === MAX_REDIRECTS) throw new HttpRefusal(`${url} redirected more than ${MAX_REDIRECTS} times`);
    current = nextHop(current, location, options.allowRedirectToHttp);
  }
}

/** The body as it arrives; throws when the watchdog aborted the request, or when the connection breaks. */
async function* bodyOf(response: Response, abort: AbortController, state: RequestState, stopWatchdog: () => void): AsyncGenerator<Uint8Array> {
  try {
    if (response.body === null) return;
    const reader = response.body.getReader();
    try {
      for (;;) {
        const next = await reader.read().catch((error: unknown) => {
          throw new Error(describeFetchError(abort.signal.reason ?? error));
        });
        if (next.done) {
          state.ended = true;
          return;
        }
        state.lastByteMs = performance.now();
        state.bytes += next.value.length;
        yield next.value;
      }
    } finally {
      reader.releaseLock();
    }
  } finally {
    stopWatchdog();
  }
}

export async function httpGet(url: string, options: HttpRequestOptions): Promise<HttpResponse> {
  const abort = new AbortController();
  const startedMs = performance.now();
  const state: RequestState = { lastByteMs: startedMs, bytes: 0, windowStartMs: startedMs, windowStartBytes: 0, ended: false };
  let silence = "no answer came from";
  const { deadline } = options;
  const shortestLimitMs = Math.min(options.timeoutMs, deadline.kind === "total" ? deadline.totalMs : deadline.windowMs);
  // one timer per request, not one per body piece: a GiB image arrives in tens of thousands of them
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
  let response: Response;
  try {
    // fetch may not give up a connection attempt when told to (seen with a host that drops packets): the boot does not wait for it
    const answer = fetchFollowing(url, options, abort.signal);
    answer.catch(() => {});
    response = await Promise.race([answer, whenAborted(abort.signal)]);
  } catch (error) {
    clearInterval(watchdog);
    if (error instanceof HttpRefusal) throw error;
    throw new Error(describeFetchError(abort.signal.reason ?? error));
  }
  silence = "no more of the body came from";
  state.lastByteMs = performance.now();
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name.toLowerCase()] = value;
  });
  return {
    status: response.status,
    headers,
    body: bodyOf(response, abort, state, () => clearInterval(watchdog)),
    discard: async () => {
      clearInterval(watchdog);
      if (state.ended) return;
      // a body left unread (a 404's, or an image refused half-way) closes its connection
      abort.abort(new Error(`${url}: the rest of the body was not wanted`));
      await response.body?.cancel().catch(() => {});
    },
  };
}
