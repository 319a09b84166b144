// The pieces an image is verified in. A manifest may sign a hash for every
// fixed-size chunk of its image besides the whole image's: then each chunk is
// hashed from the disk as soon as it is written, on every CPU at once, and a
// power cut or a bad chunk costs one chunk, not the image. An older manifest
// signs only the whole image: then the image is one piece. Pure, no I/O.
//
// publish signs each chunk twice, sha512 and sha256, and a machine checks the
// list its CPU hashes faster: sha256 where the CPU has the SHA extensions,
// sha512 where it has not. `openssl speed` on the AMD EPYC of bench/RESULTS.md:
// sha256 1.65 GB/s and sha512 0.93 with the extensions; with them masked
// (OPENSSL_ia32cap), sha256 0.59 and sha512 0.95. Both are strong hashes and
// both lists are signed, so the choice changes the cost, never the verdict.
// Controllers from before the sha256 list ignore it; a manifest from before
// it signs sha512 only.

import type { HashAlgorithm } from "../system/hash-worker.ts";

/** A byte range of an image and the hash the manifest signs for it. */
export interface Piece {
  readonly index: number;
  readonly offset: number;
  readonly length: number;
  readonly algorithm: HashAlgorithm;
  readonly hash: string;
}

/** The chunk hash lists a manifest may sign, sha512 first: every manifest with chunks signs it. */
export const CHUNK_HASHES = ["sha512", "sha256"] as const satisfies readonly HashAlgorithm[];

/** The chunk hashes a manifest signs: sha512 always, sha256 as well since publish wrote both. */
export interface SignedChunks {
  readonly size: number;
  readonly sha512: readonly string[];
  readonly sha256?: readonly string[] | undefined;
}

/** What a manifest signs about an image's bytes. */
export interface SignedImage {
  readonly size: number;
  readonly sha512: string;
  readonly chunks?: SignedChunks | undefined;
}

/** The x86 CPU flag (/proc/cpuinfo) of the SHA extensions, which hash sha256 in hardware. */
export const SHA_EXTENSIONS_FLAG = "sha_ni";

/** Chunks no smaller than this; with at most CHUNK_COUNT_TARGET of them a manifest stays far below its size cap. */
export const MIN_CHUNK_BYTES = 1 << 20;
const PUBLISH_MIN_CHUNK_BYTES = 8 << 20;
const CHUNK_COUNT_TARGET = 256;

/** How many chunks of `chunkSize` cover `size` bytes, the last one short. */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/** The byte ranges of `size` bytes cut every `chunkSize` bytes; none for 0 bytes. */
export function chunkRanges(size: number, chunkSize: number): { index: number; offset: number; length: number }[] {
  if (!Number.isSafeInteger(size) || size < 0) throw new Error(`Cannot cut an image into chunks: its size is ${size}, expected a whole number of bytes`);
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) throw new Error(`Cannot cut an image into chunks: the chunk size is ${chunkSize}, expected a positive whole number`);
  const ranges = [];
  for (let index = 0, offset = 0; offset < size; index++, offset += chunkSize) {
    ranges.push({ index, offset, length: Math.min(chunkSize, size - offset) });
  }
  return ranges;
}

/** The chunk size `publish` signs: 8 MiB, doubled until the image has at most 256 chunks. */
export function publishChunkSize(imageSize: number): number {
  let size = PUBLISH_MIN_CHUNK_BYTES;
  while (chunkCount(imageSize, size) > CHUNK_COUNT_TARGET) size *= 2;
  return size;
}

/** Which signed list of chunk hashes a CPU with these flags checks faster: sha256 with the SHA extensions, when the manifest signs it. */
export function chunkAlgorithm(chunks: SignedChunks, cpuFlags: ReadonlySet<string>): HashAlgorithm {
  return chunks.sha256 !== undefined && cpuFlags.has(SHA_EXTENSIONS_FLAG) ? "sha256" : "sha512";
}

/**
 * The pieces to verify on a CPU with `cpuFlags`: the manifest's chunks, with
 * the hash list that CPU checks faster, or the whole image as one piece
 * (its sha512) when it signs no chunks.
 */
export function verificationPieces(image: SignedImage, cpuFlags: ReadonlySet<string>): Piece[] {
  if (image.chunks === undefined) return [{ index: 0, offset: 0, length: image.size, algorithm: "sha512", hash: image.sha512 }];
  const algorithm = chunkAlgorithm(image.chunks, cpuFlags);
  const hashes = image.chunks[algorithm] ?? [];
  return chunkRanges(image.size, image.chunks.size).map((range) => {
    const hash = hashes[range.index];
    if (hash === undefined) throw new Error(`Cannot verify chunk ${range.index}: the manifest signs only ${hashes.length} chunk ${algorithm}s`);
    return { ...range, algorithm, hash };
  });
}

/** How many pieces lie wholly within the first `bytes` bytes. */
export function piecesWithin(pieces: readonly Piece[], bytes: number): number {
  let count = 0;
  while (count < pieces.length && end(pieces[count] as Piece) <= bytes) count++;
  return count;
}

export function end(piece: Piece): number {
  return piece.offset + piece.length;
}

/** "128 chunks of 8 MiB by their sha256, which this CPU hashes in hardware", or "the image by its sha512 (the manifest signs no chunks)". */
export function describeVerification(pieces: readonly Piece[], image: SignedImage): string {
  const first = pieces[0];
  if (image.chunks === undefined || first === undefined) return "the image by its sha512 (the manifest signs no chunks)";
  const chunks = `${pieces.length} chunks of ${image.chunks.size / (1 << 20)} MiB by their ${first.algorithm}`;
  if (first.algorithm === "sha256") return `${chunks}, which this CPU hashes in hardware`;
  return image.chunks.sha256 === undefined ? `${chunks} (the manifest signs no sha256s)` : `${chunks} (without the SHA extensions this CPU hashes sha512 faster)`;
}

/** "chunk 3 of 256 (bytes 50331648–67108863)", or "the image" when it is one piece. */
export function describePiece(piece: Piece, pieces: readonly Piece[]): string {
  if (pieces.length === 1 && piece.offset === 0) return "the image";
  return `chunk ${piece.index} of ${pieces.length} (bytes ${piece.offset}–${end(piece) - 1})`;
}
