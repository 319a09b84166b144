// Content-defined chunks (FastCDC: Xia et al., USENIX ATC 2016), what the
// delta install finds the parts of a new image by that a machine already
// holds. An image is cut where a rolling hash of its last 32 bytes has its top
// bits zero, not at fixed offsets: bytes inserted or removed in one place move
// the cuts near them only, and every chunk elsewhere keeps its bytes and so its
// hash, however far the rest of the image shifted. Pure, no I/O.
//
// FastCDC's three ideas, each for a reason: no cut in a chunk's first `min`
// bytes (those are not even hashed, a quarter of the work at 16/64 KiB), a
// cut forced at `max` (a run of zeros never matches), and a stricter mask
// below `avg` and a looser one above it ("normalized chunking", level 2), so
// that chunk sizes cluster around `avg` instead of spreading out
// exponentially. The gear table and the masks define where every cut falls:
// changing either moves every boundary, and the next update after such a
// change would find almost nothing in common with the machines' images. The
// index file names the chunker it was cut with (chunk-index.ts) for that
// reason; test/unit/update/content-chunker.test.ts pins both.

/** The sizes chunks are cut at: none shorter than min (but an image's last), none longer than max, most near avg (a power of two). */
export interface ChunkSizes {
  readonly min: number;
  readonly avg: number;
  readonly max: number;
}

/**
 * What publish cuts images at. 16/64/256 KiB is casync's choice; squashfs
 * stores files in compressed blocks of up to 128 KiB, so a chunk much
 * smaller than a block gains little, and one much larger holds more than one
 * changed file's worth of unchanged bytes hostage.
 */
export const PUBLISH_CHUNK_SIZES: ChunkSizes = { min: 16 << 10, avg: 64 << 10, max: 256 << 10 };

/** The gear hash's state is 32 bits, so each cut depends on the 32 bytes before it. */
const GEAR_TABLE = gearTable();

/** 256 fixed pseudo-random 32-bit values (murmur3's finalizer over a Weyl sequence): the same on every machine, forever. */
function gearTable(): Int32Array {
  const table = new Int32Array(256);
  let state = 0;
  for (let byte = 0; byte < 256; byte++) {
    state = (state + 0x9e3779b9) | 0;
    let mixed = Math.imul(state ^ (state >>> 16), 0x85ebca6b);
    mixed = Math.imul(mixed ^ (mixed >>> 13), 0xc2b2ae35);
    table[byte] = mixed ^ (mixed >>> 16);
  }
  return table;
}

/** The top `bits` bits of 32 set: the bits of the gear hash that depend on all of the last 32 bytes. */
function topBits(bits: number): number {
  return (0xffffffff << (32 - bits)) | 0;
}

/** Why these sizes cannot cut chunks, or undefined when they can. */
export function chunkSizesProblem(sizes: ChunkSizes): string | undefined {
  const { min, avg, max } = sizes;
  if (![min, avg, max].every((size) => Number.isSafeInteger(size) && size > 0)) {
    return `chunk sizes ${min}/${avg}/${max}: expected whole numbers of bytes`;
  }
  if (!(min < avg && avg < max)) return `chunk sizes ${min}/${avg}/${max}: expected min < avg < max`;
  if (min < 64) return `chunk sizes ${min}/${avg}/${max}: expected min of at least 64 bytes (the hash looks at the last 32)`;
  if ((avg & (avg - 1)) !== 0 || avg > 1 << 28) return `chunk sizes ${min}/${avg}/${max}: expected avg to be a power of two up to 2^28`;
  if (max > 0xffffffff) return `chunk sizes ${min}/${avg}/${max}: expected max below 4 GiB`;
  return undefined;
}

/**
 * Cuts a stream of bytes into content-defined chunks: feed it the image's
 * bytes in any pieces with `push`, then call `finish`; together they return
 * every chunk's length in order, the same however the bytes were split.
 */
export class ContentChunker {
  private readonly maskBelowAvg: number;
  private readonly maskAboveAvg: number;
  /** bytes of the chunk under way so far */
  private length = 0;
  private hash = 0;

  constructor(private readonly sizes: ChunkSizes) {
    const problem = chunkSizesProblem(sizes);
    if (problem !== undefined) throw new Error(`Cannot cut chunks: ${problem}`);
    const bits = Math.log2(sizes.avg);
    this.maskBelowAvg = topBits(bits + 2);
    this.maskAboveAvg = topBits(bits - 2);
  }

  /** The lengths of the chunks that end within `bytes`. */
  push(bytes: Uint8Array): number[] {
    const { min, avg, max } = this.sizes;
    const gear = GEAR_TABLE;
    const cuts: number[] = [];
    const end = bytes.length;
    let at = 0;
    let length = this.length;
    let hash = this.hash;
    while (at < end) {
      if (length < min) {
        const skipped = Math.min(min - length, end - at);
        length += skipped;
        at += skipped;
        continue;
      }
      let cut = false;
      const strict = this.maskBelowAvg;
      while (at < end && length < avg) {
        hash = ((hash << 1) + (gear[bytes[at] as number] as number)) | 0;
        at++;
        length++;
        if ((hash & strict) === 0) {
          cut = true;
          break;
        }
      }
      const loose = this.maskAboveAvg;
      while (!cut && at < end && length < max) {
        hash = ((hash << 1) + (gear[bytes[at] as number] as number)) | 0;
        at++;
        length++;
        if ((hash & loose) === 0) cut = true;
      }
      if (cut || length === max) {
        cuts.push(length);
        length = 0;
        hash = 0;
      }
    }
    this.length = length;
    this.hash = hash;
    return cuts;
  }

  /** The last chunk's length, if any bytes came since the last cut; the chunker starts over afterwards. */
  finish(): number[] {
    const last = this.length;
    this.length = 0;
    this.hash = 0;
    return last > 0 ? [last] : [];
  }
}
