import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeRunFolder, RUN_OWNER_ENV, runOwner } from "../../../qemu-harness/run-folder.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "harness-run-folder-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The pid of a process that has ended. */
async function endedPid(): Promise<number> {
  const child = Bun.spawn(["true"]);
  await child.exited;
  return child.pid;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe("runOwner", () => {
  test("is this process unless scripts/run-qemu-tests named the run's owner", () => {
    expect(runOwner({}, 42)).toBe(42);
    expect(runOwner({ [RUN_OWNER_ENV]: "" }, 42)).toBe(42);
    expect(runOwner({ [RUN_OWNER_ENV]: "1234" }, 42)).toBe(1234);
  });

  test("a value that is no process id is refused, naming the variable", () => {
    expect(() => runOwner({ [RUN_OWNER_ENV]: "12a" }, 42)).toThrow(`Cannot use ${RUN_OWNER_ENV}: expected a process id, got "12a"`);
  });
});

describe("makeRunFolder", () => {
  test("two test processes of one run get folders of their own, and neither removes the other's after it ended", async () => {
    const base = join(dir, "two-processes");
    const owner = process.pid;
    const first = await endedPid();
    const firstFolder = await makeRunFolder(base, owner, first);
    await writeFile(join(firstFolder, "disk.img"), "the disk a failed scenario's command line names");
    const second = await endedPid();
    const secondFolder = await makeRunFolder(base, owner, second);
    expect(firstFolder).toBe(join(base, `run-${owner}`, String(first)));
    expect(secondFolder).toBe(join(base, `run-${owner}`, String(second)));
    // the first process has ended, but its run has not: its disks stay
    expect(await Bun.file(join(firstFolder, "disk.img")).text()).toBe("the disk a failed scenario's command line names");
  });

  test("the folders of ended runs, leftovers and half-removed folders go; those of running ones stay", async () => {
    const base = join(dir, "cleanup");
    const ended = await endedPid();
    const keep = [`run-${process.pid}`, `.removing-by-${process.pid}-run-1`];
    const go = [`run-${ended}`, "stray", `.removing-by-${ended}-run-2`];
    for (const entry of [...keep, ...go]) {
      await mkdir(join(base, entry, "inside"), { recursive: true });
      await writeFile(join(base, entry, "inside", "file"), "x");
    }
    const folder = await makeRunFolder(base, 7, 8);
    expect(folder).toBe(join(base, "run-7", "8"));
    expect((await readdir(base)).sort()).toEqual([...keep, "run-7"].sort());
  });

  test("processes starting together each clear ended runs without tripping over one another", async () => {
    const base = join(dir, "together");
    const ended = await endedPid();
    for (let index = 0; index < 20; index++) {
      await mkdir(join(base, `run-${ended}`, `${index}`, "deep", "deeper"), { recursive: true });
      await mkdir(join(base, `stray-${index}`, "deep"), { recursive: true });
    }
    const folders = await Promise.all([1, 2, 3, 4].map((self) => makeRunFolder(base, process.pid, 100 + self)));
    expect(folders).toEqual([1, 2, 3, 4].map((self) => join(base, `run-${process.pid}`, String(100 + self))));
    expect(await readdir(base)).toEqual([`run-${process.pid}`]);
    for (const folder of folders) expect(await exists(folder)).toBe(true);
  });
});
