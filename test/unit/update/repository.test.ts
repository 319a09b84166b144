// keygen, publish, rollout and verify on real files in a temp folder, and the
// commands as a person runs them.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { manifestPath, parseManifest, signaturePath } from "../../../controller/update/manifest.ts";
import { keygen, publish, type PublishOptions, readRegularFile, resignManifest, setRollout, signFiles, verifyManifestFiles, verifyRepo } from "../../../controller/update/repository.ts";
import { decodeSecretKey, sha512Hex, signContent, verifySignature } from "../../../controller/update/signing.ts";
import { controller } from "../../run-controller.ts";
import { makeSquashfs } from "../../squashfs-image.ts";

const NOW = new Date("2026-11-23T10:00:00.000Z");
/** Each CLI test starts bun several times: seconds on a busy 2-core machine. */
const CLI_TIMEOUT_MS = 30_000;

let dir: string;
let publicKey: string;
let secretKeyFile: string;
let image: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "repo-test-"));
  publicKey = await keygen(join(dir, "signing"));
  secretKeyFile = join(dir, "signing.secret");
  image = join(dir, "system.squashfs");
  // publish looks inside the image: modules and no kernel, so format 1 and no warning, 5004 bytes as the tests below expect
  await makeSquashfs(image, { "lib/modules/6.1.0-57-amd64/modules.dep": "" }, { padTo: 5004 });
  await writeFile(join(dir, "50-fleet.toml"), "[timeouts]\ndevices_seconds = 40\n");
  await writeFile(join(dir, "60-lab.toml"), "[timeouts]\ncommand_seconds = 60\n");
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fresh, empty repository folder. */
async function newRepo(): Promise<string> {
  return mkdtemp(join(dir, "repo-"));
}

function options(repo: string, overrides: Partial<PublishOptions> = {}): PublishOptions {
  return {
    repo,
    channel: "stable",
    version: "1.0.0",
    image,
    fleetConfig: [join(dir, "50-fleet.toml")],
    machineConfig: [{ mac: "52:54:00:12:34:56", files: [join(dir, "60-lab.toml")] }],
    expiresInDays: 30,
    secretKeyFile,
    now: NOW,
    ...overrides,
  };
}

async function published(repo: string, overrides: Partial<PublishOptions> = {}) {
  const result = await publish(options(repo, overrides));
  if (!result.ok) throw new Error(`expected a publish, got ${result.problems.join("\n")}`);
  return result;
}

async function problemsOfPublish(repo: string, overrides: Partial<PublishOptions>): Promise<readonly string[]> {
  const result = await publish(options(repo, overrides));
  if (result.ok) throw new Error("expected a refused publish");
  return result.problems;
}

function verify(repo: string, now = NOW, trustedKeys = [publicKey]) {
  return verifyRepo({ repo, channel: "stable", trustedKeys, now });
}

describe("keygen", () => {
  test("writes a 0600 secret key and the public key; never overwrites", async () => {
    const prefix = join(dir, "k");
    const key = await keygen(prefix);
    expect((await stat(`${prefix}.secret`)).mode & 0o777).toBe(0o600);
    expect((await readFile(`${prefix}.pub`, "utf8"))).toBe(`${key}\n`);
    expect(key).toHaveLength(44);
    const secret = await readFile(`${prefix}.secret`, "utf8");
    await expect(keygen(prefix)).rejects.toThrow(`Cannot write a new key pair: ${prefix}.secret already exists`);
    expect(await readFile(`${prefix}.secret`, "utf8")).toBe(secret);
  });

  test("a leftover public key file alone is not replaced either", async () => {
    const prefix = join(dir, "pubonly");
    await writeFile(`${prefix}.pub`, "old\n");
    await expect(keygen(prefix)).rejects.toThrow(`${prefix}.pub already exists`);
    await expect(stat(`${prefix}.secret`)).rejects.toThrow();
  });
});

