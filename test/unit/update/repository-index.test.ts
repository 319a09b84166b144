// publish writes each image's chunk index beside it and says what an update
// costs the machines on the channel's previous version; verify checks the
// index against the image. On real squashfs images made with mksquashfs.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChunkIndex, chunkHash, chunkOffsets, encodeChunkIndex, parseChunkIndex } from "../../../controller/update/chunk-index.ts";
import { parseManifest } from "../../../controller/update/manifest.ts";
import { keygen, publish, type PublishOptions, resignManifest, verifyRepo } from "../../../controller/update/repository.ts";
import { sha512Hex } from "../../../controller/update/signing.ts";
import { noiseBytes } from "../../bytes.ts";
import { newSquashfs } from "../../squashfs-image.ts";

/** Chunk `chunk`'s sha256 in hex. */
function hashHex(index: ChunkIndex, chunk: number): string {
  return Buffer.from(chunkHash(index, chunk)).toString("hex");
}

const NOW = new Date("2026-11-23T10:00:00.000Z");

let dir: string;
let publicKey: string;
let secretKeyFile: string;
/** 4 MiB of files, and the same with one 200 KiB file changed */
let before: string;
let after: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "repo-index-test-"));
  publicKey = await keygen(join(dir, "signing"));
  secretKeyFile = join(dir, "signing.secret");
  const files = {
    // modules and no kernel: publish warns of nothing (repository-kernel.test.ts covers what it says)
    "lib/modules/6.1.0-57-amd64/modules.dep": "",
    ...Object.fromEntries(Array.from({ length: 20 }, (_, file) => [`usr/share/data/file-${file}`, noiseBytes(200 << 10, file + 1)])),
  };
  before = await newSquashfs(dir, files);
  after = await newSquashfs(dir, { ...files, "usr/share/data/file-10": noiseBytes(200 << 10, 99) });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function options(repo: string, image: string, version: string): PublishOptions {
  return { repo, channel: "stable", version, image, fleetConfig: [], machineConfig: [], expiresInDays: 30, secretKeyFile, now: NOW };
}

async function published(repo: string, image: string, version: string) {
  const result = await publish(options(repo, image, version));
  if (!result.ok) throw new Error(result.problems.join("\n"));
  return result;
}

/** What publish said of the update's cost (it also says whether it signed a kernel: these images have none). */
function costNotes(result: { readonly notes: readonly string[] }): readonly string[] {
  return result.notes.filter((note) => !note.startsWith("No kernel signed"));
}

function verify(repo: string) {
  return verifyRepo({ repo, channel: "stable", trustedKeys: [publicKey], now: NOW });
}

describe("publish writes the image's chunk index", () => {
  test("named by its sha512 beside the image, signed in the manifest, every chunk's sha256 that of its bytes; verify checks it", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    const result = await published(repo, before, "1.0");
    expect(costNotes(result)).toEqual([]);
    const index = result.manifest.image.index;
    if (index === undefined) throw new Error("expected an index in the manifest");
    const bytes = await readFile(join(repo, index.url));
    expect(index).toEqual({ url: `images/${sha512Hex(bytes)}.index`, size: bytes.length, sha512: sha512Hex(bytes) });
    const image = await readFile(before);
    const parsed = parseChunkIndex(bytes, image.length, index.url);
    if (!parsed.ok) throw new Error(parsed.problem);
    expect(parsed.index.sizes).toEqual({ min: 16 << 10, avg: 64 << 10, max: 256 << 10 });
    const offsets = chunkOffsets(parsed.index);
    for (let chunk = 0; chunk < parsed.index.lengths.length; chunk++) {
      const content = image.subarray(offsets[chunk], (offsets[chunk] as number) + (parsed.index.lengths[chunk] as number));
      expect(hashHex(parsed.index, chunk)).toBe(createHash("sha256").update(content).digest("hex"));
    }
    expect(parsed.index.lengths.length).toBeGreaterThan(20);
    const check = await verify(repo);
    expect(check.problems).toEqual([]);
    expect(check.summary).toEndWith("; checked 2 files");
  });
});

