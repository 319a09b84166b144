// The chunk index file: what publish writes reads back the same, an image past
// 2^32 bytes included, and every index that does not describe its image is
// refused with what is wrong in it.

import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  CHUNK_HASH_BYTES,
  chunkHash,
  type ChunkIndex,
  chunkIndexMaxBytes,
  chunkOffsets,
  encodeChunkIndex,
  parseChunkIndex,
} from "../../../controller/update/chunk-index.ts";
import { PUBLISH_CHUNK_SIZES } from "../../../controller/update/content-chunker.ts";
import { ImageIndexer } from "../../../controller/update/image-index.ts";

/** Chunk `chunk`'s sha256 in hex. */
function hashHex(index: ChunkIndex, chunk: number): string {
  return Buffer.from(chunkHash(index, chunk)).toString("hex");
}

const SIZES = { min: 4096, avg: 16384, max: 65536 };

/** An index of chunks with these lengths, each hash made from its position. */
function indexOf(lengths: readonly number[], sizes = SIZES): ChunkIndex {
  const sha256s = new Uint8Array(lengths.length * CHUNK_HASH_BYTES);
  lengths.forEach((_, chunk) => sha256s.set(createHash("sha256").update(`chunk ${chunk}`).digest(), chunk * CHUNK_HASH_BYTES));
  return { sizes, imageSize: lengths.reduce((sum, length) => sum + length, 0), lengths: Uint32Array.from(lengths), sha256s };
}

/** The encoded index with the 4 bytes at `offset` replaced by `value`. */
function withUint32(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(offset, value, true);
  return copy;
}

const WHERE = "images/abc.index";

describe("encodeChunkIndex and parseChunkIndex", () => {
  test("an index reads back as it was written", () => {
    const index = indexOf([4800, 16384, 65536, 4096, 17]);
    const bytes = encodeChunkIndex(index);
    expect(bytes.length).toBe(36 + 5 * 36);
    const parsed = parseChunkIndex(bytes, index.imageSize, WHERE);
    expect(parsed).toEqual({ ok: true, index });
    expect(Array.from(chunkOffsets(index))).toEqual([0, 4800, 21184, 86720, 90816]);
    expect(hashHex(index, 1)).toBe(createHash("sha256").update("chunk 1").digest("hex"));
  });

  test("an image past 2^32 bytes: its size and offsets do not wrap", () => {
    const count = Math.ceil((2 ** 32 + 4097) / (256 << 10));
    const lengths = Array.from({ length: count }, (_, chunk) => (chunk < count - 1 ? 256 << 10 : 2 ** 32 + 4097 - (count - 1) * (256 << 10)));
    const index = indexOf(lengths, PUBLISH_CHUNK_SIZES);
    expect(index.imageSize).toBe(2 ** 32 + 4097);
    const parsed = parseChunkIndex(encodeChunkIndex(index), 2 ** 32 + 4097, WHERE);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.index.imageSize).toBe(2 ** 32 + 4097);
    expect(chunkOffsets(parsed.index).at(-1)).toBe((count - 1) * (256 << 10));
  });

  test("the size cap holds the largest index an image can have", () => {
    const lengths = [...Array.from({ length: 9 }, () => 4096), 5];
    expect(encodeChunkIndex(indexOf(lengths)).length).toBe(chunkIndexMaxBytes(9 * 4096 + 5));
    expect(chunkIndexMaxBytes(9 * 4096 + 5)).toBe(36 + 10 * 36);
  });

  const good = indexOf([4800, 16384, 65536, 17]);
  const bytes = encodeChunkIndex(good);
  test.each([
    ["too short for its header", bytes.subarray(0, 35), good.imageSize, "it has 35 bytes, expected at least the 36 of its header"],
    ["another file", new TextEncoder().encode("{ this is JSON, not an index, but long enough }"), good.imageSize, 'it does not begin with "ctrl-cdx": not a chunk index'],
    ["a later format", withUint32(bytes, 8, 2), good.imageSize, "its format is 2, expected 1 (the one this controller reads)"],
    ["bad chunk sizes", withUint32(bytes, 16, 10000), good.imageSize, "expected avg to be a power of two"],
    ["chunks too small to bound its size", withUint32(bytes, 12, 2048), good.imageSize, "its chunks are at least 2048 bytes long, expected at least 4096"],
    ["another image's size", bytes, good.imageSize + 1, `it describes an image of ${good.imageSize} bytes, expected ${good.imageSize + 1}`],
    ["a chunk count that does not match its length", withUint32(bytes, 32, 5), good.imageSize, "it has 180 bytes, expected 216 for its 5 chunks"],
    ["cut short", bytes.subarray(0, bytes.length - 1), good.imageSize, "it has 179 bytes, expected 180 for its 4 chunks"],
    ["a chunk of 0 bytes", withUint32(bytes, 36 + 36, 0), good.imageSize, "chunk 1 is 0 bytes long, expected 4096 to 65536"],
    ["a chunk longer than max", withUint32(bytes, 36 + 2 * 36, 65537), good.imageSize, "chunk 2 is 65537 bytes long, expected 4096 to 65536"],
    ["a chunk shorter than min, not the last", withUint32(bytes, 36, 4095), good.imageSize, "chunk 0 is 4095 bytes long, expected 4096 to 65536"],
    ["chunks that do not add up to the image", withUint32(bytes, 36, 4801), good.imageSize, `its chunks add up to ${good.imageSize + 1} bytes, expected ${good.imageSize}`],
  ])("refused: %s", (_, input, imageSize, problem) => {
    const parsed = parseChunkIndex(input, imageSize, WHERE);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.problem).toStartWith(`Cannot use the chunk index ${WHERE}: `);
    expect(parsed.problem).toContain(problem);
  });

  test("an index of no chunks is refused for an image of some bytes", () => {
    const empty = encodeChunkIndex(indexOf([]));
    expect(parseChunkIndex(empty, 10, WHERE)).toMatchObject({ ok: false });
    expect(parseChunkIndex(withUint32(withUint32(empty, 24, 10), 32, 0), 10, WHERE)).toEqual({
      ok: false,
      problem: `Cannot use the chunk index ${WHERE}: it has 0 chunks for an image of 10 bytes`,
    });
  });
});

