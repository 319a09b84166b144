// The hashing threads on real files: the same sha512 and sha256 as node:crypto
// for any range, offsets past 2^31 and 2^32 in a sparse file, and clear failures.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HashPool } from "../../../controller/system/hash-pool.ts";

let work: string;
const pool = new HashPool(2);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "hash-pool-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const sha512 = (bytes: Uint8Array) => createHash("sha512").update(bytes).digest("hex");
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("HashPool", () => {
  test("any range of a file hashes as node:crypto hashes those bytes, many at once", async () => {
    const bytes = new Uint8Array(9 << 20);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 10)) & 0xff;
    const path = join(work, "random");
    await writeFile(path, bytes);
    // across the workers' 4 MiB read size, empty, one byte, the whole file
    const ranges: [number, number][] = [[0, bytes.length], [0, 0], [0, 1], [bytes.length - 1, 1], [(4 << 20) - 3, 7], [1, 8 << 20], [5 << 20, 4 << 20]];
    const hashes = await Promise.all(ranges.map(([offset, length]) => pool.hashRange(path, offset, length, "sha512")));
    expect(hashes).toEqual(ranges.map(([offset, length]) => sha512(bytes.subarray(offset, offset + length))));
    const sha256s = await Promise.all(ranges.map(([offset, length]) => pool.hashRange(path, offset, length, "sha256")));
    expect(sha256s).toEqual(ranges.map(([offset, length]) => sha256(bytes.subarray(offset, offset + length))));
    // both from one read, in the order asked, and a hash left unfinished by neither
    const both = await Promise.all(ranges.map(([offset, length]) => pool.hashesOfRange(path, offset, length, ["sha256", "sha512"])));
    expect(both).toEqual(ranges.map(([offset, length]) => [sha256(bytes.subarray(offset, offset + length)), sha512(bytes.subarray(offset, offset + length))]));
    // OpenSSL's, not bun's own, which is about a third as fast
    expect(pool.engine).toBe("libcrypto");
  });

  test("offsets past 2^31 and 2^32 bytes read the right bytes (a sparse file of 5 GiB)", async () => {
    const path = join(work, "sparse");
    const handle = await open(path, "w");
    const marks = [2 ** 31 - 4, 2 ** 32 - 4, 2 ** 32 + 4096];
    try {
      await handle.truncate(5 * 2 ** 30);
      for (const [index, at] of marks.entries()) await handle.write(new TextEncoder().encode(`mark ${index}`), 0, 6, at);
    } finally {
      await handle.close();
    }
    for (const [index, at] of marks.entries()) {
      const expected = new Uint8Array(16);
      expected.set(new TextEncoder().encode(`mark ${index}`), 4);
      expect(await pool.hashRange(path, at - 4, 16, "sha512")).toBe(sha512(expected));
    }
  });

  test("a range past the end of the file, and a missing file, are refused with the path", async () => {
    const path = join(work, "short");
    await writeFile(path, "0123456789");
    await expect(pool.hashesOfRange(path, 5, 10, ["sha512", "sha256"])).rejects.toThrow(`${path} ends at byte 10, before the end of bytes 5–14`);
    await expect(pool.hashRange(join(work, "missing"), 0, 1, "sha256")).rejects.toThrow("ENOENT");
    // the pool still works after failures, from fresh hashes
    const digits = new TextEncoder().encode("0123456789");
    expect(await pool.hashesOfRange(path, 0, 10, ["sha512", "sha256"])).toEqual([sha512(digits), sha256(digits)]);
  });
});
