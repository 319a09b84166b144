// An image verified on this host through the real LinuxSystem: its CPU flags
// from /proc/cpuinfo pick the chunk hash list (chunks.ts), and the hash pool's
// libcrypto threads check it. Whatever CPU runs the tests, the list it picks
// is the one that decides, and the other is not read.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { cpuFlagsIn } from "../../../controller/system/cpu-flags.ts";
import { LinuxSystem } from "../../../controller/system/linux-system.ts";
import { chunkRanges, SHA_EXTENSIONS_FLAG } from "../../../controller/update/chunks.ts";
import { piecesToVerify, verifyImageFile } from "../../../controller/update/image-verify.ts";
import { memoryLogger } from "../../memory-log.ts";

const MiB = 1 << 20;
const system = new LinuxSystem(memoryLogger().log, DEFAULT_CONFIG.timeouts.command_seconds * 1000);
const bytes = new Uint8Array(3 * MiB + 777).map((_, i) => (i * 13 + (i >> 9)) % 256);
const chunks = chunkRanges(bytes.length, MiB).map(({ offset, length }) => bytes.subarray(offset, offset + length));
const hex = (algorithm: string, data: Uint8Array) => createHash(algorithm).update(data).digest("hex");
const image = {
  size: bytes.length,
  sha512: hex("sha512", bytes),
  chunks: { size: MiB, sha512: chunks.map((chunk) => hex("sha512", chunk)), sha256: chunks.map((chunk) => hex("sha256", chunk)) },
};
/** What this host's CPU checks: the test asserts the choice, not a CPU. */
const expected = cpuFlagsIn(readFileSync("/proc/cpuinfo", "utf8")).has(SHA_EXTENSIONS_FLAG) ? "sha256" : "sha512";
const other = expected === "sha256" ? "sha512" : "sha256";

let dir: string;
let path: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "image-verify-"));
  path = join(dir, "image.squashfs");
  await writeFile(path, bytes);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("verifying an image on this host", () => {
  test(`the pieces carry the list this CPU checks faster (${expected} here), and the image verifies by it`, async () => {
    expect((await system.cpuFlags()).has(SHA_EXTENSIONS_FLAG)).toBe(expected === "sha256");
    const pieces = await piecesToVerify(system, image);
    expect(pieces.map((piece) => piece.algorithm)).toEqual([expected, expected, expected, expected]);
    expect(await verifyImageFile(system, path, image)).toEqual({ ok: true });
  });

  test("a wrong hash in the list this CPU checks fails the image; one in the other list does not (each machine trusts its own signed list)", async () => {
    const broken = (algorithm: "sha512" | "sha256") => ({
      ...image,
      chunks: { ...image.chunks, [algorithm]: image.chunks[algorithm].map((hash, index) => (index === 2 ? "0".repeat(hash.length) : hash)) },
    });
    expect(await verifyImageFile(system, path, broken(expected))).toEqual({
      ok: false,
      problem: expect.stringMatching(new RegExp(`^chunk 2 of 4 \\(bytes ${2 * MiB}–${3 * MiB - 1}\\) has ${expected} [0-9a-f]{16}…, the manifest signs 0{16}…$`)),
    });
    expect(await verifyImageFile(system, path, broken(other))).toEqual({ ok: true });
  });
});