describe("publish", () => {
  test("content-addressed files, the signature, then the manifest; verifyRepo finds nothing wrong", async () => {
    const repo = await newRepo();
    const result = await published(repo);
    expect(result.warnings).toEqual([]);
    expect(result.publicKey).toBe(publicKey);
    const bytes = await readFile(join(repo, "channels/stable/manifest.json"));
    expect(new TextDecoder().decode(bytes)).toBe(`${JSON.stringify(result.manifest, null, 2)}\n`);
    const { manifest } = result;
    expect(manifest).toMatchObject({ format: 1, channel: "stable", version: "1.0.0", created: "2026-11-23T10:00:00.000Z", expires: "2026-12-23T10:00:00.000Z" });
    const imageBytes = await readFile(image);
    expect(manifest.image).toEqual({
      url: `images/${sha512Hex(imageBytes)}.squashfs`,
      size: imageBytes.length,
      sha512: sha512Hex(imageBytes),
      format: "squashfs",
      // one short chunk: the image is smaller than a chunk; its sha256 for CPUs that hash sha256 in hardware
      chunks: { size: 8 << 20, sha512: [sha512Hex(imageBytes)], sha256: [createHash("sha256").update(imageBytes).digest("hex")] },
      // one content-defined chunk too (repository-index.test.ts has images of many)
      index: { url: expect.stringMatching(/^images\/[0-9a-f]{128}\.index$/), size: 72, sha512: expect.stringMatching(/^[0-9a-f]{128}$/) },
    });
    expect(await readFile(join(repo, manifest.image.url))).toEqual(imageBytes);
    expect(manifest.config.fleet.map((file) => file.name)).toEqual(["50-fleet.toml"]);
    expect(manifest.config.machines).toEqual([{ mac: "52:54:00:12:34:56", files: [expect.objectContaining({ name: "60-lab.toml", size: 32 })] }]);
    const signature = await readFile(join(repo, `channels/stable/signatures/${sha512Hex(bytes)}.sig`), "utf8");
    expect(signature).toStartWith("controller-signature 2\npurpose manifest\ntarget stable\nexpires 2026-12-23T10:00:00.000Z\nsignature ");
    const forManifest = { purpose: "manifest", target: "stable", now: NOW } as const;
    expect(verifySignature(bytes, signature, [publicKey], forManifest)).toEqual({
      ok: true,
      key: publicKey,
      claims: { purpose: "manifest", target: "stable", expires: "2026-12-23T10:00:00.000Z" },
    });
    // no temp files left behind
    for (const folder of ["images", "config", "channels/stable", "channels/stable/signatures"]) {
      expect((await readdir(join(repo, folder))).filter((name) => name.startsWith("."))).toEqual([]);
    }
    const check = await verify(repo);
    expect(check.problems).toEqual([]);
    expect(check.summary).toBe(
      `${repo}/channels/stable/manifest.json: version 1.0.0 of channel stable, signed by ${publicKey}, expires 2026-12-23T10:00:00.000Z; checked 4 files`,
    );
  });

  test("a version not greater than the current one is refused, naming both", async () => {
    const repo = await newRepo();
    await published(repo, { version: "1.2.0" });
    for (const version of ["1.2.0", "1.2", "1.1.9"]) {
      expect(await problemsOfPublish(repo, { version })).toEqual([
        `Cannot publish version ${version} to channel stable: it is not greater than the channel's current version 1.2.0 ` +
          "(machines refuse to go down and ignore the same version again; to roll back, publish the old image under a new version)",
      ]);
    }
    // another channel has its own versions
    await published(repo, { version: "1.0.0", channel: "beta" });
  });

  test("manifest.json is replaced last: the first manifest's signature stays and still verifies", async () => {
    const repo = await newRepo();
    await published(repo, { version: "1.0.0" });
    const first = await readFile(join(repo, "channels/stable/manifest.json"));
    await published(repo, { version: "1.1.0", now: new Date(NOW.getTime() + 1000) });
    const second = await readFile(join(repo, "channels/stable/manifest.json"));
    expect(second).not.toEqual(first);
    // a client (or a cache) that fetched the first manifest still finds its signature
    const firstSignature = await readFile(join(repo, `channels/stable/signatures/${sha512Hex(first)}.sig`), "utf8");
    expect(verifySignature(first, firstSignature, [publicKey], { purpose: "manifest", target: "stable", now: NOW }).ok).toBe(true);
    expect(await readdir(join(repo, "channels/stable/signatures"))).toHaveLength(2);
    expect((await verify(repo)).problems).toEqual([]);
  });

  test("config file names that would leave config.d, or clash, are refused before anything is written", async () => {
    const repo = await newRepo();
    const names = [".hidden.toml", "x.conf", "-x.toml"];
    for (const name of names) await writeFile(join(dir, name), "");
    const problems = await problemsOfPublish(repo, {
      fleetConfig: [...names.map((name) => join(dir, name)), join(dir, "50-fleet.toml"), join(dir, "50-fleet.toml")],
    });
    expect(problems).toEqual([
      ...names.map(
        (name) =>
          `Cannot publish ${join(dir, name)} in the fleet config: its name ${JSON.stringify(name)} is not a config.d file name ` +
          '(a letter or digit, then letters, digits, ".", "_" or "-", ending in .toml; at most 128 characters)',
      ),
      `Cannot publish ${join(dir, "50-fleet.toml")} in the fleet config: ${join(dir, "50-fleet.toml")} has the same name 50-fleet.toml, and config.d holds one file per name`,
    ]);
    expect(await readdir(repo)).toEqual([]);
  });

  test("config that a machine would reject is refused, with the machine's problem", async () => {
    const repo = await newRepo();
    await writeFile(join(dir, "70-bad.toml"), "[timeouts]\ndevices_seconds = 'ten'\n");
    expect(await problemsOfPublish(repo, { machineConfig: [{ hostname: "lab-07", files: [join(dir, "70-bad.toml")] }] })).toEqual([
      `Cannot publish the config of hostname lab-07: ${join(dir, "70-bad.toml")}: key timeouts.devices_seconds: expected an integer from 1 to 3600, got "ten"`,
    ]);
  });

  test("config setting keys a machine takes from its own config only is published with a warning naming the file and each key", async () => {
    const repo = await newRepo();
    await writeFile(join(dir, "70-own.toml"), '[update]\ntrusted_keys = []\nmachine_name = "lab-07"\n[fleet]\nserver = "https://evil.example/"\nca_bundle = ""\n');
    await writeFile(join(dir, "71-fleet.toml"), '[fleet]\ntoken_file = "/etc/other-token"\n');
    const result = await published(repo, {
      fleetConfig: [join(dir, "50-fleet.toml"), join(dir, "70-own.toml")],
      machineConfig: [{ hostname: "lab-07", files: [join(dir, "71-fleet.toml")] }],
    });
    expect(result.warnings).toEqual([
      `${join(dir, "70-own.toml")} in the fleet config sets update.trusted_keys, update.machine_name, fleet.server, fleet.ca_bundle: machines ignore these keys from an update server and keep their own config.d's values (set them in the initramfs's or BOOTEXT's config.d)`,
      `${join(dir, "71-fleet.toml")} in the config of hostname lab-07 sets fleet.token_file: machines ignore this key from an update server and keep their own config.d's values (set them in the initramfs's or BOOTEXT's config.d)`,
    ]);
    // a fleet config setting none of them (50-fleet.toml) warns of nothing
    expect((await published(await newRepo())).warnings).toEqual([]);
  });

  test("oversized and missing config files", async () => {
    const repo = await newRepo();
    await writeFile(join(dir, "80-big.toml"), `# ${"x".repeat(70000)}\n`);
    expect(await problemsOfPublish(repo, { fleetConfig: [join(dir, "80-big.toml"), join(dir, "90-none.toml")] })).toEqual([
      `Cannot publish ${join(dir, "80-big.toml")} in the fleet config: it is 70003 bytes, expected at most 65536`,
      `Cannot publish ${join(dir, "90-none.toml")} in the fleet config: there is no such file`,
    ]);
  });

  test("bad options: channel, version, expiry, MAC, hostname, image, key", async () => {
    const repo = await newRepo();
    expect(await problemsOfPublish(repo, { channel: "../x", version: "v2", expiresInDays: 0 })).toEqual([
      'Cannot publish to channel "../x": expected a lowercase letter or digit, then up to 63 of them or ".", "_", "-"',
      'Cannot publish version "v2": expected a version such as "1.2.0" (1 to 4 dot-separated numbers of at most 9 digits, no leading zeros)',
      "Cannot publish with --expires-days 0: expected an integer from 1 to 3650",
    ]);
    await writeFile(join(dir, "not-squashfs.img"), "\x7fELF....");
    expect(
      await problemsOfPublish(repo, {
        image: join(dir, "not-squashfs.img"),
        machineConfig: [{ mac: "52:54:00:12:34", files: [] }, { hostname: "lab_07", files: [] }],
      }),
    ).toEqual([
      `Cannot publish the image ${join(dir, "not-squashfs.img")}: expected a squashfs image (a file that starts with "hsqs")`,
      "Cannot publish the config of mac 52:54:00:12:34: expected a MAC address such as 52:54:00:12:34:56",
      'Cannot publish the config of hostname lab_07: expected a hostname such as "lab-07" or "lab-07.example.org"',
    ]);
    expect(await problemsOfPublish(repo, { image: dir })).toEqual([`Cannot publish the image ${dir}: expected a squashfs image (a file that starts with "hsqs")`]);
    expect(await problemsOfPublish(repo, { image: join(dir, "none.squashfs"), secretKeyFile: join(dir, "none.secret") })).toEqual([
      `Cannot read the secret key: there is no ${join(dir, "none.secret")}`,
      `Cannot publish the image ${join(dir, "none.squashfs")}: there is no such file`,
    ]);
    expect(await problemsOfPublish(repo, { secretKeyFile: join(dir, "signing.pub") })).toEqual([
      `Cannot read the secret key in ${join(dir, "signing.pub")}: expected base64 of 64 bytes (88 characters), as \`controller keygen\` writes`,
    ]);
    expect(await readdir(repo)).toEqual([]);
  });

  test("MACs are written in lowercase", async () => {
    const repo = await newRepo();
    const result = await published(repo, { machineConfig: [{ mac: "52:54:00:AB:CD:EF", files: [join(dir, "60-lab.toml")] }] });
    expect(result.manifest.config.machines[0]).toMatchObject({ mac: "52:54:00:ab:cd:ef" });
  });

  test("a secret key others may read is used, with a warning", async () => {
    const repo = await newRepo();
    const loose = join(dir, "loose.secret");
    await cp(secretKeyFile, loose);
    await chmod(loose, 0o644);
    expect((await published(repo, { secretKeyFile: loose })).warnings).toEqual([
      `Warning: the secret key ${loose} has mode 0644: others on this machine may read it and sign updates every machine would install; run chmod 600 ${loose}`,
    ]);
  });

  test("a manifest too large for machines is refused, and no manifest is written", async () => {
    const repo = await newRepo();
    const machineConfig = Array.from({ length: 200 }, (_, index) => ({
      hostname: `lab-${index}`,
      files: [join(dir, "60-lab.toml")],
    }));
    const problems = await problemsOfPublish(repo, { machineConfig });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^Cannot publish: the new manifest would be refused: .*manifest.json: Cannot read the manifest: it is \d+ bytes, expected at most 65536$/);
    await expect(stat(join(repo, "channels/stable/manifest.json"))).rejects.toThrow();
  });
});