/** The index of bytes that come in these pieces. */
function indexImage(pieces: readonly Uint8Array[], sizes: typeof SIZES): ChunkIndex {
  const indexer = new ImageIndexer(sizes);
  for (const piece of pieces) indexer.push(piece);
  return indexer.finish();
}

describe("ImageIndexer", () => {
  test("each chunk's sha256 is that of its bytes, however the bytes are split", async () => {
    const image = new Uint8Array(400_000).map((_, at) => (at * 2654435761) >>> 24);
    const whole = indexImage([image], SIZES);
    expect(whole.imageSize).toBe(400_000);
    expect(whole.lengths.reduce((sum, length) => sum + length, 0)).toBe(400_000);
    const offsets = chunkOffsets(whole);
    for (let chunk = 0; chunk < whole.lengths.length; chunk++) {
      const bytes = image.subarray(offsets[chunk], (offsets[chunk] as number) + (whole.lengths[chunk] as number));
      expect(hashHex(whole, chunk)).toBe(createHash("sha256").update(bytes).digest("hex"));
    }
    const pieces = [1, 999, 4096, 17, 20_000].reduce<Uint8Array[]>((list, length) => {
      const from = list.reduce((sum, piece) => sum + piece.length, 0);
      return [...list, image.subarray(from, from + length)];
    }, []);
    pieces.push(image.subarray(pieces.reduce((sum, piece) => sum + piece.length, 0)));
    expect(indexImage(pieces, SIZES)).toEqual(whole);
  });

  test("an empty image has no chunks; a tiny one has one", async () => {
    expect((indexImage([], SIZES)).lengths.length).toBe(0);
    const tiny = indexImage([new Uint8Array([1, 2, 3])], SIZES);
    expect(Array.from(tiny.lengths)).toEqual([3]);
    expect(hashHex(tiny, 0)).toBe(createHash("sha256").update(new Uint8Array([1, 2, 3])).digest("hex"));
  });
});