describe("publish says how much of the new image the previous version holds", () => {
  test("one file of twenty changed: most of it", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    await published(repo, before, "1.0");
    const result = await published(repo, after, "1.1");
    const notes = costNotes(result);
    expect(notes).toHaveLength(1);
    const match =
      /^Version 1\.0 \(the channel's previous version\) already holds ([\d.]+) % of this image \(([\d.]+) of its ([\d.]+) MiB\); the other ([\d.]+) MiB are (\d+) ranges? of it\.$/.exec(
        notes[0] ?? "",
      );
    expect(match).not.toBeNull();
    // the 19 files that did not change; the changed one and the squashfs tables after it are new
    expect(Number(match?.[1])).toBeGreaterThan(80);
    expect(Number(match?.[5])).toBeLessThanOrEqual(3);
  });

  test("the same image again: all of it", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    await published(repo, before, "1.0");
    const result = await published(repo, before, "1.1");
    expect(costNotes(result)).toEqual([expect.stringMatching(/^Version 1\.0 \(the channel's previous version\) already holds all of this image \([\d.]+ MiB\)\.$/)]);
  });

  test("a previous version published without an index: not known", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    const first = await published(repo, before, "1.0");
    const { index: _, ...withoutIndex } = first.manifest.image;
    await writeFile(first.manifestFile, `${JSON.stringify({ ...first.manifest, image: withoutIndex }, null, 2)}\n`);
    const result = await published(repo, after, "1.1");
    expect(costNotes(result)).toEqual(["Version 1.0 (the channel's previous version) was published without a chunk index: how much of this image it holds is not known."]);
    expect(result.warnings).toEqual([]);
  });

  test("a previous index that is missing or not the one signed: a warning, and the update is published all the same", async () => {
    for (const damage of ["remove", "replace"] as const) {
      const repo = await mkdtemp(join(dir, "repo-"));
      const first = await published(repo, before, "1.0");
      const indexFile = join(repo, first.manifest.image.index?.url ?? "");
      if (damage === "remove") await rm(indexFile);
      else await writeFile(indexFile, encodeChunkIndex({ sizes: { min: 4096, avg: 16384, max: 65536 }, imageSize: 1, lengths: Uint32Array.of(1), sha256s: new Uint8Array(32) }));
      const result = await published(repo, after, "1.1");
      expect(costNotes(result)).toEqual(["How much of this image version 1.0 (the channel's previous version) holds is not known (see the warning)."]);
      expect(result.warnings).toEqual([
        `Cannot say how much of this image version 1.0 (the channel's previous version) holds: ` +
          (damage === "remove" ? `there is no ${indexFile}` : `${indexFile} does not have the sha512 its manifest signs`),
      ]);
      expect((await verify(repo)).problems).toEqual([]);
    }
  });
});

describe("verify checks the index", () => {
  test("an index whose chunks are not the image's, signed all the same: each wrong chunk named", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    const first = await published(repo, before, "1.0");
    const signed = first.manifest.image.index;
    if (signed === undefined) throw new Error("expected an index");
    const parsed = parseChunkIndex(await readFile(join(repo, signed.url)), first.manifest.image.size, signed.url);
    if (!parsed.ok) throw new Error(parsed.problem);
    parsed.index.sha256s[3 * 32] = (parsed.index.sha256s[3 * 32] as number) ^ 1;
    const wrong = encodeChunkIndex(parsed.index);
    const wrongUrl = `images/${sha512Hex(wrong)}.index`;
    await writeFile(join(repo, wrongUrl), wrong);
    await writeFile(first.manifestFile, `${JSON.stringify({ ...first.manifest, image: { ...first.manifest.image, index: { url: wrongUrl, size: wrong.length, sha512: sha512Hex(wrong) } } }, null, 2)}\n`);
    expect((await resignManifest({ repo, channel: "stable", secretKeyFile, now: NOW })).ok).toBe(true);
    const offset = chunkOffsets(parsed.index)[3] as number;
    expect((await verify(repo)).problems).toEqual([
      `${join(repo, first.manifest.image.url)}: 1 of its chunks do not have the sha256 ${join(repo, wrongUrl)} lists (image.index in ${first.manifestFile}): ` +
        `chunk 3 (bytes ${offset}–${offset + (parsed.index.lengths[3] as number) - 1})`,
    ]);
  });

  test("a damaged index file: its sha512 is wrong; one that is not an index: refused with why", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    const first = await published(repo, before, "1.0");
    const signed = first.manifest.image.index;
    if (signed === undefined) throw new Error("expected an index");
    const copy = await mkdtemp(join(dir, "repo-"));
    await cp(repo, copy, { recursive: true });
    const bytes = await readFile(join(copy, signed.url));
    bytes[40] = (bytes[40] as number) ^ 1;
    await writeFile(join(copy, signed.url), bytes);
    expect((await verify(copy)).problems).toEqual([expect.stringContaining(`${join(copy, signed.url)}: expected sha512 ${signed.sha512} (image.index.sha512 in`)]);

    const notIndex = new TextEncoder().encode("not an index at all, but a file of some length\n");
    const notIndexUrl = `images/${sha512Hex(notIndex)}.index`;
    await writeFile(join(repo, notIndexUrl), notIndex);
    await writeFile(first.manifestFile, `${JSON.stringify({ ...first.manifest, image: { ...first.manifest.image, index: { url: notIndexUrl, size: notIndex.length, sha512: sha512Hex(notIndex) } } }, null, 2)}\n`);
    expect((await resignManifest({ repo, channel: "stable", secretKeyFile, now: NOW })).ok).toBe(true);
    expect((await verify(repo)).problems).toEqual([`Cannot use the chunk index ${join(repo, notIndexUrl)}: it does not begin with "ctrl-cdx": not a chunk index`]);
  });
});

test("the manifest refuses an index larger than any index of its image could be", () => {
  const manifest = (index: unknown) =>
    new TextEncoder().encode(
      JSON.stringify({
        format: 1,
        channel: "stable",
        version: "1.0",
        created: "2026-11-23T10:00:00.000Z",
        expires: "2026-12-23T10:00:00.000Z",
        image: { url: "images/a.squashfs", size: 8192, sha512: "a".repeat(128), format: "squashfs", index },
        config: { fleet: [], machines: [] },
      }),
    );
  const ok = parseManifest(manifest({ url: "images/b.index", size: 144, sha512: "b".repeat(128) }), "m.json");
  expect(ok.ok).toBe(true);
  expect(parseManifest(manifest({ url: "images/b.index", size: 145, sha512: "b".repeat(128) }), "m.json")).toEqual({
    ok: false,
    problems: ["m.json: key image.index.size: expected at most 144 bytes (the largest index of an image of 8192 bytes), got 145"],
  });
  expect(parseManifest(manifest({ url: "images/b.index", size: 100 }), "m.json")).toMatchObject({
    ok: false,
    problems: [expect.stringContaining("m.json: key image.index.sha512: expected 128 lowercase hex characters")],
  });
});
