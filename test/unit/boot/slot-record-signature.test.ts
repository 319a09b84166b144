// The signature a slot keeps beside its manifest (controller/manifest.sig):
// checked at every boot for purpose "manifest" and the record's own channel,
// without expiry, and still valid in the format controllers wrote before
// signatures named their purpose, so a controller upgrade does not forget
// what the slots hold.

import { expect, test } from "bun:test";
import nacl from "tweetnacl";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { signContent } from "../../../controller/update/signing.ts";
import { labMachine } from "../../fake-machine.ts";
import { EXPIRES, installedSlot, KEYS, PUBLIC_KEY, SERVER } from "../../fake-repo.ts";
import type { Tree } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

const CONFIG: Tree = { "config.d/60-update.toml": `[update]\nservers = ["${SERVER}"]\ntrusted_keys = ["${PUBLIC_KEY}"]\n` };

/** The versions the boot's slots stage verified, with SYSFS's record signed as `sign` says. */
async function slotVersions(sign: (manifest: Uint8Array) => string) {
  const sysfs = { ...installedSlot({ version: "1.0" }) };
  const manifest = new TextEncoder().encode(sysfs["controller/manifest.json"] as string);
  sysfs["controller/manifest.sig"] = sign(manifest);
  const fake = labMachine({ bootext: CONFIG, slots: { SYSFS: sysfs, BACKUPFS: installedSlot({ version: "0.9" }) } });
  const { report } = await runBoot(fake, memoryLogger().log);
  return report.update.slots.map((slot) => [slot.label, slot.version ?? slot.problem]);
}

test("a record in the old format (bare base64 over the manifest) still verifies; an expired manifest's record too", async () => {
  const old = (manifest: Uint8Array) => `${Buffer.from(nacl.sign.detached(manifest, KEYS.secretKey)).toString("base64")}\n`;
  expect(await slotVersions(old)).toEqual([["SYSFS", "1.0"], ["BACKUPFS", "0.9"]]);
  // the fake's clock is 2026-01-01; the record's signature expired long before: a record is not refused for that
  const expired = (manifest: Uint8Array) => signContent(manifest, KEYS.secretKey, { purpose: "manifest", target: "stable", expires: "2025-12-02T00:00:00.000Z" });
  expect(await slotVersions(expired)).toEqual([["SYSFS", "1.0"], ["BACKUPFS", "0.9"]]);
});

test("a record signed for another purpose or channel does not verify", async () => {
  const forCommand = (manifest: Uint8Array) => signContent(manifest, KEYS.secretKey, { purpose: "command", target: "stable", expires: EXPIRES });
  const [sysfs] = await slotVersions(forCommand);
  expect(sysfs?.[1]).toContain("the signature file is for purpose command, not manifest");
  const forBeta = (manifest: Uint8Array) => signContent(manifest, KEYS.secretKey, { purpose: "manifest", target: "beta", expires: EXPIRES });
  expect((await slotVersions(forBeta))[0]?.[1]).toContain("the signature file is for channel beta, not channel stable");
});
