// A report's body read only up to the cap (fleet/capped-body.ts): a declared
// length over it is refused unread, an undeclared one is read no further than
// the cap and one chunk.

import { describe, expect, test } from "bun:test";
import { readCappedBody } from "../../../controller/fleet/capped-body.ts";

const CAP = 1024;
const CHUNK = 100;

/** A body of `chunks` chunks of CHUNK bytes, made as they are read; `pulled` counts the bytes read so far. */
function countedStream(chunks: number): { stream: ReadableStream<Uint8Array>; pulled: () => number; cancelled: () => boolean } {
  let pulled = 0;
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled >= chunks * CHUNK) return controller.close();
      pulled += CHUNK;
      controller.enqueue(new Uint8Array(CHUNK).fill(0x61));
    },
    cancel() {
      cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, pulled: () => pulled, cancelled: () => cancelled };
}

function post(body: string | ReadableStream<Uint8Array> | null, headers: Record<string, string> = {}): Request {
  return new Request("http://fleet.test/api/reports", { method: "POST", body, headers });
}

describe("readCappedBody", () => {
  test("a body up to the cap, whole; an empty one, empty", async () => {
    expect(await readCappedBody(post("x".repeat(CAP)), CAP)).toEqual({ ok: true, bytes: new TextEncoder().encode("x".repeat(CAP)) });
    expect(await readCappedBody(post(null), CAP)).toEqual({ ok: true, bytes: new Uint8Array() });
  });

  test("a declared length over the cap: 413 before a byte is read", async () => {
    const { stream, pulled } = countedStream(1000);
    const answer = await readCappedBody(post(stream, { "Content-Length": String(1000 * CHUNK) }), CAP);
    expect(answer).toEqual({ ok: false, status: 413, problem: `Cannot take the report: it is ${1000 * CHUNK} bytes, expected at most ${CAP}` });
    expect(pulled()).toBe(0);
  });

  test("no declared length: read up to the cap and one chunk, then cancelled, 413", async () => {
    const { stream, pulled, cancelled } = countedStream(1_000_000);
    const answer = await readCappedBody(post(stream), CAP);
    expect(answer).toEqual({ ok: false, status: 413, problem: `Cannot take the report: it is more than ${CAP} bytes, expected at most ${CAP}` });
    expect(pulled()).toBeLessThanOrEqual(CAP + 2 * CHUNK);
    expect(cancelled()).toBe(true);
  });

  test("a Content-Length that is not a number: 400", async () => {
    const request = post("{}");
    request.headers.set("content-length", "ten");
    expect(await readCappedBody(request, CAP)).toEqual({ ok: false, status: 400, problem: 'Cannot take the report: expected a Content-Length in bytes, got "ten"' });
  });
});