describe("verifyRepo", () => {
  let repo: string;
  let manifestFile: string;
  let imagePath: string;
  beforeAll(async () => {
    repo = await newRepo();
    await published(repo);
    manifestFile = join(repo, "channels/stable/manifest.json");
    const manifest = parseManifest(await readFile(manifestFile), manifestFile);
    if (!manifest.ok) throw new Error("expected a manifest");
    imagePath = join(repo, manifest.manifest.image.url);
  });

  /** Run `check` on a copy of the repository changed by `change`. */
  async function problemsAfter(change: (copy: string) => Promise<void>, now = NOW, trustedKeys = [publicKey]): Promise<readonly string[]> {
    const copy = await newRepo();
    await cp(repo, copy, { recursive: true });
    await change(copy);
    return (await verify(copy, now, trustedKeys)).problems.map((problem) => problem.replaceAll(copy, "REPO"));
  }

  test("a tampered image: same size, other bytes", async () => {
    const imageUrl = imagePath.slice(repo.length + 1);
    const problems = await problemsAfter(async (copy) => {
      const bytes = await readFile(join(copy, imageUrl));
      bytes[100] = (bytes[100] ?? 0) ^ 1;
      await writeFile(join(copy, imageUrl), bytes);
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      new RegExp(`^REPO/${imageUrl}: expected sha512 [0-9a-f]{128} \\(image\\.sha512 in REPO/channels/stable/manifest\\.json\\), got [0-9a-f]{128}$`),
    );
  });

  test("a wrong chunk sha256 under a valid signature: found, though the sha512s all match (machines differ in which list they check)", async () => {
    const problems = await problemsAfter(async (copy) => {
      const file = join(copy, "channels/stable/manifest.json");
      const manifest = JSON.parse(await readFile(file, "utf8"));
      manifest.image.chunks.sha256[0] = "0".repeat(64);
      await writeFile(file, `${JSON.stringify(manifest, null, 2)}\n`);
      const resigned = await resignManifest({ repo: copy, channel: "stable", secretKeyFile, now: NOW });
      expect(resigned.ok).toBe(true);
    });
    const imageUrl = imagePath.slice(repo.length + 1);
    expect(problems).toEqual([
      expect.stringMatching(
        new RegExp(`^REPO/${imageUrl}: expected sha256 0{64} for bytes 0–5003 \\(image\\.chunks\\.sha256\\[0\\] in REPO/channels/stable/manifest\\.json\\), got [0-9a-f]{64}$`),
      ),
    ]);
  });

  test("a truncated, missing or replaced file", async () => {
    const imageUrl = imagePath.slice(repo.length + 1);
    expect(await problemsAfter((copy) => writeFile(join(copy, imageUrl), "hsqs"))).toEqual([
      `REPO/${imageUrl}: expected 5004 bytes (image.size in REPO/channels/stable/manifest.json), got 4`,
    ]);
    expect(await problemsAfter((copy) => rm(join(copy, imageUrl)))).toEqual([`REPO/${imageUrl}: missing, named by image.url in REPO/channels/stable/manifest.json`]);
    expect(
      await problemsAfter(async (copy) => {
        await rm(join(copy, imageUrl));
        await mkdir(join(copy, imageUrl));
      }),
    ).toEqual([`REPO/${imageUrl}: expected a regular file, named by image.url in REPO/channels/stable/manifest.json`]);
  });

  test("a flipped byte in the manifest: its signature is not there, and a copied one does not verify", async () => {
    const flip = async (copy: string): Promise<Uint8Array> => {
      const bytes = await readFile(join(copy, "channels/stable/manifest.json"));
      bytes[20] = (bytes[20] ?? 0) ^ 1;
      await writeFile(join(copy, "channels/stable/manifest.json"), bytes);
      return bytes;
    };
    const missing = await problemsAfter(async (copy) => void (await flip(copy)));
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatch(/^REPO\/channels\/stable\/signatures\/[0-9a-f]{128}\.sig: Cannot trust REPO\/channels\/stable\/manifest\.json: its signature is missing/);
    const original = sha512Hex(await readFile(manifestFile));
    const copied = await problemsAfter(async (copy) => {
      const bytes = await flip(copy);
      const signatures = join(copy, "channels/stable/signatures");
      await cp(join(signatures, `${original}.sig`), join(signatures, `${sha512Hex(bytes)}.sig`));
    });
    expect(copied[0]).toEndWith("Cannot trust REPO/channels/stable/manifest.json: the signature is not valid for the trusted key");
  });

  test("a flipped byte in the signature", async () => {
    const original = sha512Hex(await readFile(manifestFile));
    const problems = await problemsAfter(async (copy) => {
      const file = join(copy, `channels/stable/signatures/${original}.sig`);
      const text = await readFile(file, "utf8");
      const line = /^signature (.+)$/m.exec(text)?.[1] ?? "";
      const raw = Buffer.from(line, "base64");
      raw[5] = (raw[5] ?? 0) ^ 1;
      await writeFile(file, text.replace(line, raw.toString("base64")));
    });
    expect(problems).toEqual([
      `REPO/channels/stable/signatures/${original}.sig: Cannot trust REPO/channels/stable/manifest.json: the signature is not valid for the trusted key`,
    ]);
  });

  test("the wrong key, an expired manifest", async () => {
    const other = await keygen(join(dir, "other"));
    expect(await problemsAfter(async () => {}, NOW, [other])).toEqual([
      expect.stringContaining("Cannot trust REPO/channels/stable/manifest.json: the signature is not valid for the trusted key"),
    ]);
    expect(await problemsAfter(async () => {}, new Date("2026-12-23T10:00:00.000Z"))).toEqual([
      // publish signs a manifest until it expires
      expect.stringMatching(
        /^REPO\/channels\/stable\/signatures\/[0-9a-f]{128}\.sig: Cannot trust REPO\/channels\/stable\/manifest\.json: the signature expired at 2026-12-23T10:00:00\.000Z \(it is now 2026-12-23T10:00:00\.000Z\): publish a new version \(the server is frozen or replays an old manifest, or this machine's clock is wrong\)$/,
      ),
      "REPO/channels/stable/manifest.json: key expires: it expired at 2026-12-23T10:00:00.000Z and it is now 2026-12-23T10:00:00.000Z; " +
        "controllers refuse it: publish a new version",
    ]);
  });

  test("a manifest of another channel copied into this one", async () => {
    const copy = await newRepo();
    await published(copy, { channel: "beta" });
    await cp(join(copy, "channels/beta"), join(copy, "channels/stable"), { recursive: true });
    const problems = (await verify(copy)).problems;
    expect(problems).toHaveLength(2);
    expect(problems[0]).toContain("Cannot trust");
    expect(problems[0]).toContain("the signature file is for channel beta, not channel stable");
    expect(problems[1]).toBe(`${copy}/channels/stable/manifest.json: key channel: expected "stable" (the channel folder it is in), got "beta"`);
  });

  test("a channel with nothing published, or a bad channel name", async () => {
    const empty = await newRepo();
    expect(await verify(empty)).toEqual({
      problems: [`${empty}/channels/stable/manifest.json: Cannot verify channel stable: there is no manifest (nothing was published to it)`],
      summary: `${empty}/channels/stable/manifest.json: not found`,
    });
    expect((await verifyRepo({ repo: empty, channel: "../x", trustedKeys: [publicKey], now: NOW })).problems).toEqual([
      'Cannot verify channel "../x": expected a lowercase letter or digit, then up to 63 of them or ".", "_", "-"',
    ]);
  });

  test("verifyManifestFiles: a manifest and signature on their own", async () => {
    const signature = join(repo, `channels/stable/signatures/${sha512Hex(await readFile(manifestFile))}.sig`);
    const good = await verifyManifestFiles({ manifest: manifestFile, signature, trustedKeys: [publicKey], now: NOW });
    expect(good.problems).toEqual([]);
    expect(good.summary).toEndWith("; the files it names were not checked (no --repo)");
    const other = join(dir, "other-signature.sig");
    await writeFile(other, "not base64!\n");
    expect((await verifyManifestFiles({ manifest: manifestFile, signature: other, trustedKeys: [publicKey], now: NOW })).problems).toEqual([
      `${other}: Cannot trust ${manifestFile}: the signature file does not start with "controller-signature 2" (nor is it base64 of 64 bytes)`,
    ]);
    expect((await verifyManifestFiles({ manifest: join(dir, "none.json"), signature, trustedKeys: [publicKey], now: NOW })).problems).toEqual([
      `${join(dir, "none.json")}: Cannot verify it: there is no such file`,
    ]);
  });
});

// --- the commands ----------------------------------------------------------------


describe("keygen, publish and verify commands", () => {
  test("a whole round: keygen, publish, verify, refuse the same version", async () => {
    const repo = await newRepo();
    const prefix = join(dir, "cli");
    const keys = await controller("keygen", prefix);
    expect(keys.code).toBe(0);
    const key = (await readFile(`${prefix}.pub`, "utf8")).trim();
    expect(keys.stdout).toContain(`Public key, for update.trusted_keys: ${key}`);
    expect((await controller("keygen", prefix)).code).toBe(1);

    const publishArgs = [
      "publish", "--repo", repo, "--channel", "stable", "--version", "2.0", "--image", image,
      "--config", join(dir, "50-fleet.toml"),
      "--machine-config", `mac=52:54:00:AB:CD:EF:${join(dir, "60-lab.toml")}`,
      "--machine-config", `hostname=lab-07:${join(dir, "60-lab.toml")}`,
      "--key", `${prefix}.secret`,
    ];
    const first = await controller(...publishArgs);
    expect(first).toMatchObject({ code: 0, stderr: "" });
    expect(first.stdout).toStartWith(`Published version 2.0 to channel stable: ${repo}/channels/stable/manifest.json, signed by ${key}, expires `);

    const byFile = await controller("verify", "--repo", repo, "--channel", "stable", "--key", `${prefix}.pub`);
    expect(byFile).toMatchObject({ code: 0, stdout: expect.stringContaining("version 2.0 of channel stable") });
    expect((await controller("verify", "--repo", repo, "--channel", "stable", "--key", publicKey, "--key", key)).code).toBe(0);
    const wrongKey = await controller("verify", "--repo", repo, "--channel", "stable", "--key", publicKey);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stdout).toContain("the signature is not valid for the trusted key");

    const again = await controller(...publishArgs);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("Cannot publish version 2.0 to channel stable: it is not greater than the channel's current version 2.0");
  }, CLI_TIMEOUT_MS);

  test("usage errors exit with 2 and say what is wrong", async () => {
    expect(await controller("publish", "--repo", dir)).toMatchObject({ code: 2, stderr: expect.stringContaining("publish: missing --channel, --version, --image, --key") });
    expect(await controller("publish", "--bogus", "1")).toMatchObject({ code: 2, stderr: expect.stringContaining('publish: unknown argument "--bogus"') });
    expect(await controller("publish", "--repo", dir, "--repo", dir)).toMatchObject({ code: 2, stderr: expect.stringContaining("--repo may be given only once") });
    expect(await controller("publish", "--repo")).toMatchObject({ code: 2, stderr: expect.stringContaining("--repo needs a value") });
    const badMachine = await controller("publish", "--repo", dir, "--channel", "s", "--version", "1", "--image", image, "--key", "k", "--machine-config", "52:54:00:12:34:56:x.toml");
    expect(badMachine).toMatchObject({ code: 2, stderr: expect.stringContaining("expected mac=AA:BB:CC:DD:EE:FF:FILE or hostname=NAME:FILE") });
    expect(await controller("verify", "--repo", dir, "--manifest", "m", "--key", publicKey)).toMatchObject({ code: 2 });
    expect(await controller("verify", "--repo", dir, "--channel", "stable", "--key", join(dir, "none.pub"))).toMatchObject({
      code: 2,
      stderr: expect.stringContaining(`Cannot use --key ${join(dir, "none.pub")}: it is neither a base64 public key nor a readable file`),
    });
    // a secret key given as --key is refused without printing it
    const secretAsKey = await controller("verify", "--repo", dir, "--channel", "stable", "--key", secretKeyFile);
    expect(secretAsKey.code).toBe(2);
    expect(secretAsKey.stderr).not.toContain((await readFile(secretKeyFile, "utf8")).slice(0, 20));
    expect(await controller("keygen")).toMatchObject({ code: 2 });
  }, CLI_TIMEOUT_MS);
});

describe("sign", () => {
  test("--url-path: FILE.sig for that purpose and URL path, for those exact bytes only, until --expires-days", async () => {
    const script = join(dir, "command.sh");
    await writeFile(script, "echo hello\n");
    const result = await controller("sign", "--key", secretKeyFile, "--purpose", "command", "--url-path", "/lab/burn-in.sh", "--expires-days", "7", script);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Wrote ${script}\\.sig: for command /lab/burn-in\\.sh, until \\d{4}-.*Z\n$`));
    const signature = await readFile(`${script}.sig`, "utf8");
    const expires = /^expires (.+)$/m.exec(signature)?.[1] ?? "";
    // 7 days from when the command ran, give or take the run
    expect(Math.abs(Date.parse(expires) - Date.now() - 7 * 86_400_000)).toBeLessThan(600_000);
    const now = new Date();
    const bytes = await readFile(script);
    expect(verifySignature(bytes, signature, [publicKey], { purpose: "command", target: "/lab/burn-in.sh", now })).toMatchObject({ ok: true, key: publicKey });
    expect(verifySignature(new TextEncoder().encode("echo hellO\n"), signature, [publicKey], { purpose: "command", target: "/lab/burn-in.sh", now }).ok).toBe(false);
    // the same bytes, fetched from another path or for ssh keys: refused, saying why
    expect(verifySignature(bytes, signature, [publicKey], { purpose: "command", target: "/lab/other.sh", now })).toEqual({
      ok: false,
      problem: expect.stringContaining("the signature file is for URL path /lab/burn-in.sh, not URL path /lab/other.sh: it signs another file or another place"),
    });
    expect(verifySignature(bytes, signature, [publicKey], { purpose: "ssh-keys", target: "/lab/burn-in.sh", now })).toEqual({
      ok: false,
      problem: expect.stringContaining("the signature file is for purpose command, not ssh-keys"),
    });
    const later = new Date(Date.parse(expires));
    expect(verifySignature(bytes, signature, [publicKey], { purpose: "command", target: "/lab/burn-in.sh", now: later })).toEqual({
      ok: false,
      problem: `the signature expired at ${expires} (it is now ${later.toISOString()}): re-sign it with \`controller sign --key KEY --purpose command --url-path /lab/burn-in.sh FILE\``,
    });
  }, CLI_TIMEOUT_MS);

  test("--served-root: each file's URL path is its path under the folder the server serves", async () => {
    const root = join(dir, "www");
    await mkdir(join(root, "lab"), { recursive: true });
    const script = join(root, "lab", "run me.sh");
    const keys = join(root, "authorized_keys");
    await writeFile(script, "true\n");
    await writeFile(keys, "ssh-ed25519 AAAA admin\n");
    const result = await signFiles({ secretKeyFile, files: [script, keys], signFor: { purpose: "ssh-keys", servedRoot: root }, expiresInDays: 30, now: NOW });
    expect(result.problems).toEqual([]);
    // as the machine's URL parser spells the path of http://server/lab/run%20me.sh
    expect(result.signed.map((signed) => signed.claims.target)).toEqual([new URL("http://server/lab/run me.sh").pathname, "/authorized_keys"]);
    expect(result.signed[1]?.claims.expires).toBe("2026-12-23T10:00:00.000Z");
    const outside = await signFiles({ secretKeyFile, files: [join(dir, "50-fleet.toml")], signFor: { purpose: "ssh-keys", servedRoot: root }, expiresInDays: 30, now: NOW });
    expect(outside.problems).toEqual([`Cannot sign ${join(dir, "50-fleet.toml")}: it is not inside the served root ${root} (--served-root), so its URL path is unknown`]);
    const several = await signFiles({ secretKeyFile, files: [script, keys], signFor: { purpose: "command", urlPath: "/x.sh" }, expiresInDays: 30, now: NOW });
    expect(several.problems).toEqual([
      `Cannot sign 2 files with --url-path /x.sh: a URL path names one file (give --served-root DIR for several)`,
      `Cannot sign 2 files with --url-path /x.sh: a URL path names one file (give --served-root DIR for several)`,
    ]);
  });

  test("--purpose heddle: the update's folder name and --version are signed", async () => {
    const update = join(dir, "updates", "update7");
    await mkdir(update, { recursive: true });
    const sums = join(update, "SHA512SUMS");
    await writeFile(sums, `${"a".repeat(128)}  kernel\n`);
    const result = await controller("sign", "--key", secretKeyFile, "--purpose", "heddle", "--version", "4.2", sums);
    expect(result.code).toBe(0);
    const signature = await readFile(`${sums}.sig`, "utf8");
    expect(signature).toStartWith("controller-signature 2\npurpose heddle\ntarget update7\nversion 4.2\nexpires ");
    // the default expiry of a Heddle update is ten years
    const expires = Date.parse(/^expires (.+)$/m.exec(signature)?.[1] ?? "");
    expect(Math.abs(expires - Date.now() - 3650 * 86_400_000)).toBeLessThan(600_000);
    expect(verifySignature(await readFile(sums), signature, [publicKey], { purpose: "heddle", target: "update7", now: new Date() })).toMatchObject({
      ok: true,
      claims: { version: "4.2" },
    });
    expect((await controller("sign", "--key", secretKeyFile, "--purpose", "heddle", sums)).stderr).toContain("sign: --purpose heddle needs --version V");
    const wrongFile = await signFiles({ secretKeyFile, files: [join(dir, "50-fleet.toml")], signFor: { purpose: "heddle", version: "1" }, expiresInDays: 30, now: NOW });
    expect(wrongFile.problems).toEqual([
      `Cannot sign ${join(dir, "50-fleet.toml")} for a Heddle update: expected its SHA512SUMS file (updates/NAME/SHA512SUMS)`,
    ]);
  }, CLI_TIMEOUT_MS);

  test("a file that cannot be read is named and the others are still signed; exit status 1", async () => {
    const root = join(dir, "served");
    await mkdir(root, { recursive: true });
    const good = join(root, "good.sh");
    await writeFile(good, "true\n");
    const result = await controller("sign", "--key", secretKeyFile, "--purpose", "command", "--served-root", root, join(root, "missing.sh"), good);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`Cannot sign ${join(root, "missing.sh")}: there is no such file`);
    expect(result.stdout).toStartWith(`Wrote ${good}.sig: for command /good.sh, until `);
  }, CLI_TIMEOUT_MS);

  test("a missing secret key, a public key given as the secret, no file or no purpose: refused with what was expected", async () => {
    const file = join(dir, "unsigned.sh");
    await writeFile(file, "true\n");
    const args = ["--purpose", "command", "--url-path", "/unsigned.sh"];
    const missing = await controller("sign", "--key", join(dir, "nope.secret"), ...args, file);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`there is no ${join(dir, "nope.secret")}`);
    const wrongKey = await controller("sign", "--key", join(dir, "signing.pub"), ...args, file);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toContain(join(dir, "signing.pub"));
    expect((await controller("sign", "--key", secretKeyFile, ...args)).stderr).toContain("sign: no FILE to sign");
    const noPurpose = await controller("sign", "--key", secretKeyFile, file);
    expect(noPurpose).toMatchObject({ code: 2, stderr: expect.stringContaining("sign: --purpose is missing: expected command, ssh-keys or heddle") });
    expect((await controller("sign", file)).code).toBe(2);
    expect(await stat(`${file}.sig`).catch(() => undefined)).toBeUndefined();
  }, CLI_TIMEOUT_MS);
});

