// LinuxSystem.openForRead, which a delta install copies local chunks with: the
// bytes asked for, from anywhere and in any order through one open, fewer
// where the file ends, and a missing file an error naming it.

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

test("the bytes of ranges from anywhere in the file, in any order, through one open", async () => {
  const reader = await system.openForRead(join(dir, "image"));
  try {
    const far = await reader.read(260_000, 256 << 10);
    expect(far.length).toBe(40_000);
    expect(far[0]).toBe(260_000 % 251);
    expect(far.at(-1)).toBe(299_999 % 251);
    expect(Array.from(await reader.read(0, 4))).toEqual([0, 1, 2, 3]);
    expect(Array.from(await reader.read(1000, 2))).toEqual([1000 % 251, 1001 % 251]);
  } finally {
    await reader.close();
  }
});

test("past the end: nothing; a missing file: an error naming it", async () => {
  const reader = await system.openForRead(join(dir, "image"));
  try {
    expect((await reader.read(300_000, 10)).length).toBe(0);
  } finally {
    await reader.close();
  }
  await expect(system.openForRead(join(dir, "missing"))).rejects.toThrow(join(dir, "missing"));
});
