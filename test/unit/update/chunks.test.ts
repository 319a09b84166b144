// Chunked verification: where chunks start and end, which pieces an image is
// verified in, and a flipped byte found in whichever chunk it is.

import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { chunkAlgorithm, chunkRanges, describePiece, describeVerification, type Piece, piecesWithin, publishChunkSize, verificationPieces } from "../../../controller/update/chunks.ts";
import { firstBadPiece, PieceVerifier, verifyImageFile } from "../../../controller/update/image-verify.ts";
import { sha512Hex } from "../../../controller/update/signing.ts";
import { bytesToText, FakeSystem } from "../../fake-system.ts";

const MiB = 1 << 20;
const NO_SHA = new Set(["fpu", "sse2", "avx2"]);
const SHA_NI = new Set(["fpu", "sse2", "sha_ni", "avx2"]);

/** Ranges cover 0..size exactly, in order, each at most chunkSize, only the last shorter. */
function expectTiling(size: number, chunkSize: number): void {
  const ranges = chunkRanges(size, chunkSize);
  expect(ranges.length).toBe(Math.ceil(size / chunkSize));
  let offset = 0;
  ranges.forEach((range, index) => {
    expect(range).toEqual({ index, offset, length: Math.min(chunkSize, size - offset) });
    if (index < ranges.length - 1) expect(range.length).toBe(chunkSize);
    offset += range.length;
  });
  expect(offset).toBe(size);
}

describe("chunkRanges", () => {
  test("a boundary at every interesting offset: exact multiples, one byte either side, one byte, one chunk", () => {
    const chunk = 4096;
    for (const size of [1, chunk - 1, chunk, chunk + 1, 2 * chunk - 1, 2 * chunk, 2 * chunk + 1, 7 * chunk + 13]) expectTiling(size, chunk);
    expect(chunkRanges(chunk + 1, chunk).at(-1)).toEqual({ index: 1, offset: chunk, length: 1 });
    expect(chunkRanges(2 * chunk, chunk).at(-1)).toEqual({ index: 1, offset: chunk, length: chunk });
  });

  test("an empty image has no chunks", () => {
    expect(chunkRanges(0, MiB)).toEqual([]);
  });

  test("sizes past 2^31 and 2^32 bytes, where 32-bit arithmetic would wrap", () => {
    for (const size of [2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 5 * 2 ** 30 + 7]) expectTiling(size, 16 * MiB);
    const last = chunkRanges(2 ** 32 + 1, 16 * MiB).at(-1);
    expect(last).toEqual({ index: 256, offset: 2 ** 32, length: 1 });
  });

  test("refuses sizes that are not whole numbers of bytes, and chunk sizes below 1", () => {
    expect(() => chunkRanges(-1, MiB)).toThrow("its size is -1, expected a whole number of bytes");
    expect(() => chunkRanges(1.5, MiB)).toThrow("its size is 1.5");
    expect(() => chunkRanges(Number.NaN, MiB)).toThrow("its size is NaN");
    expect(() => chunkRanges(10, 0)).toThrow("the chunk size is 0, expected a positive whole number");
    expect(() => chunkRanges(10, Number.POSITIVE_INFINITY)).toThrow("the chunk size is Infinity");
  });
});

describe("publishChunkSize", () => {
  test("8 MiB, doubled until an image has at most 256 chunks", () => {
    expect(publishChunkSize(1)).toBe(8 * MiB);
    expect(publishChunkSize(56 * MiB)).toBe(8 * MiB);
    expect(publishChunkSize(2 ** 31)).toBe(8 * MiB);
    expect(publishChunkSize(2 ** 31 + 1)).toBe(16 * MiB);
    expect(publishChunkSize(2 ** 32)).toBe(16 * MiB);
    expect(publishChunkSize(100 * 2 ** 30)).toBe(512 * MiB);
    for (const size of [1, 2 ** 31 + 1, 2 ** 32 + 1, 3e12]) expect(Math.ceil(size / publishChunkSize(size))).toBeLessThanOrEqual(256);
  });
});

