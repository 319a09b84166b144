// scripts/build-pxe: the folder a PXE server serves, and every bad argument
// refused with a message that names it. (test/qemu/pxe.test.ts boots it.)

import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseCmdline } from "../../controller/config/cmdline.ts";
import { cmdlineLayers, resolveConfig } from "../../controller/config/layers.ts";

const SCRIPT = resolve(import.meta.dir, "../../scripts/build-pxe");
const KEY = "uOG2tEuL++8kM25sBJ9WZMLLdFGmBNKsWO0NnSfYDqY=";
const OTHER_KEY = "AAAAtEuL++8kM25sBJ9WZMLLdFGmBNKsWO0NnSfYDqY=";

let work: string;
let kernel: string;
let initramfs: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "build-pxe-"));
  kernel = join(work, "vmlinuz-in");
  initramfs = join(work, "initrd-in");
  await writeFile(kernel, "kernel bytes");
  await writeFile(initramfs, "initramfs bytes");
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function run(...args: string[]) {
  const result = Bun.spawnSync([SCRIPT, "--kernel", kernel, "--initramfs", initramfs, ...args]);
  return { exitCode: result.exitCode, stderr: result.stderr.toString() };
}

test("makes vmlinuz, initramfs.img and a boot.ipxe whose command line the controller reads as a diskless boot with these servers and keys", async () => {
  const keyFile = join(work, "lab.pub");
  await writeFile(keyFile, `${KEY}\n`);
  const out = join(work, "out");
  const result = run("--server", "http://10.0.2.100:8080/", "--server", "https://mirror.example.org/lab/", "--key", keyFile, "--key", OTHER_KEY, "--channel", "lab", "--append", "console=ttyS0 net", out);
  expect(result).toMatchObject({ exitCode: 0 });
  expect((await readdir(out)).sort()).toEqual(["boot.ipxe", "initramfs.img", "vmlinuz"]);
  expect(await readFile(join(out, "vmlinuz"), "utf8")).toBe("kernel bytes");
  expect(await readFile(join(out, "initramfs.img"), "utf8")).toBe("initramfs bytes");
  const script = await readFile(join(out, "boot.ipxe"), "utf8");
  expect(script.startsWith("#!ipxe\n")).toBe(true);
  expect(script).toContain("\ninitrd initramfs.img\nboot\n");
  const kernelLine = script.split("\n").find((line) => line.startsWith("kernel vmlinuz "));
  expect(kernelLine).toBeDefined();
  const cmdline = parseCmdline((kernelLine ?? "").slice("kernel vmlinuz ".length));
  expect(cmdline.warnings).toEqual([]);
  expect(cmdline.root).toBe("controller");
  expect(cmdline.net).toBe(true);
  const resolved = resolveConfig(cmdlineLayers(cmdline.configOverrides));
  expect(resolved.problems).toEqual([]);
  expect(resolved.config.diskless.mode).toBe("always");
  expect(resolved.config.update).toMatchObject({ servers: ["http://10.0.2.100:8080/", "https://mirror.example.org/lab/"], trusted_keys: [KEY, OTHER_KEY], channel: "lab" });
});

test("bad arguments are refused, each naming what it got and what was expected", () => {
  const out = join(work, "never");
  const cases: [string[], string][] = [
    [["--key", KEY, out], "no --server: a diskless machine boots only what an update server publishes"],
    [["--server", "http://x/", out], "no --key: a diskless machine boots only what a trusted key signed"],
    [["--server", "ftp://x/", "--key", KEY, out], "Cannot use --server ftp://x/: expected an http:// or https:// base URL"],
    [["--server", 'http://x/"a', "--key", KEY, out], 'Cannot use --server http://x/"a: expected'],
    [["--server", "http://x/${a}", "--key", KEY, out], "Cannot use --server http://x/${a}: expected"],
    [["--server", "http://x/", "--key", "short", out], "Cannot use --key short: expected a .pub file from `controller keygen` or a base64 ed25519 public key (44 characters), got short"],
    [["--server", "http://x/", "--key", KEY, "--channel", "Stable", out], 'Cannot use --channel Stable: expected lowercase letters, digits, ".", "_" or "-", at most 64'],
    [["--server", "http://x/", "--key", KEY, "--kernel", join(work, "missing"), out], `no kernel at ${join(work, "missing")}`],
    [["--server", "http://x/", "--key", KEY, "--append", "x".repeat(2100), out], "the kernel command line would have"],
    [["--server", "http://x/", "--key", KEY, "--frobnicate", out], "unknown option --frobnicate"],
    [["--server", "http://x/", "--key", KEY, out, "second"], `one OUT_DIR only, got ${out} and second`],
    [["--server"], "--server needs a value"],
  ];
  for (const [args, message] of cases) {
    const result = run(...args);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(message);
  }
  expect(run("--server", "http://x/", "--key", KEY).exitCode).toBe(2);
  // 13 runs of a bash script: a busy 2-core machine takes more than the default 5 s
}, 30_000);
