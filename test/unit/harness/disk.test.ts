import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../../../qemu-harness/command.ts";
import { buildDisk } from "../../../qemu-harness/disk.ts";
import { buildSquashfs, buildSquashfsXz } from "../../../qemu-harness/squashfs.ts";

const MIB = 1024 * 1024;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "harness-disk-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface SfdiskPartition {
  start: number;
  size: number;
  name?: string;
}

async function partitionTable(disk: string): Promise<{ label: string; partitions?: SfdiskPartition[] }> {
  const { stdout } = await runCommand(["sfdisk", "--json", disk]);
  return (JSON.parse(stdout) as { partitiontable: { label: string; partitions?: SfdiskPartition[] } }).partitiontable;
}

/** blkid's view of the filesystem at an offset, as KEY=value pairs. */
async function probe(disk: string, offsetBytes: number): Promise<Record<string, string>> {
  const { stdout } = await runCommand(["blkid", "-p", "-o", "export", "-O", String(offsetBytes), disk]);
  return Object.fromEntries(stdout.trim().split("\n").map((line) => line.split("=", 2) as [string, string]));
}

/** Read a file inside the ext4 filesystem at an offset, without mounting it. */
async function readFromFilesystem(disk: string, offsetBytes: number, path: string): Promise<string> {
  return (await runCommand(["debugfs", "-R", `cat ${path}`, `${disk}?offset=${offsetBytes}`])).stdout;
}

describe("buildDisk", () => {
  test("writes a GPT disk whose partitions carry the labels, names and files asked for", async () => {
    const content = join(dir, "sysfs-content");
    await mkdir(join(content, "sub"), { recursive: true });
    await writeFile(join(content, "sub", "hello.txt"), "hello from the host\n");
    const path = join(dir, "labelled.img");

    const layout = await buildDisk({
      path,
      partitions: [
        { label: "SYSFS", sizeMiB: 16, content },
        { label: "BOOTEXT", sizeMiB: 8, partitionName: "SYSFS" },
        { sizeMiB: 4 },
      ],
    });

    expect(layout.partitions).toEqual([
      { offsetBytes: 1 * MIB, sizeBytes: 16 * MIB },
      { offsetBytes: 17 * MIB, sizeBytes: 8 * MIB },
      { offsetBytes: 25 * MIB, sizeBytes: 4 * MIB },
    ]);
    expect((await stat(path)).size).toBe(layout.sizeBytes);

    const table = await partitionTable(path);
    expect(table.label).toBe("gpt");
    expect(table.partitions?.map(({ start, size, name }) => ({ start, size, name }))).toEqual([
      { start: 2048, size: 32768, name: undefined },
      { start: 34816, size: 16384, name: "SYSFS" },
      { start: 51200, size: 8192, name: undefined },
    ]);

    const [first, second, third] = layout.partitions;
    if (first === undefined || second === undefined || third === undefined) throw new Error("three partitions expected");
    expect(await probe(path, first.offsetBytes)).toMatchObject({ TYPE: "ext4", LABEL: "SYSFS" });
    expect(await probe(path, second.offsetBytes)).toMatchObject({ TYPE: "ext4", LABEL: "BOOTEXT" });
    const unlabelled = await probe(path, third.offsetBytes);
    expect(unlabelled.TYPE).toBe("ext4");
    expect(unlabelled.LABEL).toBeUndefined();

    expect(await readFromFilesystem(path, first.offsetBytes, "/sub/hello.txt")).toBe("hello from the host\n");
  });

  test("writes a disk with an empty partition table for 'nothing bootable'", async () => {
    const path = join(dir, "empty.img");
    const layout = await buildDisk({ path, partitions: [] });
    expect(layout.partitions).toEqual([]);
    const table = await partitionTable(path);
    expect(table.label).toBe("gpt");
    expect(table.partitions ?? []).toEqual([]);
  });

  test("two 200 MiB partitions holding 40 MB each take seconds and little space", async () => {
    const contents = ["a", "b"].map((name) => join(dir, `big-${name}`));
    for (const content of contents) {
      await mkdir(content, { recursive: true });
      await writeFile(join(content, "system.squashfs"), crypto.getRandomValues(new Uint8Array(40 * 1000 * 1000)));
    }
    const path = join(dir, "big.img");
    const started = performance.now();
    await buildDisk({
      path,
      partitions: contents.map((content, index) => ({ label: `PART${index}`, sizeMiB: 200, content })),
    });
    const seconds = (performance.now() - started) / 1000;
    console.log(`buildDisk with 2 x 200 MiB, 2 x 40 MB of files: ${seconds.toFixed(2)} s`);
    expect(seconds).toBeLessThan(10);
    const { size, blocks } = await stat(path);
    expect(size).toBeGreaterThan(400 * MIB);
    // 512-byte blocks actually allocated: the data plus ext4's metadata, not the whole 400 MiB.
    expect(blocks * 512).toBeLessThan(120 * MIB);
  }, 30_000);

  test("refuses a label ext4 would cut, saying how long it is", async () => {
    const path = join(dir, "long-label.img");
    await expect(buildDisk({ path, partitions: [{ label: "SEVENTEEN-CHARSXX", sizeMiB: 4 }] })).rejects.toThrow(
      'partition 1: an ext4 label holds at most 16 bytes, got 17: "SEVENTEEN-CHARSXX"',
    );
  });

  test("a failed build leaves neither an image nor its scratch folder behind", async () => {
    const failing = join(dir, "failing");
    await mkdir(failing);
    const path = join(failing, "disk.img");
    await expect(
      buildDisk({ path, partitions: [{ label: "X", sizeMiB: 4, content: join(dir, "no-such-folder") }] }),
    ).rejects.toThrow(/command failed .*mkfs\.ext4/);
    expect(await readdir(failing)).toEqual([]);
  });
});

describe("buildSquashfs and buildSquashfsXz", () => {
  test("pack a folder, plain and xz-compressed with a CRC32 check", async () => {
    const content = join(dir, "overmount");
    await mkdir(content, { recursive: true });
    await writeFile(join(content, "tool.conf"), "setting=1\n");

    const plain = join(dir, "DIR_opt_tools.squashfs");
    await buildSquashfs(content, plain);
    expect((await runCommand(["unsquashfs", "-cat", plain, "tool.conf"])).stdout).toBe("setting=1\n");

    const compressed = join(dir, "DIR_opt_tools.squashfs.xz");
    await buildSquashfsXz(content, compressed);
    const { stdout: info } = await runCommand(["xz", "--robot", "--list", compressed]);
    expect(info).toMatch(/^totals\t.*\tCRC32\t/m);
    const unpacked = join(dir, "unpacked.squashfs");
    await runCommand(["sh", "-c", 'xz -dc "$1" > "$2"', "sh", compressed, unpacked]);
    expect((await runCommand(["unsquashfs", "-cat", unpacked, "tool.conf"])).stdout).toBe("setting=1\n");
  });
});