describe("verificationPieces", () => {
  const twoLists = { size: MiB, sha512: ["a", "b", "c"].map((c) => c.repeat(128)), sha256: ["d", "e", "f"].map((c) => c.repeat(64)) };

  test("a manifest without chunks: the whole image is one piece with the whole sha512, on any CPU", () => {
    for (const flags of [NO_SHA, SHA_NI]) {
      expect(verificationPieces({ size: 5000, sha512: "a".repeat(128) }, flags)).toEqual([{ index: 0, offset: 0, length: 5000, algorithm: "sha512", hash: "a".repeat(128) }]);
    }
  });

  test("with chunks: one piece per chunk, with its own hash; the last one short", () => {
    const pieces = verificationPieces({ size: 2 * MiB + 3, sha512: "f".repeat(128), chunks: { size: MiB, sha512: ["a", "b", "c"].map((c) => c.repeat(128)) } }, NO_SHA);
    expect(pieces.map((piece) => [piece.offset, piece.length, piece.algorithm, piece.hash[0]])).toEqual([
      [0, MiB, "sha512", "a"],
      [MiB, MiB, "sha512", "b"],
      [2 * MiB, 3, "sha512", "c"],
    ]);
    expect(describePiece(pieces[2] as Piece, pieces)).toBe(`chunk 2 of 3 (bytes ${2 * MiB}–${2 * MiB + 2})`);
    const whole = verificationPieces({ size: 10, sha512: "a".repeat(128) }, NO_SHA);
    expect(describePiece(whole[0] as Piece, whole)).toBe("the image");
  });

  test("the sha256 list on a CPU with the SHA extensions, the sha512 list without them or when the manifest signs no sha256s", () => {
    const image = { size: 2 * MiB + 3, sha512: "9".repeat(128), chunks: twoLists };
    expect(verificationPieces(image, SHA_NI).map((piece) => [piece.algorithm, piece.hash[0]])).toEqual([["sha256", "d"], ["sha256", "e"], ["sha256", "f"]]);
    expect(verificationPieces(image, NO_SHA).map((piece) => [piece.algorithm, piece.hash[0]])).toEqual([["sha512", "a"], ["sha512", "b"], ["sha512", "c"]]);
    expect(chunkAlgorithm(twoLists, new Set())).toBe("sha512");
    expect(chunkAlgorithm({ size: MiB, sha512: [] }, SHA_NI)).toBe("sha512");
  });

  test("what a machine says it verifies by", () => {
    const image = { size: 2 * MiB + 3, sha512: "9".repeat(128), chunks: twoLists };
    expect(describeVerification(verificationPieces(image, SHA_NI), image)).toBe("3 chunks of 1 MiB by their sha256, which this CPU hashes in hardware");
    expect(describeVerification(verificationPieces(image, NO_SHA), image)).toBe("3 chunks of 1 MiB by their sha512 (without the SHA extensions this CPU hashes sha512 faster)");
    const sha512Only = { ...image, chunks: { size: MiB, sha512: twoLists.sha512 } };
    expect(describeVerification(verificationPieces(sha512Only, SHA_NI), sha512Only)).toBe("3 chunks of 1 MiB by their sha512 (the manifest signs no sha256s)");
    const whole = { size: 10, sha512: "9".repeat(128) };
    expect(describeVerification(verificationPieces(whole, SHA_NI), whole)).toBe("the image by its sha512 (the manifest signs no chunks)");
  });

  test("fewer hashes than chunks cannot be verified, in either list", () => {
    expect(() => verificationPieces({ size: 2 * MiB + 1, sha512: "f".repeat(128), chunks: { size: MiB, sha512: ["a".repeat(128)] } }, NO_SHA)).toThrow(
      "Cannot verify chunk 1: the manifest signs only 1 chunk sha512s",
    );
    const shortSha256 = { size: MiB, sha512: ["a", "b"].map((c) => c.repeat(128)), sha256: ["d".repeat(64)] };
    expect(() => verificationPieces({ size: 2 * MiB, sha512: "f".repeat(128), chunks: shortSha256 }, SHA_NI)).toThrow("Cannot verify chunk 1: the manifest signs only 1 chunk sha256s");
  });

  test("piecesWithin counts the pieces wholly inside a prefix", () => {
    const pieces = verificationPieces({ size: 2 * MiB + 3, sha512: "f".repeat(128), chunks: { size: MiB, sha512: ["a", "b", "c"].map((c) => c.repeat(128)) } }, NO_SHA);
    expect([0, MiB - 1, MiB, 2 * MiB + 2, 2 * MiB + 3, 3 * MiB].map((bytes) => piecesWithin(pieces, bytes))).toEqual([0, 0, 1, 2, 3, 3]);
  });
});

