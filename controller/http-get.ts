// GET over bun's own fetch, for the System port: manifests, config files and
// GiB images. Not undici: an image's body read through undici's parser left
// its received buffers for the garbage collector, and the install's memory
// grew with the image (130 MiB at 256 MiB, 167 MiB at 4 GiB); bun's fetch
// hands the body over from native code and stays flat (bench/RESULTS.md).
//
// What fetch does not do itself is done here: a time limit for connecting
// and answering, and another for each wait for more of the body (a server
// that stalls mid-image must not hold the boot); a cap on redirects; https
// checked against the configured CA bundle only; the body as sent, never
// decompressed, because its bytes are what the manifest signs.

import { readFile } from "node:fs/promises";
import type { HttpRequestOptions, HttpResponse } from "./system.ts";

/** Object storage and CDNs answer with redirects; a few are plenty, and every hop is still hashed and verified. */
const MAX_REDIRECTS = 3;

interface RequestState {
  /** when the answer or its body last brought bytes */
  lastByteMs: number;
  /** the body was read to its end */
  ended: boolean;
}

/** A connection or body wait that took longer than the request's time limit. */
class HttpTimeout extends Error {}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

/** fetch's own errors say little ("Unable to connect…"); its code says what happened: ConnectionRefused, UNABLE_TO_VERIFY_LEAF_SIGNATURE. */
function describeFetchError(error: unknown): string {
  if (error instanceof HttpTimeout) return error.message;
  const { code, message } = error as { code?: string; message?: string };
  return code === undefined || message?.includes(code) === true ? (message ?? String(error)) : `${message} (${code})`;
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

/** One request, up to MAX_REDIRECTS redirects followed by hand (each hop keeps the Range and gets its own CA check); the body is left unread. */
async function fetchFollowing(url: string, options: HttpRequestOptions, signal: AbortSignal): Promise<Response> {
  let current = url;
  for (let redirects = 0; ; redirects++) {
    const headers: Record<string, string> = { "user-agent": "controller", "accept-encoding": "identity" };
    if (options.fromByte !== undefined && options.fromByte > 0) headers["range"] = `bytes=${options.fromByte}-`;
    const ca = current.startsWith("https:") ? await readCaBundle(current, options.caBundle) : undefined;
    const response = await fetch(current, {
      headers,
      signal,
      redirect: "manual",
      decompress: false,
      ...(ca === undefined ? {} : { tls: { ca } }),
    });
    const location = response.headers.get("location");
    if (response.status < 300 || response.status >= 400 || location === null) return response;
    await response.body?.cancel();
    if (redirects === MAX_REDIRECTS) throw new Error(`${url} redirected more than ${MAX_REDIRECTS} times`);
    current = new URL(location, current).href;
  }
}

/** The body as it arrives; throws when the watchdog aborted a wait for more, or when the connection breaks. */
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
  const state: RequestState = { lastByteMs: performance.now(), ended: false };
  let silence = "no answer came from";
  // one timer per request, not one per body piece: a GiB image arrives in tens of thousands of them
  const watchdog = setInterval(
    () => {
      if (performance.now() - state.lastByteMs > options.timeoutMs) {
        abort.abort(new HttpTimeout(`timeout: ${silence} ${url} for ${seconds(options.timeoutMs)}`));
      }
    },
    Math.max(options.timeoutMs / 10, 10),
  );
  let response: Response;
  try {
    // fetch may not give up a connection attempt when told to (seen with a host that drops packets): the boot does not wait for it
    const answer = fetchFollowing(url, options, abort.signal);
    answer.catch(() => {});
    response = await Promise.race([answer, whenAborted(abort.signal)]);
  } catch (error) {
    clearInterval(watchdog);
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
