// The content-defined chunker: every chunk within its sizes, the same cuts
// however the bytes arrive, and cuts that survive an insertion or a deletion
// elsewhere, which is what a delta install depends on.

import { describe, expect, test } from "bun:test";
import { chunkSizesProblem, ContentChunker, PUBLISH_CHUNK_SIZES } from "../../../controller/update/content-chunker.ts";
import { concatBytes, noiseBytes } from "../../bytes.ts";

const KiB = 1024;
const SMALL = { min: 256, avg: 1024, max: 4096 };

function cut(bytes: Uint8Array, sizes = SMALL, pieceLength = bytes.length): number[] {
  const chunker = new ContentChunker(sizes);
  const lengths: number[] = [];
  for (let at = 0; at < bytes.length; at += pieceLength) lengths.push(...chunker.push(bytes.subarray(at, at + pieceLength)));
  lengths.push(...chunker.finish());
  return lengths;
}

/** The chunks' contents, as text keys, to compare two cuttings. */
function chunkContents(bytes: Uint8Array, lengths: readonly number[]): string[] {
  const contents: string[] = [];
  let offset = 0;
  for (const length of lengths) {
    contents.push(Buffer.from(bytes.subarray(offset, offset + length)).toString("base64"));
    offset += length;
  }
  return contents;
}

function shared(a: readonly string[], b: readonly string[]): number {
  const inB = new Set(b);
  return a.filter((chunk) => inB.has(chunk)).length;
}

describe("chunk sizes", () => {
  test("publish's sizes are valid", () => {
    expect(chunkSizesProblem(PUBLISH_CHUNK_SIZES)).toBeUndefined();
  });

  test.each([
    [{ min: 1024, avg: 1024, max: 4096 }, "expected min < avg < max"],
    [{ min: 256, avg: 4096, max: 4096 }, "expected min < avg < max"],
    [{ min: 32, avg: 1024, max: 4096 }, "expected min of at least 64 bytes"],
    [{ min: 256, avg: 1000, max: 4096 }, "expected avg to be a power of two"],
    [{ min: 256, avg: 1024, max: 2 ** 32 }, "expected max below 4 GiB"],
    [{ min: 256.5, avg: 1024, max: 4096 }, "expected whole numbers of bytes"],
    [{ min: 0, avg: 1024, max: 4096 }, "expected whole numbers of bytes"],
  ])("%o is refused: %s", (sizes, problem) => {
    expect(chunkSizesProblem(sizes)).toContain(problem);
    expect(() => new ContentChunker(sizes)).toThrow(`Cannot cut chunks: chunk sizes ${sizes.min}/${sizes.avg}/${sizes.max}: ${problem}`);
  });
});

describe("ContentChunker", () => {
  test("no bytes, no chunks; fewer bytes than min, one chunk; the lengths always add up", () => {
    expect(cut(new Uint8Array(0))).toEqual([]);
    expect(cut(noiseBytes(1, 1))).toEqual([1]);
    expect(cut(noiseBytes(SMALL.min - 1, 1))).toEqual([SMALL.min - 1]);
    expect(cut(noiseBytes(SMALL.min, 1))).toEqual([SMALL.min]);
    for (const length of [SMALL.min + 1, SMALL.avg, SMALL.max, SMALL.max + 1, 100_000]) {
      expect(cut(noiseBytes(length, 7)).reduce((sum, chunk) => sum + chunk, 0)).toBe(length);
    }
  });

  test("every chunk is within min and max, but the last; sizes cluster around avg", () => {
    const lengths = cut(noiseBytes(4 << 20, 3));
    for (const length of lengths.slice(0, -1)) {
      expect(length).toBeGreaterThanOrEqual(SMALL.min);
      expect(length).toBeLessThanOrEqual(SMALL.max);
    }
    const mean = (4 << 20) / lengths.length;
    expect(mean).toBeGreaterThan(SMALL.avg * 0.75);
    expect(mean).toBeLessThan(SMALL.avg * 1.5);
    // not every chunk is forced at max: the content decides
    expect(lengths.filter((length) => length === SMALL.max).length).toBeLessThan(lengths.length / 10);
  });

  test("bytes without a match (zeros) are cut at max", () => {
    expect(cut(new Uint8Array(3 * SMALL.max + 5))).toEqual([SMALL.max, SMALL.max, SMALL.max, 5]);
  });

  test("the cuts do not depend on how the bytes are split into pieces", () => {
    const bytes = noiseBytes(300_000, 11);
    const whole = cut(bytes);
    for (const pieceLength of [1, 7, SMALL.min - 1, SMALL.min, SMALL.avg + 3, SMALL.max, 65_536]) {
      expect(cut(bytes, SMALL, pieceLength)).toEqual(whole);
    }
  });

  test("an insertion or a deletion changes only the chunks around it", () => {
    const original = noiseBytes(1 << 20, 5);
    const middle = 600_000;
    const inserted = concatBytes(original.subarray(0, middle), noiseBytes(100, 9), original.subarray(middle));
    const deleted = concatBytes(original.subarray(0, middle), original.subarray(middle + 3000));
    const lengths = cut(original);
    const before = chunkContents(original, lengths);
    // a cut depends only on the bytes before it: every chunk that ends before the change stays as it was
    let endsBefore = 0;
    for (let offset = lengths[0] as number; offset <= middle; offset += lengths[endsBefore] as number) endsBefore++;
    expect(endsBefore).toBeGreaterThan(100);
    for (const changed of [inserted, deleted]) {
      const after = chunkContents(changed, cut(changed));
      expect(after.slice(0, endsBefore)).toEqual(before.slice(0, endsBefore));
      // after it, the cuts fall into step again within a chunk or two
      expect(shared(after, before)).toBeGreaterThanOrEqual(before.length - 4);
    }
  });

  test("publish's sizes: the same stability on a few MiB", () => {
    const original = noiseBytes(8 << 20, 21);
    const changed = concatBytes(original.subarray(0, 5_000_000), Uint8Array.of(1, 2, 3), original.subarray(5_000_000));
    const before = chunkContents(original, cut(original, PUBLISH_CHUNK_SIZES, 1 << 20));
    const after = chunkContents(changed, cut(changed, PUBLISH_CHUNK_SIZES, 1 << 20));
    expect(shared(after, before)).toBeGreaterThanOrEqual(before.length - 3);
    for (const length of cut(original, PUBLISH_CHUNK_SIZES).slice(0, -1)) {
      expect(length).toBeGreaterThanOrEqual(16 * KiB);
      expect(length).toBeLessThanOrEqual(256 * KiB);
    }
  });

  test("the cut points are pinned: a change to the gear table or the masks would move every chunk of every published image", () => {
    expect(cut(noiseBytes(20_000, 42)).slice(0, 12)).toEqual(PINNED_SMALL);
    expect(cut(noiseBytes(1 << 20, 42), PUBLISH_CHUNK_SIZES).slice(0, 8)).toEqual(PINNED_PUBLISH);
  });

  test("the chunker starts over after finish", () => {
    const chunker = new ContentChunker(SMALL);
    const bytes = noiseBytes(10_000, 8);
    const first = [...chunker.push(bytes), ...chunker.finish()];
    const second = [...chunker.push(bytes), ...chunker.finish()];
    expect(second).toEqual(first);
  });
});

const PINNED_SMALL = [1203, 1512, 1086, 1223, 1083, 1343, 788, 1638, 1290, 1025, 1046, 1055];
const PINNED_PUBLISH = [45617, 96941, 72614, 16899, 108595, 75002, 82178, 76253];