/** An image of 3 chunks of 1 MiB and a short 4th one, in the fake at /img, with the pieces that sign it. */
function chunkedImage(): { fake: FakeSystem; bytes: Uint8Array; pieces: Piece[] } {
  const size = 3 * MiB + 1000;
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 12)) & 0xff;
  const hashes = chunkRanges(size, MiB).map(({ offset, length }) => sha512Hex(bytes.subarray(offset, offset + length)));
  const fake = new FakeSystem().addTree("/", { img: bytesToText(bytes) });
  return { fake, bytes, pieces: verificationPieces({ size, sha512: sha512Hex(bytes), chunks: { size: MiB, sha512: hashes } }, NO_SHA) };
}

function flipped(bytes: Uint8Array, at: number): string {
  const copy = new Uint8Array(bytes);
  copy[at] = (copy[at] ?? 0) ^ 0x01;
  return bytesToText(copy);
}

describe("verifying pieces", () => {
  test("an intact image verifies, each piece hashed once", async () => {
    const { fake, pieces } = chunkedImage();
    expect(await firstBadPiece(fake, "/img", pieces)).toBeUndefined();
    expect(fake.hashedRanges.map((range) => [range.offset, range.length])).toEqual(pieces.map((piece) => [piece.offset, piece.length]));
  });

  test("one byte flipped in any chunk (its first byte, its last, the short last chunk) is found in that chunk", async () => {
    const { bytes, pieces } = chunkedImage();
    for (const [at, chunk] of [
      [0, 0],
      [MiB - 1, 0],
      [MiB, 1],
      [2 * MiB + 12345, 2],
      [3 * MiB - 1, 2],
      [3 * MiB, 3],
      [3 * MiB + 999, 3],
    ] as const) {
      const fake = new FakeSystem().addTree("/", { img: flipped(bytes, at) });
      const bad = await firstBadPiece(fake, "/img", pieces);
      expect(bad?.piece.index).toBe(chunk);
      expect(bad?.problem).toMatch(new RegExp(`^chunk ${chunk} of 4 \\(bytes \\d+–\\d+\\) has sha512 [0-9a-f]{16}…, the manifest signs [0-9a-f]{16}…$`));
    }
  });

  test("verifyImageFile: a missing file, a wrong size and a flipped byte each say so", async () => {
    const { fake, bytes, pieces } = chunkedImage();
    const image = { size: bytes.length, sha512: sha512Hex(bytes), chunks: { size: MiB, sha512: pieces.map((piece) => piece.hash) } };
    expect(await verifyImageFile(fake, "/img", image)).toEqual({ ok: true });
    expect(await verifyImageFile(fake, "/none", image)).toEqual({ ok: false, problem: "there is no such file" });
    expect(await verifyImageFile(fake, "/img", { ...image, size: bytes.length + 1, chunks: undefined })).toEqual({
      ok: false,
      problem: `it has ${bytes.length} bytes, the manifest signs ${bytes.length + 1}`,
    });
    const flippedFake = new FakeSystem().addTree("/", { img: flipped(bytes, 5) });
    expect(await verifyImageFile(flippedFake, "/img", { ...image, chunks: undefined })).toEqual({
      ok: false,
      problem: expect.stringMatching(/^the image has sha512 [0-9a-f]{16}…, the manifest signs [0-9a-f]{16}…$/),
    });
  });

  test("PieceVerifier hashes a piece only once the bytes written cover it, and reports the first bad piece in image order", async () => {
    const { bytes, pieces } = chunkedImage();
    const twice = new Uint8Array(bytes);
    twice[2 * MiB] = (twice[2 * MiB] ?? 0) ^ 1;
    twice[MiB + 5] = (twice[MiB + 5] ?? 0) ^ 1;
    const fake = new FakeSystem().addTree("/", { img: bytesToText(twice) });
    const verifier = new PieceVerifier(fake, "/img", pieces, 0);
    verifier.advance(MiB - 1);
    expect(fake.hashedRanges).toEqual([]);
    verifier.advance(3 * MiB);
    expect(fake.hashedRanges.map((range) => range.offset)).toEqual([0, MiB, 2 * MiB]);
    // the failures come back in any order; the first chunk in the image is the one reported
    expect((await verifier.settle())?.problem).toMatch(/^chunk 1 of 4/);
    verifier.advance(bytes.length);
    expect(fake.hashedRanges.map((range) => range.offset)).toEqual([0, MiB, 2 * MiB, 3 * MiB]);
  });

  test("PieceVerifier: pieces within the verified prefix are not hashed again; a restart hashes from the first", async () => {
    const { fake, bytes, pieces } = chunkedImage();
    const verifier = new PieceVerifier(fake, "/img", pieces, 2 * MiB + 10);
    verifier.advance(bytes.length);
    expect(await verifier.settle()).toBeUndefined();
    expect(fake.hashedRanges.map((range) => range.offset)).toEqual([2 * MiB, 3 * MiB]);
    await verifier.restart();
    verifier.advance(MiB);
    expect(await verifier.settle()).toBeUndefined();
    expect(fake.hashedRanges.map((range) => range.offset)).toEqual([2 * MiB, 3 * MiB, 0]);
  });

  test("verifyImageFile checks the sha256s on a CPU with the SHA extensions: a wrong sha256 list fails there and not on a CPU without them", async () => {
    const { bytes, pieces } = chunkedImage();
    const sha256s = pieces.map((piece) => createHash("sha256").update(bytes.subarray(piece.offset, piece.offset + piece.length)).digest("hex"));
    const image = { size: bytes.length, sha512: sha512Hex(bytes), chunks: { size: MiB, sha512: pieces.map((piece) => piece.hash), sha256: sha256s } };
    const fake = () => new FakeSystem().addTree("/", { img: bytesToText(bytes) });
    const withSha = fake();
    withSha.cpuFlagSet = SHA_NI;
    expect(await verifyImageFile(withSha, "/img", image)).toEqual({ ok: true });
    expect(withSha.hashedRanges.map((range) => range.algorithm)).toEqual(["sha256", "sha256", "sha256", "sha256"]);
    const wrongSha256 = { ...image, chunks: { ...image.chunks, sha256: sha256s.map((hash, index) => (index === 3 ? "0".repeat(64) : hash)) } };
    const again = fake();
    again.cpuFlagSet = SHA_NI;
    expect(await verifyImageFile(again, "/img", wrongSha256)).toEqual({ ok: false, problem: expect.stringMatching(/^chunk 3 of 4 \(bytes \d+–\d+\) has sha256 [0-9a-f]{16}…, the manifest signs 0000000000000000…$/) });
    expect(await verifyImageFile(fake(), "/img", wrongSha256)).toEqual({ ok: true });
  });

  test("a file shorter than a piece: that piece cannot be read back, and says so", async () => {
    const { bytes, pieces } = chunkedImage();
    const fake = new FakeSystem().addTree("/", { img: bytesToText(bytes.subarray(0, 2 * MiB + 7)) });
    const bad = await firstBadPiece(fake, "/img", pieces);
    expect(bad?.piece.index).toBe(2);
    expect(bad?.problem).toMatch(/^chunk 2 of 4 \(bytes \d+–\d+\) cannot be read back: .*ends at byte 2097159/);
  });
});
