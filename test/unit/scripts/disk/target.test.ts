import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../../../../qemu-harness/command.ts";
import { inspectTarget } from "../../../../scripts/disk/target.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "blank-disk-target-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("inspectTarget", () => {
  test("a new image file takes --size; without it, it says what to give", async () => {
    expect(await inspectTarget(join(dir, "new.img"), 4096, false)).toEqual({ path: join(dir, "new.img"), kind: "file", sizeMiB: 4096 });
    await expect(inspectTarget(join(dir, "new.img"), undefined, false)).rejects.toThrow(`Cannot make the image file ${join(dir, "new.img")}: it does not exist; expected --size, e.g. --size 8G`);
  });

  test("a blank existing file keeps its size", async () => {
    await writeFile(join(dir, "blank.img"), new Uint8Array(3 * 1024 * 1024));
    expect(await inspectTarget(join(dir, "blank.img"), undefined, false)).toMatchObject({ kind: "file", sizeMiB: 3 });
  });

  test("a file with a GPT is refused without --force, taken with it", async () => {
    const path = join(dir, "used.img");
    await writeFile(path, new Uint8Array(4 * 1024 * 1024));
    await runCommand(["sfdisk", "--quiet", path], { stdin: "label: gpt\n,\n" });
    await expect(inspectTarget(path, undefined, false)).rejects.toThrow(`Cannot write ${path}: it has a GPT partition table, and everything on it would be lost; expected a blank disk, or --force`);
    expect(await inspectTarget(path, undefined, true)).toMatchObject({ kind: "file", sizeMiB: 4 });
  });

  test("a folder is neither a file nor a block device", async () => {
    await expect(inspectTarget(dir, 100, false)).rejects.toThrow(`Cannot write ${dir}: it is neither a regular file nor a block device`);
  });
});
