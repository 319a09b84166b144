// `controller publish` and `verify` as a person runs them, with images that
// carry their kernel or not: what is printed on stdout and stderr, and the
// exit status.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fakeBzImage } from "../../bzimage.ts";
import { controller } from "../../run-controller.ts";
import { makeSquashfs } from "../../squashfs-image.ts";

/** Each test starts bun several times: seconds on a busy 2-core machine. */
const CLI_TIMEOUT_MS = 30_000;
const RELEASE = "6.1.0-57-amd64";
const KERNEL = fakeBzImage({ text: `${RELEASE} (me@host) #1 SMP\u0000` });

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "publish-cli-"));
  expect((await controller("keygen", join(dir, "lab"))).code).toBe(0);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function publishArgs(repo: string, image: string, version: string): string[] {
  return ["publish", "--repo", repo, "--channel", "stable", "--version", version, "--image", image, "--key", join(dir, "lab.secret")];
}

test("an image with its kernel: what was signed is printed, and verify checks it in the image", async () => {
  const repo = join(dir, "repo-kernel");
  const image = join(dir, "kernel.squashfs");
  await makeSquashfs(image, { "boot/vmlinuz": KERNEL, "boot/initrd.img": "initrd", [`lib/modules/${RELEASE}/modules.dep`]: "" });
  const published = await controller(...publishArgs(repo, image, "1.0"));
  expect(published).toMatchObject({ code: 0, stderr: "" });
  expect(published.stdout.split("\n").slice(1)).toEqual([
    `Signed the image's kernel ${RELEASE} (#1 SMP): /boot/vmlinuz, ${KERNEL.length} bytes, and its initrd /boot/initrd.img, 6 bytes; ` +
      "manifest format 2 (controllers older than it refuse it and keep booting what they have)",
    "",
  ]);
  const verified = await controller("verify", "--repo", repo, "--channel", "stable", "--key", join(dir, "lab.pub"));
  expect(verified).toMatchObject({ code: 0, stdout: expect.stringContaining("checked 2 files and the kernel and initrd in the image\n") });
}, CLI_TIMEOUT_MS);

test("kernel and modules that disagree: exit status 1, the problem on stderr, nothing in the repository", async () => {
  const repo = await mkdtemp(join(dir, "repo-refused-"));
  const image = join(dir, "disagree.squashfs");
  await makeSquashfs(image, { "boot/vmlinuz": KERNEL, "boot/initrd.img": "initrd", "lib/modules/6.1.0-56-amd64/modules.dep": "" });
  expect(await controller(...publishArgs(repo, image, "1.0"))).toEqual({
    code: 1,
    stdout: "",
    stderr: `Cannot publish the image ${image}: the kernel is ${RELEASE} but the image has no /lib/modules/${RELEASE} (its modules are for 6.1.0-56-amd64): the kernel and the modules disagree\n`,
  });
  expect(await readdir(repo)).toEqual([]);
}, CLI_TIMEOUT_MS);

test("an image with neither kernel nor modules: published as format 1, with the warning on stderr", async () => {
  const image = join(dir, "bare.squashfs");
  await makeSquashfs(image, { "etc/hostname": "lab\n" });
  const published = await controller(...publishArgs(join(dir, "repo-bare"), image, "1.0"));
  expect(published.code).toBe(0);
  expect(published.stderr).toStartWith(`WARNING: ${image}: the image has no /boot/vmlinuz, /vmlinuz or /boot/vmlinuz-KVER and no /lib/modules at all: it boots on whatever kernel the machine runs; its modules will be missing`);
  expect(published.stdout).toContain("No kernel signed: the image has no /boot/vmlinuz, /vmlinuz or /boot/vmlinuz-KVER; manifest format 1, as before");
}, CLI_TIMEOUT_MS);