/** A repository with channel stable published, its manifest's bytes and files, and the key that signed it. */
async function publishedChannel(): Promise<{ repo: string; manifestFile: string; bytes: NonSharedBuffer; signatureFile: string; secretKey: Uint8Array }> {
  const repo = await newRepo();
  await published(repo);
  const manifestFile = join(repo, "channels/stable/manifest.json");
  const bytes = await readFile(manifestFile);
  const signatureFile = join(repo, `channels/stable/signatures/${sha512Hex(bytes)}.sig`);
  const secretKey = decodeSecretKey(await readFile(secretKeyFile, "utf8"), secretKeyFile);
  return { repo, manifestFile, bytes, signatureFile, secretKey };
}

describe("old signatures and re-signing", () => {
  test("a bare signature (the old format) is refused by verify and by the boot's check; sign --repo --channel re-signs the manifest, bytes unchanged", async () => {
    const { repo, manifestFile, bytes, signatureFile, secretKey } = await publishedChannel();
    // what publish wrote before signatures named their purpose: base64 of the ed25519 signature of the bytes
    const nacl = (await import("tweetnacl")).default;
    await writeFile(signatureFile, `${Buffer.from(nacl.sign.detached(bytes, secretKey)).toString("base64")}\n`);
    const old = await verify(repo);
    expect(old.problems).toEqual([
      `${signatureFile}: Cannot trust ${manifestFile}: the signature is in the old format (bare base64, from before signatures named their purpose, target and expiry), ` +
        "which this controller refuses: re-sign it with `controller sign --key KEY --repo DIR --channel stable`",
    ]);

    const resigned = await controller("sign", "--key", secretKeyFile, "--repo", repo, "--channel", "stable");
    expect(resigned.code).toBe(0);
    expect(resigned.stdout).toBe(`Wrote ${signatureFile}: version 1.0.0 of channel stable, until 2026-12-23T10:00:00.000Z\n`);
    expect(await readFile(manifestFile)).toEqual(bytes);
    expect(await readFile(signatureFile, "utf8")).toStartWith("controller-signature 2\npurpose manifest\ntarget stable\nexpires 2026-12-23T10:00:00.000Z\n");
    expect((await verify(repo)).problems).toEqual([]);

    // past the manifest's own expiry only a new version helps
    const late = await resignManifest({ repo, channel: "stable", secretKeyFile, now: new Date("2027-01-01T00:00:00.000Z") });
    expect(late).toMatchObject({ ok: false, problems: [`${manifestFile}: Cannot sign it again: it expired at 2026-12-23T10:00:00.000Z; publish a new version instead`] });
  }, CLI_TIMEOUT_MS);

  test("a manifest signed for another purpose (a command script's signature copied over it) does not verify", async () => {
    const { repo, manifestFile, bytes, signatureFile, secretKey } = await publishedChannel();
    await writeFile(signatureFile, signContent(bytes, secretKey, { purpose: "command", target: "/channels/stable/manifest.json", expires: "2026-12-23T10:00:00.000Z" }));
    expect((await verify(repo)).problems).toEqual([
      `${signatureFile}: Cannot trust ${manifestFile}: the signature file is for purpose command, not manifest, and URL path /channels/stable/manifest.json, not channel stable: ` +
        "it signs another file or another place; if this is the right content, re-sign it with `controller sign --key KEY --repo DIR --channel stable`",
    ]);
  });
});

