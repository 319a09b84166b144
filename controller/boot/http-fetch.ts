// Small downloads over the System port's http: a manifest, a signature, a
// config file. Each has a size cap, so a server (or anyone on the path) that
// sends endless data costs the boot one capped read, not its memory. Also the
// limits every request gets from config.d, small files' and images'.

import type { Config } from "../config/schema.ts";
import type { HttpRequestOptions, System } from "../system/system.ts";

export class FetchError extends Error {
  constructor(
    readonly url: string,
    reason: string,
    /** the HTTP status, when the server answered with one other than 200 */
    readonly status?: number,
  ) {
    super(`Cannot fetch ${url}: ${reason}`);
    this.name = "FetchError";
  }
}

/** A small file's request: the whole answer within timeouts.request_seconds. */
function requestOptions(config: Config): HttpRequestOptions {
  return {
    timeoutMs: config.timeouts.server_seconds * 1000,
    deadline: { kind: "total", totalMs: config.timeouts.request_seconds * 1000 },
    caBundle: config.update.ca_bundle,
    allowRedirectToHttp: config.update.allow_redirect_to_http,
  };
}

/**
 * An image's request, from `fromByte` on, up to `toByte` (inclusive) for a part of it. Not one total deadline: an image is
 * GiBs and the network's speed unknown, so any fixed figure is too short for
 * some lab or lets a trickle hold the boot for hours. A minimum average rate
 * over every window ends a trickle after one window and lets an image of any
 * size finish at any speed above it; a request's time stays below
 * size / rate + one window.
 */
export function imageRequestOptions(config: Config, fromByte: number, toByte?: number): HttpRequestOptions {
  const { image_min_kib_per_second, image_window_seconds } = config.timeouts;
  return {
    ...requestOptions(config),
    deadline: { kind: "rate", minBytesPerSecond: image_min_kib_per_second * 1024, windowMs: image_window_seconds * 1000 },
    fromByte,
    ...(toByte === undefined ? {} : { toByte }),
  };
}

/** The whole body of a 200 answer, refused as soon as it passes maxBytes. */
export async function fetchCapped(system: System, config: Config, url: string, maxBytes: number): Promise<Uint8Array> {
  let response;
  try {
    response = await system.httpGet(url, requestOptions(config));
  } catch (error) {
    throw new FetchError(url, (error as Error).message);
  }
  try {
    if (response.status !== 200) throw new FetchError(url, `the server answered HTTP ${response.status}, expected 200`, response.status);
    const announced = Number(response.headers["content-length"]);
    if (Number.isFinite(announced) && announced > maxBytes) {
      throw new FetchError(url, `the server announced ${announced} bytes, more than the ${maxBytes} allowed`);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for await (const chunk of response.body) {
        total += chunk.length;
        if (total > maxBytes) throw new FetchError(url, `the server sent more than the ${maxBytes} bytes allowed`);
        chunks.push(chunk);
      }
    } catch (error) {
      if (error instanceof FetchError) throw error;
      throw new FetchError(url, `the body stopped after ${total} bytes: ${(error as Error).message}`);
    }
    return Buffer.concat(chunks);
  } finally {
    await response.discard();
  }
}
