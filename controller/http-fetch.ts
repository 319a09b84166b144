// Small downloads over the System port's http: a manifest, a signature, a
// config file. Each has a size cap, so a server (or anyone on the path) that
// sends endless data costs the boot one capped read, not its memory.

import type { Config } from "./config-schema.ts";
import type { System } from "./system.ts";

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

export function requestOptions(config: Config): { timeoutMs: number; caBundle: string } {
  return { timeoutMs: config.timeouts.server_seconds * 1000, caBundle: config.update.ca_bundle };
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
      throw new FetchError(url, `the connection broke after ${total} bytes: ${(error as Error).message}`);
    }
    return Buffer.concat(chunks);
  } finally {
    await response.discard();
  }
}
