// An image's chunk index (chunk-index.ts), computed from its bytes: the cuts
// of content-chunker.ts and the sha256 of every chunk, in one pass over the
// bytes in whatever pieces they come (publish feeds it as it copies the image
// into the repository); and the check of an image against its index.

import { createHash, type Hash } from "node:crypto";
import { CHUNK_HASH_BYTES, type ChunkIndex, chunkHash } from "./chunk-index.ts";
import { type ChunkSizes, ContentChunker } from "./content-chunker.ts";

/** An image's index as its bytes come in pieces: `push` each, then `finish`. */
export class ImageIndexer {
  private readonly chunker: ContentChunker;
  private readonly lengths: number[] = [];
  private readonly hashes: Uint8Array[] = [];
  private hash: Hash = createHash("sha256");
  private imageSize = 0;
  /** bytes of the chunk under way that came in earlier pieces */
  private carried = 0;

  constructor(private readonly sizes: ChunkSizes) {
    this.chunker = new ContentChunker(sizes);
  }

  push(piece: Uint8Array): void {
    this.imageSize += piece.length;
    let from = 0;
    for (const length of this.chunker.push(piece)) {
      const to = from + length - this.carried;
      this.hash.update(piece.subarray(from, to));
      this.cut(length);
      from = to;
      this.carried = 0;
    }
    this.hash.update(piece.subarray(from));
    this.carried += piece.length - from;
  }

  finish(): ChunkIndex {
    for (const length of this.chunker.finish()) this.cut(length);
    const sha256s = new Uint8Array(this.hashes.length * CHUNK_HASH_BYTES);
    this.hashes.forEach((digest, chunk) => sha256s.set(digest, chunk * CHUNK_HASH_BYTES));
    return { sizes: this.sizes, imageSize: this.imageSize, lengths: Uint32Array.from(this.lengths), sha256s };
  }

  private cut(length: number): void {
    this.hashes.push(this.hash.digest());
    this.hash = createHash("sha256");
    this.lengths.push(length);
  }
}

/** The chunks of `index` whose sha256 the image's bytes do not have, by number; a chunk the bytes end before is one. */
export async function chunksNotMatching(index: ChunkIndex, bytes: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<number[]> {
  const wrong: number[] = [];
  let chunk = 0;
  let left = index.lengths[0] ?? 0;
  let hash = createHash("sha256");
  const finishChunk = () => {
    if (!hash.digest().equals(chunkHash(index, chunk))) wrong.push(chunk);
    chunk++;
    left = index.lengths[chunk] ?? 0;
    hash = createHash("sha256");
  };
  for await (const piece of bytes) {
    let from = 0;
    while (from < piece.length) {
      if (chunk >= index.lengths.length) throw new Error(`Cannot check an image against its chunk index: it has more than the index's ${index.imageSize} bytes`);
      const take = Math.min(left, piece.length - from);
      hash.update(piece.subarray(from, from + take));
      from += take;
      left -= take;
      if (left === 0) finishChunk();
    }
  }
  for (; chunk < index.lengths.length; chunk++) wrong.push(chunk);
  return wrong;
}
