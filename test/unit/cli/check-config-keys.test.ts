// `controller check-config` on a config.d whose update.trusted_keys holds a
// key that is spelled right but must never be trusted: a small-order point
// makes a forged signature valid for any bytes.

import { expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodePublicKey, generateKeyPair } from "../../../controller/update/signing.ts";
import { controller } from "../../run-controller.ts";

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
