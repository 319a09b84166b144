// `controller check-config` as a person runs it (through bun, not the compiled binary).

import { expect, test } from "bun:test";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { encodePublicKey, generateKeyPair } from "../../../controller/update/signing.ts";
import { controller } from "../../run-controller.ts";

test("check-config: the shipped config.d is clean; a bad folder gets every problem and exit status 1", async () => {
  const shippedDir = resolve(import.meta.dir, "../../../config.d");
  const shipped = await controller("check-config", shippedDir);
  expect(shipped.code).toBe(0);
  expect(shipped.stdout).toContain(`${(await readdir(shippedDir)).length} config files, 0 rejected`);

  const dir = await mkdtemp(join(tmpdir(), "check-config-"));
  try {
    await writeFile(join(dir, "10-bad.toml"), '[timeouts]\ndevices_seconds = "ten"\n[nope]\n');
    await writeFile(join(dir, "20-syntax.toml"), "[boot\n");
    const bad = await controller("check-config", dir);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${dir}/10-bad.toml: key timeouts.devices_seconds: expected an integer from 1 to 3600`);
    expect(bad.stdout).toContain(`${dir}/10-bad.toml: `);
    expect(bad.stdout).toContain("nope");
    expect(bad.stdout).toContain(`${dir}/20-syntax.toml: TOML syntax error at line 1`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  expect((await controller("check-config")).code).toBe(2);
  expect(await controller("check-config", "/nonexistent/config.d")).toMatchObject({ code: 1, stdout: expect.stringContaining("no such folder") });
});

// A config.d whose update.trusted_keys holds a key that is spelled right but
// must never be trusted: a small-order point makes a forged signature valid
// for any bytes.
test("a small-order or non-canonical trusted key is a problem naming the file, the key and why; the good key beside it is not", async () => {
  const identity = Buffer.alloc(32);
  identity[0] = 1;
  const weak = identity.toString("base64");
  const nonCanonical = Buffer.from(`ed${"ff".repeat(30)}7f`, "hex").toString("base64");
  const good = encodePublicKey(generateKeyPair().publicKey);
  const dir = await mkdtemp(join(tmpdir(), "check-config-keys-"));
  try {
    await writeFile(join(dir, "50-keys.toml"), `[update]\ntrusted_keys = ["${good}", "${weak}", "${nonCanonical}"]\n`);
    const checked = await controller("check-config", dir);
    expect(checked.code).toBe(1);
    expect(checked.stdout).toContain(
      `${dir}/50-keys.toml: key update.trusted_keys[1]: Cannot use the public key "${weak}": it is a small-order point (order 1): a forged signature would verify for any bytes`,
    );
    expect(checked.stdout).toContain(`${dir}/50-keys.toml: key update.trusted_keys[2]: Cannot use the public key "${nonCanonical}": it is not canonical`);
    expect(checked.stdout).not.toContain("trusted_keys[0]");
    // the file itself is read, not rejected: at boot its good key still counts
    expect(checked.stdout).toContain("1 config file, 0 rejected");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 30_000);