describe("verify reads what a controller reads, no more", () => {
  test("a FIFO, a device or a folder in place of the manifest or signature is refused without waiting on it", async () => {
    const { repo, manifestFile, signatureFile } = await publishedChannel();
    await rm(signatureFile);
    expect(Bun.spawnSync(["mkfifo", signatureFile]).exitCode).toBe(0);
    expect((await verify(repo)).problems).toEqual([`${signatureFile}: Cannot read it: it is a FIFO, expected a regular file`]);
    const byFiles = await verifyManifestFiles({ manifest: "/dev/zero", signature: signatureFile, trustedKeys: [publicKey], now: NOW });
    expect(byFiles.problems).toEqual(["/dev/zero: Cannot read it: it is a device, expected a regular file", `${signatureFile}: Cannot read it: it is a FIFO, expected a regular file`]);
    await rm(manifestFile);
    await mkdir(manifestFile);
    expect((await verify(repo)).problems).toEqual([`${manifestFile}: Cannot read it: it is a folder, expected a regular file`]);
  }, 10_000);

  test("a manifest or signature larger than the boot's cap is refused, naming the cap; a huge file costs one capped read", async () => {
    const repo = await newRepo();
    await published(repo);
    const manifestFile = join(repo, "channels/stable/manifest.json");
    const bytes = await readFile(manifestFile);
    const signatureFile = join(repo, `channels/stable/signatures/${sha512Hex(bytes)}.sig`);
    await writeFile(signatureFile, `${await readFile(signatureFile, "utf8")}${" ".repeat(5000)}`);
    expect((await verify(repo)).problems).toEqual([`${signatureFile}: Cannot read it: it is larger than 4096 bytes (SIGNATURE_MAX_BYTES), the most a controller reads of it`]);
    // 1.5 GB, sparse: refused after reading 65537 bytes
    const huge = join(dir, "huge-manifest.json");
    const handle = await (await import("node:fs/promises")).open(huge, "w");
    await handle.truncate(1_500_000_000);
    await handle.close();
    const started = performance.now();
    expect(await readRegularFile(huge, 65536, "MANIFEST_MAX_BYTES")).toEqual({
      status: "refused",
      problem: `${huge}: Cannot read it: it is larger than 65536 bytes (MANIFEST_MAX_BYTES), the most a controller reads of it`,
    });
    expect(performance.now() - started).toBeLessThan(2000);
    await rm(huge);
  });

  test("--key: a weak public key, given as text or in a .pub file, is refused with why", async () => {
    const identity = Buffer.alloc(32);
    identity[0] = 1;
    const weak = identity.toString("base64");
    const repo = await newRepo();
    const byText = await controller("verify", "--repo", repo, "--channel", "stable", "--key", weak);
    expect(byText.code).toBe(2);
    expect(byText.stderr).toContain(`Cannot use --key: Cannot use the public key "${weak}": it is a small-order point (order 1): a forged signature would verify for any bytes`);
    const pub = join(dir, "weak.pub");
    await writeFile(pub, `${weak}\n`);
    const byFile = await controller("verify", "--repo", repo, "--channel", "stable", "--key", pub);
    expect(byFile.code).toBe(2);
    expect(byFile.stderr).toContain(`Cannot use --key ${pub}: Cannot use the public key "${weak}": it is a small-order point (order 1)`);
  }, CLI_TIMEOUT_MS);
});

