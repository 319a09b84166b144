// blank-disk's --config files: read and checked by the controller's own
// parser before anything is written, each refusal naming the file.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSiteConfig } from "../../../../scripts/disk/site-config.ts";

const dir = await mkdtemp(join(tmpdir(), "site-config-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe("readSiteConfig", () => {
  test("valid files keep their names and text, in the order given", async () => {
    const boot = await file("30-boot.toml", '[boot]\nkernel_switch = "reboot"\n');
    const site = await file("50-site.toml", '[tmpfs."/var/log"]\nsize = "32m"\n');
    expect(await readSiteConfig([boot, site])).toEqual([
      { name: "30-boot.toml", text: '[boot]\nkernel_switch = "reboot"\n' },
      { name: "50-site.toml", text: '[tmpfs."/var/log"]\nsize = "32m"\n' },
    ]);
    expect(await readSiteConfig([])).toEqual([]);
  });

  test("a value the controller would reject names the file and the key", async () => {
    const bad = await file("31-bad.toml", '[boot]\nkernel_switch = "sometimes"\n');
    await expect(readSiteConfig([bad])).rejects.toThrow(`Cannot use --config ${bad}: 31-bad.toml: key boot.kernel_switch: expected one of "kexec", "reboot" or "off", got "sometimes"`);
  });

  test("blank-disk's own file name, a name that is not .toml, the same name twice, a file that is not there", async () => {
    const own = await file("60-update.toml", "[update]\n");
    await expect(readSiteConfig([own])).rejects.toThrow("blank-disk writes config.d/60-update.toml itself (servers and keys); give the file another name");
    const conf = await file("site.conf", "[boot]\n");
    await expect(readSiteConfig([conf])).rejects.toThrow(`Cannot use --config ${conf}: expected a .toml file (the controller reads only config.d/*.toml)`);
    const boot = await file("32-boot.toml", "[boot]\n");
    await expect(readSiteConfig([boot, boot])).rejects.toThrow("another --config file is also named 32-boot.toml");
    await expect(readSiteConfig([join(dir, "missing.toml")])).rejects.toThrow(`Cannot read --config ${join(dir, "missing.toml")}: `);
  });
});
