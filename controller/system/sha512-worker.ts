// A worker thread of the sha512 pool (sha512-pool.ts): hashes one byte range
// of a file per message. It hashes with libcrypto through bun:ffi when that
// loads: bun's own sha512 runs at about a third of OpenSSL's speed on the
// machines measured (bench/RESULTS.md), which would make hashing, not the
// network or the disk, what limits an install. Without libcrypto it falls back
// to node:crypto, slower but the same result.

import { createHash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { LIBCRYPTO } from "./paths.ts";

declare const self: Worker;

export interface HashJob {
  readonly id: number;
  readonly path: string;
  readonly offset: number;
  readonly length: number;
}

/** Which sha512 a worker runs: what a hash costs depends on it. */
export type HashEngine = "libcrypto" | "node:crypto";

export type HashAnswer = { readonly id: number; readonly engine: HashEngine } & ({ readonly sha512: string } | { readonly error: string });

interface Sha512 {
  readonly engine: HashEngine;
  update(bytes: Uint8Array, length: number): void;
  /** the hex digest; the hasher is ready for the next range afterwards */
  finish(): string;
}

const READ_BYTES = 4 << 20;

async function libcryptoSha512(): Promise<Sha512 | undefined> {
  try {
    const { dlopen, FFIType, ptr } = await import("bun:ffi");
    const { symbols } = dlopen(LIBCRYPTO, {
      EVP_MD_CTX_new: { args: [], returns: FFIType.ptr },
      EVP_sha512: { args: [], returns: FFIType.ptr },
      EVP_DigestInit_ex: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
      EVP_DigestUpdate: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
      EVP_DigestFinal_ex: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
    });
    const context = symbols.EVP_MD_CTX_new();
    const sha512 = symbols.EVP_sha512();
    if (context === null || sha512 === null) return undefined;
    const digest = new Uint8Array(64);
    const init = () => {
      if (symbols.EVP_DigestInit_ex(context, sha512, null) !== 1) throw new Error("libcrypto's EVP_DigestInit_ex failed");
    };
    init();
    return {
      engine: "libcrypto",
      update(bytes, length) {
        if (symbols.EVP_DigestUpdate(context, ptr(bytes), length) !== 1) throw new Error("libcrypto's EVP_DigestUpdate failed");
      },
      finish() {
        if (symbols.EVP_DigestFinal_ex(context, ptr(digest), null) !== 1) throw new Error("libcrypto's EVP_DigestFinal_ex failed");
        init();
        return Buffer.from(digest).toString("hex");
      },
    };
  } catch {
    return undefined;
  }
}

function nodeSha512(): Sha512 {
  let hash = createHash("sha512");
  return {
    engine: "node:crypto",
    update: (bytes, length) => hash.update(bytes.subarray(0, length)),
    finish() {
      const hex = hash.digest("hex");
      hash = createHash("sha512");
      return hex;
    },
  };
}

const hasher = (await libcryptoSha512()) ?? nodeSha512();
const buffer = new Uint8Array(READ_BYTES);

function hashRange({ path, offset, length }: HashJob): string {
  const fd = openSync(path, "r");
  try {
    for (let done = 0; done < length; ) {
      const read = readSync(fd, buffer, 0, Math.min(READ_BYTES, length - done), offset + done);
      if (read === 0) throw new Error(`${path} ends at byte ${offset + done}, before the end of bytes ${offset}–${offset + length - 1}`);
      hasher.update(buffer, read);
      done += read;
    }
    return hasher.finish();
  } catch (error) {
    // the next range starts from a fresh hash
    hasher.finish();
    throw error;
  } finally {
    closeSync(fd);
  }
}

self.onmessage = (event: MessageEvent<HashJob>) => {
  const job = event.data;
  let answer: HashAnswer;
  try {
    answer = { id: job.id, engine: hasher.engine, sha512: hashRange(job) };
  } catch (error) {
    answer = { id: job.id, engine: hasher.engine, error: (error as Error).message };
  }
  postMessage(answer);
};
