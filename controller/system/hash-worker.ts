// A worker thread of the hash pool (hash-pool.ts): hashes one byte range of a
// file per message, with one or more algorithms in the same read. It hashes
// with libcrypto through bun:ffi when that loads: bun's own sha512 runs at
// about a third of OpenSSL's speed on the machines measured (bench/RESULTS.md),
// which would make hashing, not the network or the disk, what limits an
// install. Without libcrypto it falls back to bun's own hashing, slower but the
// same result. Nothing else is imported: every install starts one worker per
// CPU, and importing node:crypto alone cost each worker 13 ms of CPU.

import { closeSync, openSync, readSync } from "node:fs";
import { LIBCRYPTO } from "./paths.ts";

declare const self: Worker;

/** The hashes an update signs: sha512 for files and images, sha256 as well for an image's chunks (chunks.ts). */
export type HashAlgorithm = "sha512" | "sha256";

export interface HashJob {
  readonly id: number;
  readonly path: string;
  readonly offset: number;
  readonly length: number;
  readonly algorithms: readonly HashAlgorithm[];
}

/** Which implementation a worker runs: what a hash costs depends on it. */
export type HashEngine = "libcrypto" | "bun";

/** `digests` (hex) in the order of the job's algorithms. */
export type HashAnswer = { readonly id: number; readonly engine: HashEngine } & ({ readonly digests: readonly string[] } | { readonly error: string });

interface Hasher {
  update(bytes: Uint8Array, length: number): void;
  /** the hex digest; the hasher is ready for the next range afterwards */
  finish(): string;
}

interface HashLibrary {
  readonly engine: HashEngine;
  hasher(algorithm: HashAlgorithm): Hasher;
}

const READ_BYTES = 4 << 20;

async function libcrypto(): Promise<HashLibrary | undefined> {
  try {
    const { dlopen, FFIType, ptr } = await import("bun:ffi");
    const { symbols } = dlopen(LIBCRYPTO, {
      EVP_MD_CTX_new: { args: [], returns: FFIType.ptr },
      EVP_sha512: { args: [], returns: FFIType.ptr },
      EVP_sha256: { args: [], returns: FFIType.ptr },
      EVP_DigestInit_ex: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
      EVP_DigestUpdate: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
      EVP_DigestFinal_ex: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    });
    const digests = { sha512: symbols.EVP_sha512(), sha256: symbols.EVP_sha256() };
    if (digests.sha512 === null || digests.sha256 === null) return undefined;
    return {
      engine: "libcrypto",
      hasher(algorithm) {
        const context = symbols.EVP_MD_CTX_new();
        if (context === null) throw new Error("libcrypto's EVP_MD_CTX_new failed");
        const digest = new Uint8Array(64);
        const digestLength = new Uint32Array(1);
        const init = () => {
          if (symbols.EVP_DigestInit_ex(context, digests[algorithm], null) !== 1) throw new Error("libcrypto's EVP_DigestInit_ex failed");
        };
        init();
        return {
          update(bytes, length) {
            if (symbols.EVP_DigestUpdate(context, ptr(bytes), length) !== 1) throw new Error("libcrypto's EVP_DigestUpdate failed");
          },
          finish() {
            if (symbols.EVP_DigestFinal_ex(context, ptr(digest), ptr(digestLength)) !== 1) throw new Error("libcrypto's EVP_DigestFinal_ex failed");
            init();
            return Buffer.from(digest.subarray(0, digestLength[0])).toString("hex");
          },
        };
      },
    };
  } catch {
    return undefined;
  }
}

const bunCrypto: HashLibrary = {
  engine: "bun",
  hasher(algorithm) {
    const hash = new Bun.CryptoHasher(algorithm);
    return {
      update: (bytes, length) => hash.update(bytes.subarray(0, length)),
      // digest() resets the hasher for the next range
      finish: () => hash.digest("hex"),
    };
  },
};

const library = (await libcrypto()) ?? bunCrypto;
const hashers = new Map<HashAlgorithm, Hasher>();
const buffer = new Uint8Array(READ_BYTES);

function hasherFor(algorithm: HashAlgorithm): Hasher {
  let hasher = hashers.get(algorithm);
  if (hasher === undefined) {
    hasher = library.hasher(algorithm);
    hashers.set(algorithm, hasher);
  }
  return hasher;
}

function hashRange({ path, offset, length, algorithms }: HashJob): string[] {
  const used = algorithms.map(hasherFor);
  const fd = openSync(path, "r");
  try {
    for (let done = 0; done < length; ) {
      const read = readSync(fd, buffer, 0, Math.min(READ_BYTES, length - done), offset + done);
      if (read === 0) throw new Error(`${path} ends at byte ${offset + done}, before the end of bytes ${offset}–${offset + length - 1}`);
      for (const hasher of used) hasher.update(buffer, read);
      done += read;
    }
    return used.map((hasher) => hasher.finish());
  } catch (error) {
    // the next range starts from fresh hashes
    for (const hasher of used) hasher.finish();
    throw error;
  } finally {
    closeSync(fd);
  }
}

self.onmessage = (event: MessageEvent<HashJob>) => {
  const job = event.data;
  let answer: HashAnswer;
  try {
    answer = { id: job.id, engine: library.engine, digests: hashRange(job) };
  } catch (error) {
    answer = { id: job.id, engine: library.engine, error: (error as Error).message };
  }
  postMessage(answer);
};
