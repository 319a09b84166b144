import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clearPassedFolder, makeRunFolder, RUN_OWNER_ENV, runOwner } from "../../../qemu-harness/run-folder.ts";

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

describe("clearPassedFolder", () => {
  test("removes disks, images and the folders they leave empty; keeps consoles and screenshots, and the folders holding them", async () => {
    const folder = join(dir, "passed");
    await mkdir(join(folder, "update/repo/images"), { recursive: true });
    await mkdir(join(folder, "debian"), { recursive: true });
    await writeFile(join(folder, "update/update.img"), new Uint8Array(3 << 20).fill(7));
    await writeFile(join(folder, "update/repo/images/v2.squashfs"), new Uint8Array(1 << 20).fill(7));
    await writeFile(join(folder, "update/repo/manifest.json"), "{}");
    await writeFile(join(folder, "debian/debian.img"), "");
    await writeFile(join(folder, "debian/console.txt"), "@@TEST done");
    await writeFile(join(folder, "fleet-page.png"), "PNG");
    await symlink("/etc/passwd", join(folder, "update/passwd-link"));

    const freed = await clearPassedFolder(folder);

    // at least the 4 MiB of data; at most that plus a few blocks of the small files
    expect(freed).toBeGreaterThanOrEqual(4 << 20);
    expect(freed).toBeLessThan((4 << 20) + 64 * 1024);
    expect((await readdir(folder)).sort()).toEqual(["debian", "fleet-page.png"]);
    expect(await readdir(join(folder, "debian"))).toEqual(["console.txt"]);
    // a symlink is removed itself, never what it points at
    expect(await exists("/etc/passwd")).toBe(true);
  });

  test("a sparse disk counts the blocks it took, not its length", async () => {
    const folder = join(dir, "sparse");
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, "blank.img"), "MBR");
    await truncate(join(folder, "blank.img"), 1024 ** 3);
    expect(await clearPassedFolder(folder)).toBeLessThan(1024 * 1024);
    expect(await readdir(folder)).toEqual([]);
  });

  test("a test file that built no disks has no folder: nothing to remove", async () => {
    expect(await clearPassedFolder(join(dir, "never-made"))).toBe(0);
  });
});