// --- rollouts (issue 17) ----------------------------------------------------------

const LATER = new Date("2026-11-30T10:00:00.000Z");

/** Version 2.0 with the fleet config only, as the rollout tests publish it. */
function rollout2(repo: string, overrides: Partial<PublishOptions> = {}): PublishOptions {
  return options(repo, { version: "2.0", machineConfig: [], ...overrides });
}

async function manifestJson(repo: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(repo, manifestPath("stable")), "utf8")) as Record<string, unknown>;
}

/** The channel's manifest bytes and whether their signature verifies for the channel at `now`. */
async function signedNow(repo: string, now: Date): Promise<boolean> {
  const bytes = await readFile(join(repo, manifestPath("stable")));
  const signature = await readFile(join(repo, signaturePath("stable", sha512Hex(bytes))), "utf8");
  return verifySignature(bytes, signature, [publicKey], { purpose: "manifest", target: "stable", now }).ok;
}

describe("publish --rollout", () => {
  test("below 100 %: format 3 with the share, said on stdout; verify accepts and shows it", async () => {
    const repo = await newRepo();
    const result = await publish(rollout2(repo, { rolloutPercent: 10 }));
    if (!result.ok) throw new Error(result.problems.join("\n"));
    expect(result.manifest).toMatchObject({ format: 3, version: "2.0", rollout: { percent: 10 } });
    // what publish says of the image's kernel names the format the manifest has
    expect(result.notes).toContainEqual(expect.stringMatching(/^No kernel signed: .*; manifest format 3: it boots on the kernel each machine runs/));
    expect(result.notes).toContain(
      "Version 2.0 is rolled out to 10 % of channel stable's machines (each placed by its machine-id): manifest format 3; " +
        "controllers older than it refuse it and boot what they have until the rollout reaches 100 %",
    );
    const check = await verifyRepo({ repo, channel: "stable", trustedKeys: [publicKey], now: NOW });
    expect(check.problems).toEqual([]);
    expect(check.summary).toContain("version 2.0 of channel stable, rolled out to 10 % of machines, signed by");
  });

  test("at 100 % there is no rollout key: format 1, as every controller reads", async () => {
    const repo = await newRepo();
    const result = await publish(rollout2(repo, { rolloutPercent: 100 }));
    if (!result.ok) throw new Error(result.problems.join("\n"));
    expect(result.manifest.format).toBe(1);
    expect(Object.keys(await manifestJson(repo))).not.toContain("rollout");
  });

  test("a share outside 0 to 100 is refused, nothing written", async () => {
    const repo = await newRepo();
    const result = await publish(rollout2(repo, { rolloutPercent: 101 }));
    expect(result).toMatchObject({ ok: false, problems: ["Cannot publish with --rollout 101: expected a number from 0 to 100 (the share of the channel's machines that take this version)"] });
  });
});

