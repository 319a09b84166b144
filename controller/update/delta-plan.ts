// The plan of a delta install: where each chunk of a new image comes from.
// A chunk whose sha256 a local image's index lists is copied from that
// image (the caller verifies the copy, and fetches a chunk that does not
// verify); every other chunk is fetched from the server, neighbours merged
// into one Range request. publish makes the same plan against the channel's
// previous version to tell an admin how much of the new image it holds. Pure.

import { CHUNK_HASH_BYTES, type ChunkIndex, chunkHash, chunkOffsets } from "./chunk-index.ts";

export type DeltaStep =
  /** chunk `chunk` of the new image, at `offset`, from byte `sourceOffset` of local image `source` */
  | { readonly kind: "copy"; readonly chunk: number; readonly offset: number; readonly length: number; readonly source: number; readonly sourceOffset: number }
  /** bytes `offset` to `offset + length` from the server, one Range request */
  | { readonly kind: "fetch"; readonly offset: number; readonly length: number };

export interface DeltaPlan {
  /** in the new image's order, covering it whole */
  readonly steps: readonly DeltaStep[];
  readonly bytesCopied: number;
  readonly bytesFetched: number;
  /** Range requests: one per fetch step */
  readonly requests: number;
}

interface Location {
  readonly source: number;
  readonly chunk: number;
  readonly offset: number;
}

/** A chunk hash's first 6 bytes as a number: a map key that needs no string per chunk (65,000 chunks per 4 GiB image). */
function hashKey(hash: Uint8Array): number {
  let key = 0;
  for (let byte = 0; byte < 6; byte++) key = key * 256 + (hash[byte] as number);
  return key;
}

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  for (let byte = 0; byte < CHUNK_HASH_BYTES; byte++) if (a[byte] !== b[byte]) return false;
  return true;
}

/** Where each chunk of the local images is, by hash; a chunk in several places is taken from the first image listed. */
function locate(local: readonly ChunkIndex[]): Map<number, Location> {
  const found = new Map<number, Location>();
  local.forEach((index, source) => {
    const offsets = chunkOffsets(index);
    for (let chunk = 0; chunk < index.lengths.length; chunk++) {
      const key = hashKey(chunkHash(index, chunk));
      if (!found.has(key)) found.set(key, { source, chunk, offset: offsets[chunk] as number });
    }
  });
  return found;
}

/**
 * The steps that write `target` from the `local` images' chunks where they
 * hold one and from the server for the rest. A local chunk matches on its
 * whole sha256 and its length; two different hashes that share their first
 * 6 bytes only cost a fetch.
 */
export function planDelta(target: ChunkIndex, local: readonly ChunkIndex[]): DeltaPlan {
  const found = locate(local);
  const offsets = chunkOffsets(target);
  const steps: DeltaStep[] = [];
  let bytesCopied = 0;
  let bytesFetched = 0;
  let fetching: { offset: number; length: number } | undefined;
  const endFetch = () => {
    if (fetching === undefined) return;
    steps.push({ kind: "fetch", ...fetching });
    fetching = undefined;
  };
  for (let chunk = 0; chunk < target.lengths.length; chunk++) {
    const hash = chunkHash(target, chunk);
    const length = target.lengths[chunk] as number;
    const offset = offsets[chunk] as number;
    const at = found.get(hashKey(hash));
    const source = at === undefined ? undefined : (local[at.source] as ChunkIndex);
    if (at !== undefined && source !== undefined && source.lengths[at.chunk] === length && sameHash(chunkHash(source, at.chunk), hash)) {
      endFetch();
      steps.push({ kind: "copy", chunk, offset, length, source: at.source, sourceOffset: at.offset });
      bytesCopied += length;
      continue;
    }
    bytesFetched += length;
    if (fetching === undefined) fetching = { offset, length };
    else fetching.length += length;
  }
  endFetch();
  return { steps, bytesCopied, bytesFetched, requests: steps.filter((step) => step.kind === "fetch").length };
}

function inMiB(bytes: number): string {
  return (bytes / (1 << 20)).toFixed(1);
}

/** "already holds 86.9 % of this image (3.4 of its 3.9 MiB); the other 0.5 MiB are 3 ranges of it": what an image an older one shares, for an admin. */
export function describeShared(plan: DeltaPlan, imageSize: number): string {
  if (plan.bytesCopied === 0) return `holds none of this image's ${inMiB(imageSize)} MiB`;
  if (plan.bytesFetched === 0) return `already holds all of this image (${inMiB(imageSize)} MiB)`;
  const share = ((plan.bytesCopied / imageSize) * 100).toFixed(1);
  const ranges = `${plan.requests} ${plan.requests === 1 ? "range" : "ranges"}`;
  return `already holds ${share} % of this image (${inMiB(plan.bytesCopied)} of its ${inMiB(imageSize)} MiB); the other ${inMiB(plan.bytesFetched)} MiB are ${ranges} of it`;
}
