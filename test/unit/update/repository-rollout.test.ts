// Rollouts in waves on a real repository (issue 17): publish --rollout writes
// format 3 with the share, `rollout` signs the channel's manifest again with
// another share (everything else as it was), verify shows it; and the two
// commands as a person runs them.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { manifestPath, parseManifest, signaturePath } from "../../../controller/update/manifest.ts";
import { keygen, publish, type PublishOptions, setRollout, verifyRepo } from "../../../controller/update/repository.ts";
import { sha512Hex, verifySignature } from "../../../controller/update/signing.ts";
import { controller } from "../../run-controller.ts";
import { makeSquashfs } from "../../squashfs-image.ts";

const NOW = new Date("2026-11-23T10:00:00.000Z");
const LATER = new Date("2026-11-30T10:00:00.000Z");
/** Each CLI test starts bun several times: seconds on a busy 2-core machine. */
const CLI_TIMEOUT_MS = 30_000;

let dir: string;
let publicKey: string;
let secretKeyFile: string;
let image: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "repo-rollout-test-"));
  publicKey = await keygen(join(dir, "signing"));
  secretKeyFile = join(dir, "signing.secret");
  image = join(dir, "system.squashfs");
  await makeSquashfs(image, { "lib/modules/6.1.0-57-amd64/modules.dep": "" }, { padTo: 5004 });
  await writeFile(join(dir, "50-fleet.toml"), "[timeouts]\ndevices_seconds = 40\n");
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function options(repo: string, overrides: Partial<PublishOptions> = {}): PublishOptions {
  return { repo, channel: "stable", version: "2.0", image, fleetConfig: [join(dir, "50-fleet.toml")], machineConfig: [], expiresInDays: 30, secretKeyFile, now: NOW, ...overrides };
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
    const repo = await mkdtemp(join(dir, "repo-"));
    const result = await publish(options(repo, { rolloutPercent: 10 }));
    if (!result.ok) throw new Error(result.problems.join("\n"));
    expect(result.manifest).toMatchObject({ format: 3, version: "2.0", rollout: { percent: 10 } });
    expect(result.notes).toContain(
      "Version 2.0 is rolled out to 10 % of channel stable's machines (each placed by its machine-id): manifest format 3; " +
        "controllers older than it refuse it and boot what they have until the rollout reaches 100 %",
    );
    const check = await verifyRepo({ repo, channel: "stable", trustedKeys: [publicKey], now: NOW });
    expect(check.problems).toEqual([]);
    expect(check.summary).toContain("version 2.0 of channel stable, rolled out to 10 % of machines, signed by");
  });

  test("at 100 % there is no rollout key: format 1, as every controller reads", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    const result = await publish(options(repo, { rolloutPercent: 100 }));
    if (!result.ok) throw new Error(result.problems.join("\n"));
    expect(result.manifest.format).toBe(1);
    expect(Object.keys(await manifestJson(repo))).not.toContain("rollout");
  });

  test("a share outside 0 to 100 is refused, nothing written", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    const result = await publish(options(repo, { rolloutPercent: 101 }));
    expect(result).toMatchObject({ ok: false, problems: ["Cannot publish with --rollout 101: expected a number from 0 to 100 (the share of the channel's machines that take this version)"] });
  });
});

describe("rollout: the channel's manifest signed again with another share", () => {
  test("raising the share keeps the version, times, image and config; only format and rollout change, and the new bytes are signed", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    await publish(options(repo, { rolloutPercent: 10 }));
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
    const repo = await mkdtemp(join(dir, "repo-"));
    await publish(options(repo, { rolloutPercent: 0 }));
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
    const repo = await mkdtemp(join(dir, "repo-"));
    expect(await setRollout({ repo, channel: "stable", percent: 50, secretKeyFile, now: NOW })).toMatchObject({
      ok: false,
      problems: [`${join(repo, manifestPath("stable"))}: Cannot change the rollout of channel stable: there is no manifest (publish a version first)`],
    });
    await publish(options(repo, { rolloutPercent: 10 }));
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

describe("the commands", () => {
  test("publish --rollout, rollout --percent, verify; usage errors exit with 2", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
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
