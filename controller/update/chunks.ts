// The pieces an image is verified in. A manifest may sign a sha512 for every
// fixed-size chunk of its image besides the whole image's: then each chunk is
// hashed from the disk as soon as it is written, on every CPU at once, and a
// power cut or a bad chunk costs one chunk, not the image. An older manifest
// signs only the whole image: then the image is one piece. Pure, no I/O.

/** A byte range of an image and the sha512 the manifest signs for it. */
export interface Piece {
  readonly index: number;
  readonly offset: number;
  readonly length: number;
  readonly sha512: string;
}

/** What a manifest signs about an image's bytes. */
export interface SignedImage {
  readonly size: number;
  readonly sha512: string;
  readonly chunks?: { readonly size: number; readonly sha512: readonly string[] } | undefined;
}

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

/** The pieces to verify: the manifest's chunks, or the whole image as one piece when it signs no chunks. */
export function verificationPieces(image: SignedImage): Piece[] {
  if (image.chunks === undefined) return [{ index: 0, offset: 0, length: image.size, sha512: image.sha512 }];
  const hashes = image.chunks.sha512;
  return chunkRanges(image.size, image.chunks.size).map((range) => {
    const sha512 = hashes[range.index];
    if (sha512 === undefined) throw new Error(`Cannot verify chunk ${range.index}: the manifest signs only ${hashes.length} chunk hashes`);
    return { ...range, sha512 };
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

/** "chunk 3 of 256 (bytes 50331648–67108863)", or "the image" when it is one piece. */
export function describePiece(piece: Piece, pieces: readonly Piece[]): string {
  if (pieces.length === 1 && piece.offset === 0) return "the image";
  return `chunk ${piece.index} of ${pieces.length} (bytes ${piece.offset}–${end(piece) - 1})`;
}