describe("rollout: the channel's manifest signed again with another share", () => {
  test("raising the share keeps the version, times, image and config; only format and rollout change, and the new bytes are signed", async () => {
    const repo = await newRepo();
    await publish(rollout2(repo, { rolloutPercent: 10 }));
    const before = await manifestJson(repo);
    const raised = await setRollout({ repo, channel: "stable", percent: 50, secretKeyFile, now: LATER });
    if (!raised.ok) throw new Error(raised.problems.join("\n"));
    expect(raised.notes[0]).toBe("It was rolled out to 10 %.");
    const after = await manifestJson(repo);
    expect(after).toEqual({ ...before, rollout: { percent: 50 } });
    expect(Object.keys(after)).toEqual(Object.keys(before));
    expect(await signedNow(repo, LATER)).toBe(true);
    expect((await verifyRepo({ repo, channel: "stable", trustedKeys: [publicKey], now: LATER })).problems).toEqual([]);
  });

  test("100 %: the rollout key goes and the format is 1 again, so older controllers take it; lowering again is format 3", async () => {
    const repo = await newRepo();
    await publish(rollout2(repo, { rolloutPercent: 0 }));
    const full = await setRollout({ repo, channel: "stable", percent: 100, secretKeyFile, now: LATER });
    if (!full.ok) throw new Error(full.problems.join("\n"));
    const json = await manifestJson(repo);
    expect(json["format"]).toBe(1);
    expect(Object.keys(json)).not.toContain("rollout");
    const parsed = parseManifest(new TextEncoder().encode(JSON.stringify(json)), "m");
    expect(parsed.ok && parsed.manifest.rollout).toBeUndefined();
    // stopping a rollout that went wrong: machines that took it keep it, the others wait
    const halted = await setRollout({ repo, channel: "stable", percent: 0, secretKeyFile, now: LATER });
    if (!halted.ok) throw new Error(halted.problems.join("\n"));
    expect(await manifestJson(repo)).toMatchObject({ format: 3, rollout: { percent: 0 } });
  });

  test("refused: a bad share, no manifest, an expired manifest; nothing written", async () => {
    const repo = await newRepo();
    expect(await setRollout({ repo, channel: "stable", percent: 50, secretKeyFile, now: NOW })).toMatchObject({
      ok: false,
      problems: [`${join(repo, manifestPath("stable"))}: Cannot change the rollout of channel stable: there is no manifest (publish a version first)`],
    });
    await publish(rollout2(repo, { rolloutPercent: 10 }));
    const bytes = await readFile(join(repo, manifestPath("stable")));
    expect(await setRollout({ repo, channel: "stable", percent: -3, secretKeyFile, now: NOW })).toMatchObject({
      ok: false,
      problems: ["Cannot change the rollout to --percent -3: expected a number from 0 to 100 (the share of the channel's machines that take this version)"],
    });
    const expired = await setRollout({ repo, channel: "stable", percent: 50, secretKeyFile, now: new Date("2027-01-01T00:00:00.000Z") });
    expect(expired).toMatchObject({
      ok: false,
      problems: [expect.stringContaining("Cannot change its rollout: it expired at 2026-12-23T10:00:00.000Z; publish a new version (with --rollout) instead")],
    });
    expect(await readFile(join(repo, manifestPath("stable")))).toEqual(bytes);
  });
});

