// whyCheckNeeded against real filesystems: mkfs.ext4 makes them, debugfs puts
// each into the state a boot can meet, and e2fsck -p says what it makes of the
// same image, so the shortcut is held to the checker it stands in for.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32cRaw, SUPERBLOCK_BYTES, SUPERBLOCK_OFFSET, whyCheckNeeded } from "../../../controller/system/ext-superblock.ts";

let dir = "";
let clean = "";

function run(argv: string[]): { code: number; output: string } {
  const result = spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode, output: `${result.stdout.toString()}${result.stderr.toString()}` };
}

function superblockOf(image: string): Uint8Array {
  return new Uint8Array(readFileSync(image).subarray(SUPERBLOCK_OFFSET, SUPERBLOCK_OFFSET + SUPERBLOCK_BYTES));
}

/** A copy of the clean image with debugfs's requests applied (debugfs keeps the checksum right). */
function variant(name: string, requests: string[]): string {
  const image = join(dir, `${name}.img`);
  copyFileSync(clean, image);
  for (const request of requests) {
    const result = run(["debugfs", "-w", "-R", request, image]);
    if (result.code !== 0) throw new Error(`debugfs ${request}: ${result.output}`);
  }
  return image;
}

/** What e2fsck -p makes of a copy of the image: clean without a full check, or not. */
function e2fsckSaysClean(image: string): boolean {
  const copy = `${image}.fsck`;
  copyFileSync(image, copy);
  const result = run(["e2fsck", "-p", copy]);
  return result.code === 0 && /: clean, /.test(result.output) && !/recovering journal|Clearing orphaned/.test(result.output);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ext-superblock-"));
  clean = join(dir, "clean.img");
  const made = run(["mkfs.ext4", "-q", "-F", clean, "8M"]);
  if (made.code !== 0) throw new Error(`mkfs.ext4: ${made.output}`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("whether an ext4 filesystem needs e2fsck, from its superblock", () => {
  test("a freshly made filesystem is clean, and e2fsck -p agrees", () => {
    expect(whyCheckNeeded(superblockOf(clean))).toBeUndefined();
    expect(e2fsckSaysClean(clean)).toBe(true);
  });

  test("ext2 and ext3 without metadata checksums are read the same way", () => {
    for (const type of ["ext2", "ext3"]) {
      const image = join(dir, `${type}.img`);
      expect(run([`mkfs.${type}`, "-q", "-F", image, "8M"]).code).toBe(0);
      expect(whyCheckNeeded(superblockOf(image))).toBeUndefined();
    }
  });

  const unclean: [string, string[], RegExp][] = [
    ["not cleanly unmounted", ["ssv state 0"], /state is 0x0/],
    ["errors detected", ["ssv state 3"], /state is 0x3/],
    ["a journal to replay", ["feature needs_recovery"], /journal needs recovery/],
    ["an orphan inode", ["ssv last_orphan 12"], /orphan inodes/],
    ["errors recorded", ["ssv error_count 2"], /recorded 2 errors/],
    ["the mount count reached", ["ssv max_mnt_count 5", "ssv mnt_count 5"], /mounted 5 times, its maximum mount count is 5/],
    ["a check interval", ["ssv checkinterval 86400"], /check interval/],
  ];
  for (const [what, requests, reason] of unclean) {
    test(`${what}: e2fsck must run`, () => {
      expect(whyCheckNeeded(superblockOf(variant(what.replaceAll(" ", "-"), requests))) ?? "").toMatch(reason);
    });
  }

  test("a mount count below its maximum is clean, and e2fsck -p agrees", () => {
    const counted = variant("counted", ["ssv max_mnt_count 5", "ssv mnt_count 4"]);
    expect(whyCheckNeeded(superblockOf(counted))).toBeUndefined();
    expect(e2fsckSaysClean(counted)).toBe(true);
  });

  test("a superblock changed behind its checksum is e2fsck's to judge", () => {
    const image = join(dir, "tampered.img");
    const bytes = readFileSync(clean);
    bytes[SUPERBLOCK_OFFSET + 0x78] = 0x41; // the volume name, its checksum left as it was
    writeFileSync(image, bytes);
    expect(whyCheckNeeded(superblockOf(image))).toBe("its superblock checksum does not match");
    expect(e2fsckSaysClean(image)).toBe(false);
  });

  test("not a superblock, or too short", () => {
    expect(whyCheckNeeded(new Uint8Array(SUPERBLOCK_BYTES))).toMatch(/no ext2\/3\/4 magic number in the superblock: 0x0, expected 0xef53/);
    expect(whyCheckNeeded(new Uint8Array(100))).toBe("the superblock is 100 bytes long, expected 1024");
  });

  test("crc32c is Castagnoli's (the check value of \"123456789\" is 0xe3069283)", () => {
    expect(~crc32cRaw(0xffffffff, new TextEncoder().encode("123456789")) >>> 0).toBe(0xe3069283);
  });
});
