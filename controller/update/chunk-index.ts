// The chunk index of an image: the length and sha256 of each of its
// content-defined chunks (content-chunker.ts), in order. publish writes it
// beside the image, named by its own sha512, and the manifest signs that
// sha512; each slot keeps its image's index with its record. Pure, no I/O.
//
// Binary, because an index of a 4 GiB image has some 65,000 chunks: 36 bytes
// each here, where JSON with hex hashes would take 2.5 times as much for the
// machine to fetch and parse. All numbers little-endian:
//
//   bytes 0-7    "ctrl-cdx"                      what the file is
//   bytes 8-11   format, 1                       a later format is refused, never guessed at
//   bytes 12-23  min, avg, max chunk size        what the image was cut with
//   bytes 24-31  the image's size in bytes
//   bytes 32-35  the number of chunks, N
//   then N times: 4 bytes length, 32 bytes sha256

import { type ChunkSizes, chunkSizesProblem } from "./content-chunker.ts";

const CHUNK_INDEX_FORMAT = 1;
const MAGIC = "ctrl-cdx";
const HEADER_BYTES = 36;
export const CHUNK_HASH_BYTES = 32;
const ENTRY_BYTES = 4 + CHUNK_HASH_BYTES;
/**
 * No index cuts chunks (but an image's last) shorter than this: what bounds an
 * index's size by its image's before it is fetched (the manifest's check), to
 * 0.9 % of the image; publish's chunks are at least 16 KiB.
 */
const INDEX_MIN_CHUNK_BYTES = 4096;

export interface ChunkIndex {
  readonly sizes: ChunkSizes;
  readonly imageSize: number;
  /** each chunk's length, in the image's order */
  readonly lengths: Uint32Array;
  /** each chunk's sha256: chunk i's is bytes 32·i to 32·i + 32 */
  readonly sha256s: Uint8Array;
}

/** The largest index an image of `imageSize` bytes can have: a chunk per INDEX_MIN_CHUNK_BYTES, and a short last one. */
export function chunkIndexMaxBytes(imageSize: number): number {
  return HEADER_BYTES + (Math.floor(imageSize / INDEX_MIN_CHUNK_BYTES) + 1) * ENTRY_BYTES;
}

/** Where each chunk begins in the image. */
export function chunkOffsets(index: ChunkIndex): Float64Array {
  const offsets = new Float64Array(index.lengths.length);
  let offset = 0;
  for (let chunk = 0; chunk < index.lengths.length; chunk++) {
    offsets[chunk] = offset;
    offset += index.lengths[chunk] as number;
  }
  return offsets;
}

/** Chunk `chunk`'s sha256 as bytes (a view, not a copy). */
export function chunkHash(index: ChunkIndex, chunk: number): Uint8Array {
  return index.sha256s.subarray(chunk * CHUNK_HASH_BYTES, (chunk + 1) * CHUNK_HASH_BYTES);
}

export function encodeChunkIndex(index: ChunkIndex): Uint8Array {
  const count = index.lengths.length;
  const bytes = new Uint8Array(HEADER_BYTES + count * ENTRY_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode(MAGIC), 0);
  view.setUint32(8, CHUNK_INDEX_FORMAT, true);
  view.setUint32(12, index.sizes.min, true);
  view.setUint32(16, index.sizes.avg, true);
  view.setUint32(20, index.sizes.max, true);
  view.setBigUint64(24, BigInt(index.imageSize), true);
  view.setUint32(32, count, true);
  for (let chunk = 0; chunk < count; chunk++) {
    const at = HEADER_BYTES + chunk * ENTRY_BYTES;
    view.setUint32(at, index.lengths[chunk] as number, true);
    bytes.set(chunkHash(index, chunk), at + 4);
  }
  return bytes;
}

export type ParsedChunkIndex = { readonly ok: true; readonly index: ChunkIndex } | { readonly ok: false; readonly problem: string };

/**
 * Reads an index and checks that it describes `imageSize` bytes: its chunks
 * add up to the image, none is longer than its max or (but the last) shorter
 * than its min. `where` names the file or URL in the problem.
 */
export function parseChunkIndex(bytes: Uint8Array, imageSize: number, where: string): ParsedChunkIndex {
  const refuse = (problem: string): ParsedChunkIndex => ({ ok: false, problem: `Cannot use the chunk index ${where}: ${problem}` });
  if (bytes.length < HEADER_BYTES) return refuse(`it has ${bytes.length} bytes, expected at least the ${HEADER_BYTES} of its header`);
  const magic = new TextDecoder().decode(bytes.subarray(0, MAGIC.length));
  if (magic !== MAGIC) return refuse(`it does not begin with "${MAGIC}": not a chunk index`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = view.getUint32(8, true);
  if (format !== CHUNK_INDEX_FORMAT) return refuse(`its format is ${format}, expected ${CHUNK_INDEX_FORMAT} (the one this controller reads)`);
  const sizes = { min: view.getUint32(12, true), avg: view.getUint32(16, true), max: view.getUint32(20, true) };
  const sizesProblem = chunkSizesProblem(sizes);
  if (sizesProblem !== undefined) return refuse(sizesProblem);
  if (sizes.min < INDEX_MIN_CHUNK_BYTES) return refuse(`its chunks are at least ${sizes.min} bytes long, expected at least ${INDEX_MIN_CHUNK_BYTES}`);
  const indexedSize = view.getBigUint64(24, true);
  if (indexedSize !== BigInt(imageSize)) return refuse(`it describes an image of ${indexedSize} bytes, expected ${imageSize} (the image's size in the manifest)`);
  const count = view.getUint32(32, true);
  const expectedBytes = HEADER_BYTES + count * ENTRY_BYTES;
  if (bytes.length !== expectedBytes) return refuse(`it has ${bytes.length} bytes, expected ${expectedBytes} for its ${count} chunks`);
  if ((imageSize === 0) !== (count === 0)) return refuse(`it has ${count} chunks for an image of ${imageSize} bytes`);

  const lengths = new Uint32Array(count);
  const sha256s = new Uint8Array(count * CHUNK_HASH_BYTES);
  let total = 0;
  for (let chunk = 0; chunk < count; chunk++) {
    const at = HEADER_BYTES + chunk * ENTRY_BYTES;
    const length = view.getUint32(at, true);
    const last = chunk === count - 1;
    if (length === 0 || length > sizes.max || (!last && length < sizes.min)) {
      return refuse(`chunk ${chunk} is ${length} bytes long, expected ${last ? 1 : sizes.min} to ${sizes.max}`);
    }
    lengths[chunk] = length;
    total += length;
    sha256s.set(bytes.subarray(at + 4, at + ENTRY_BYTES), chunk * CHUNK_HASH_BYTES);
  }
  if (total !== imageSize) return refuse(`its chunks add up to ${total} bytes, expected ${imageSize} (the image's size)`);
  return { ok: true, index: { sizes, imageSize, lengths, sha256s } };
}
