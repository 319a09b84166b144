// The initramfs images scripts/build-initramfs made with a default dracut run
// (stripping on): the controller inside must still be the controller.

import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../../qemu-harness/command.ts";
import { ARTIFACTS, initramfsCpio, requireArtifacts } from "./fixtures.ts";

// Listing a 95 MB initramfs takes seconds, more on a busy 2-core machine than bun's 5 s default.
setDefaultTimeout(60_000);


beforeAll(requireArtifacts);

async function sha256(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update(await Bun.file(path).arrayBuffer());
  return hasher.digest("hex");
}

async function version(binary: string): Promise<string> {
  await chmod(binary, 0o755);
  const child = Bun.spawn([binary, "version"], { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return `${out}${err}`.trim();
}

describe.each(["shell", "systemd"] as const)("the %s initramfs", (flavour) => {
  test("holds the controller byte for byte, installed without execute bits so dracut's strip passed it by", async () => {
    const dir = await mkdtemp(join(tmpdir(), "initramfs-"));
    try {
      const listing = await initramfsCpio(flavour, "-t -v usr/bin/controller");
      expect(listing).toMatch(/^-rw-r--r-- /);
      const extracted = join(dir, "controller");
      await initramfsCpio(flavour, `-i --to-stdout usr/bin/controller > '${extracted}'`);
      expect(await sha256(extracted)).toBe(await sha256(ARTIFACTS.controller));
      expect(await version(extracted)).toStartWith("controller ");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("holds the module's hooks and the baked-in config.d", async () => {
    const files = (await initramfsCpio(flavour, "-t")).split("\n");
    expect(files).toContain("usr/lib/dracut/hooks/cmdline/90-controller-cmdline.sh");
    // the hashing threads dlopen it (controller/system/hash-worker.ts)
    expect(files.some((file) => file.endsWith("/libcrypto.so.3"))).toBe(true);
    expect(files).toContain("usr/lib/dracut/hooks/mount/90-controller-mount.sh");
    expect(files).toContain("etc/controller/config.d/10-labels.toml");
    const systemdParts = ["usr/lib/systemd/system-generators/controller-generator", "usr/lib/systemd/system/initrd-switch-root.service.d/90-controller.conf"];
    for (const part of systemdParts) expect(files.includes(part)).toBe(flavour === "systemd");
  });
});

test("stripping the controller the way dracut does turns it back into plain bun: the reason for the module's care", async () => {
  const dir = await mkdtemp(join(tmpdir(), "strip-"));
  try {
    const copy = join(dir, "controller");
    await Bun.write(copy, Bun.file(ARTIFACTS.controller));
    expect(await version(copy)).toStartWith("controller ");
    // dracut runs `strip -g -p` over every executable file it finds
    await runCommand(["strip", "-g", "-p", copy]);
    expect(await version(copy)).not.toStartWith("controller ");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