describe("publish --rollout and rollout as a person runs them", () => {
  test("publish --rollout, rollout --percent, verify; usage errors exit with 2", async () => {
    const repo = await newRepo();
    const published = await controller("publish", "--repo", repo, "--channel", "stable", "--version", "2.0", "--image", image, "--rollout", "2.5", "--key", secretKeyFile);
    expect(published).toMatchObject({ code: 0, stderr: "" });
    expect(published.stdout).toContain("Version 2.0 is rolled out to 2.5 % of channel stable's machines");
    const raised = await controller("rollout", "--repo", repo, "--channel", "stable", "--percent", "50", "--key", secretKeyFile);
    expect(raised).toMatchObject({ code: 0, stderr: "" });
    expect(raised.stdout).toContain(`Signed ${repo}/channels/stable/manifest.json again: version 2.0 of channel stable, until `);
    expect(raised.stdout).toContain("It was rolled out to 2.5 %.");
    const verified = await controller("verify", "--repo", repo, "--channel", "stable", "--key", publicKey);
    expect(verified).toMatchObject({ code: 0, stdout: expect.stringContaining("version 2.0 of channel stable, rolled out to 50 % of machines") });
    expect(await controller("rollout", "--repo", repo, "--channel", "stable", "--percent", "half", "--key", secretKeyFile)).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('rollout: --percent "half": expected a percentage from 0 to 100 such as 50 or 2.5'),
    });
    expect(await controller("rollout", "--repo", repo)).toMatchObject({ code: 2, stderr: expect.stringContaining("rollout: missing --channel, --percent, --key") });
    expect(await controller("publish", "--repo", repo, "--channel", "stable", "--version", "3.0", "--image", image, "--rollout", "150", "--key", secretKeyFile)).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('publish: --rollout "150": expected a percentage from 0 to 100 such as 10 or 2.5'),
    });
  }, CLI_TIMEOUT_MS);
});
