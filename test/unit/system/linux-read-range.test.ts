// LinuxSystem.readRange, which a delta install copies local chunks with: the
// bytes asked for, fewer where the file ends, and a missing file an error.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LinuxSystem } from "../../../controller/system/linux-system.ts";
import { memoryLogger } from "../../memory-log.ts";

let dir: string;
const system = new LinuxSystem(memoryLogger().log, 10_000);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "read-range-"));
  await writeFile(join(dir, "image"), Uint8Array.from({ length: 300_000 }, (_, at) => at % 251));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test("the bytes of a range, from anywhere in the file", async () => {
  expect(Array.from(await system.readRange(join(dir, "image"), 0, 4))).toEqual([0, 1, 2, 3]);
  const far = await system.readRange(join(dir, "image"), 260_000, 256 << 10);
  expect(far.length).toBe(40_000);
  expect(far[0]).toBe(260_000 % 251);
  expect(far.at(-1)).toBe(299_999 % 251);
});

test("past the end: nothing; a missing file: an error naming it", async () => {
  expect((await system.readRange(join(dir, "image"), 300_000, 10)).length).toBe(0);
  await expect(system.readRange(join(dir, "missing"), 0, 10)).rejects.toThrow(join(dir, "missing"));
});
