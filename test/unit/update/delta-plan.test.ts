// The plan of a delta install: which chunks are copied from which local
// image, which are fetched, and how fetched neighbours merge into requests.

import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { CHUNK_HASH_BYTES, type ChunkIndex } from "../../../controller/update/chunk-index.ts";
import { describeShared, planDelta } from "../../../controller/update/delta-plan.ts";

const SIZES = { min: 4096, avg: 16384, max: 65536 };

/** An index whose chunks are named: each name's sha256 is the chunk's hash; lengths default to 1000. */
function indexOf(chunks: readonly (string | [string, number])[]): ChunkIndex {
  const named = chunks.map((chunk) => (typeof chunk === "string" ? ([chunk, 1000] as const) : chunk));
  const sha256s = new Uint8Array(named.length * CHUNK_HASH_BYTES);
  named.forEach(([name], chunk) => sha256s.set(createHash("sha256").update(name).digest(), chunk * CHUNK_HASH_BYTES));
  const lengths = Uint32Array.from(named.map(([, length]) => length));
  return { sizes: SIZES, imageSize: lengths.reduce((sum, length) => sum + length, 0), lengths, sha256s };
}

describe("planDelta", () => {
  test("nothing held locally: the whole image in one request", () => {
    const plan = planDelta(indexOf(["a", "b", "c"]), []);
    expect(plan).toEqual({
      steps: [{ kind: "fetch", offset: 0, length: 3000 }],
      bytesCopied: 0,
      bytesFetched: 3000,
      requests: 1,
    });
  });

  test("an index that shares nothing with the local images: the same", () => {
    expect(planDelta(indexOf(["a", "b"]), [indexOf(["x", "y"])]).requests).toBe(1);
  });

  test("everything held: no request, every chunk copied from where it is in the old image", () => {
    const plan = planDelta(indexOf(["c", "a", "b"]), [indexOf(["a", "b", "c"])]);
    expect(plan.requests).toBe(0);
    expect(plan.bytesFetched).toBe(0);
    expect(plan.steps).toEqual([
      { kind: "copy", chunk: 0, offset: 0, length: 1000, source: 0, sourceOffset: 2000 },
      { kind: "copy", chunk: 1, offset: 1000, length: 1000, source: 0, sourceOffset: 0 },
      { kind: "copy", chunk: 2, offset: 2000, length: 1000, source: 0, sourceOffset: 1000 },
    ]);
  });

  test("neighbouring chunks to fetch merge into one request; a held chunk between them splits it", () => {
    const plan = planDelta(indexOf(["new1", "new2", "a", "new3", "b", "new4", "new5", "new6"]), [indexOf(["a", "b"])]);
    expect(plan.steps.map((step) => step.kind)).toEqual(["fetch", "copy", "fetch", "copy", "fetch"]);
    expect(plan.steps.filter((step) => step.kind === "fetch")).toEqual([
      { kind: "fetch", offset: 0, length: 2000 },
      { kind: "fetch", offset: 3000, length: 1000 },
      { kind: "fetch", offset: 5000, length: 3000 },
    ]);
    expect(plan).toMatchObject({ bytesCopied: 2000, bytesFetched: 6000, requests: 3 });
  });

  test("a chunk in both local images is copied from the first listed (the running system)", () => {
    const plan = planDelta(indexOf(["a", "b"]), [indexOf(["x", "b"]), indexOf(["b", "a"])]);
    expect(plan.steps).toEqual([
      { kind: "copy", chunk: 0, offset: 0, length: 1000, source: 1, sourceOffset: 1000 },
      { kind: "copy", chunk: 1, offset: 1000, length: 1000, source: 0, sourceOffset: 1000 },
    ]);
  });

  test("a chunk repeated in the new image is copied each time", () => {
    const plan = planDelta(indexOf(["a", "a", "a"]), [indexOf(["a"])]);
    expect(plan.steps.map((step) => (step.kind === "copy" ? step.sourceOffset : -1))).toEqual([0, 0, 0]);
    expect(plan.bytesCopied).toBe(3000);
  });

  test("the same hash with another length is not the same chunk: fetched", () => {
    const plan = planDelta(indexOf([["a", 1000]]), [indexOf([["a", 999]])]);
    expect(plan.requests).toBe(1);
  });

  test("a hash that shares only its first 6 bytes with a local one is fetched", () => {
    const target = indexOf(["a"]);
    const local = indexOf(["a"]);
    local.sha256s[31] = (local.sha256s[31] as number) ^ 1;
    expect(planDelta(target, [local]).requests).toBe(1);
  });

  test("the steps cover the new image exactly, in order", () => {
    const target = indexOf([["a", 300], ["n1", 4096], ["b", 256], ["n2", 17]]);
    const plan = planDelta(target, [indexOf([["b", 256], ["a", 300]])]);
    let offset = 0;
    for (const step of plan.steps) {
      expect(step.offset).toBe(offset);
      offset += step.length;
    }
    expect(offset).toBe(target.imageSize);
    expect(plan.bytesCopied + plan.bytesFetched).toBe(target.imageSize);
  });
});

describe("describeShared", () => {
  const MiB = 1 << 20;
  test("none, all, some in one range, some in several", () => {
    expect(describeShared({ steps: [], bytesCopied: 0, bytesFetched: 4 * MiB, requests: 1 }, 4 * MiB)).toBe("holds none of this image's 4.0 MiB");
    expect(describeShared({ steps: [], bytesCopied: 4 * MiB, bytesFetched: 0, requests: 0 }, 4 * MiB)).toBe("already holds all of this image (4.0 MiB)");
    expect(describeShared({ steps: [], bytesCopied: 3 * MiB, bytesFetched: MiB, requests: 1 }, 4 * MiB)).toBe(
      "already holds 75.0 % of this image (3.0 of its 4.0 MiB); the other 1.0 MiB are 1 range of it",
    );
    expect(describeShared({ steps: [], bytesCopied: MiB, bytesFetched: 3 * MiB, requests: 7 }, 4 * MiB)).toBe(
      "already holds 25.0 % of this image (1.0 of its 4.0 MiB); the other 3.0 MiB are 7 ranges of it",
    );
  });
});
