// The update stages over the fake: check, server config, install, switch, and
// the slots stage that reads records and finishes a switch cut short.

import { KeptSlotMount } from "../../../controller/boot/kept-slot-mount.ts";
import { describe, expect, test } from "bun:test";
import type { NetworkResult } from "../../../controller/boot/network.ts";
import { runSwitchStage } from "../../../controller/boot/slot-switch.ts";
import { runSlotsStage } from "../../../controller/boot/slots.ts";
import { runCheckStage } from "../../../controller/boot/update-check.ts";
import { runServerConfigStage } from "../../../controller/boot/update-config.ts";
import { runInstallStage } from "../../../controller/boot/update-install.ts";
import { type Config, DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { planSwitch } from "../../../controller/plans/labels.ts";
import { planSpare } from "../../../controller/plans/spare.ts";
import { manifestPath } from "../../../controller/update/manifest.ts";
import { encodePublicKey } from "../../../controller/update/signing.ts";
import { imageBytes, installedSlot, MIRROR, OTHER_KEYS, PUBLIC_KEY, publish, SERVER, updateConfig } from "../../fake-repo.ts";
import { FakeSystem, bytesToText } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

const NETWORK_UP: NetworkResult = { status: "up", interface: "eth0", address: "10.0.2.15", mac: "52:54:00:12:34:56", macs: ["52:54:00:12:34:56"], hostname: "lab-07", detail: "lease" };

/** A machine running version 1.0 with an old backup, the given releases on the server. */
function runningMachine(): FakeSystem {
  const fake = new FakeSystem().addTree("/run", {});
  fake.addDevice({ device: "/dev/vda1", label: "SYSFS", fsType: "ext4" }, installedSlot({ version: "1.0" }));
  fake.addDevice({ device: "/dev/vda2", label: "BACKUPFS", fsType: "ext4" }, installedSlot({ version: "0.9" }));
  return fake;
}

/** The check of a machine running version 1.0 unless `installed` says otherwise. */
async function check(fake: FakeSystem, config: Config, options: { installed?: string | undefined; network?: NetworkResult } = {}) {
  const { log, sink } = memoryLogger();
  const installed = "installed" in options ? options.installed : "1.0";
  const versions = { installed, floor: installed === undefined ? undefined : { version: installed, slot: "SYSFS on /dev/vda1" } };
  const result = await runCheckStage(fake, log, config, options.network ?? NETWORK_UP, versions, config.update.trusted_keys);
  return { result, text: sink.text() };
}

describe("check stage", () => {
  test("no servers configured: nothing is asked", async () => {
    const fake = runningMachine();
    const { result } = await check(fake, DEFAULT_CONFIG);
    expect(result.decision).toBe("not-configured");
    expect(fake.httpRequests).toEqual([]);
  });

  test("no network: the local system boots, and the console says why", async () => {
    const fake = runningMachine();
    const { result, text } = await check(fake, updateConfig(), { network: { status: "down", macs: [], detail: "no lease on eth0 after 20 s" } });
    expect(result.decision).toBe("no-network");
    expect(text).toContain("no network (no lease on eth0 after 20 s): booting the local system without an update check");
    expect(fake.httpRequests).toEqual([]);
  });

  test("no trusted keys: every update would be refused, no server is asked", async () => {
    const fake = runningMachine();
    publish(fake, { version: "2.0" });
    const { result } = await check(fake, updateConfig({ trusted_keys: [] }));
    expect(result.decision).toBe("refused");
    expect(result.reason).toContain("update.trusted_keys");
    expect(fake.httpRequests).toEqual([]);
  });

  test("a newer version signed by a trusted key: install", async () => {
    const fake = runningMachine();
    publish(fake, { version: "2.0" });
    const { result } = await check(fake, updateConfig());
    expect(result.decision).toBe("install");
    expect(result.accepted?.manifest.version).toBe("2.0");
    expect(result.accepted?.key).toBe(PUBLIC_KEY);
    expect(result.attempts).toEqual([{ server: SERVER, outcome: "accepted", detail: expect.stringContaining("version 2.0") }]);
  });

  test("a machine whose SYSFS has no verified record takes any signed version", async () => {
    const fake = runningMachine();
    publish(fake, { version: "0.1" });
    const { result } = await check(fake, updateConfig(), { installed: undefined });
    expect(result.decision).toBe("install");
    expect(result.reason).toContain("installed: unknown");
  });

  test("without a gate (a diskless boot, which has no local system to stay on) neither a rollout nor the window holds an install back", async () => {
    const fake = runningMachine();
    publish(fake, { version: "2.0", rolloutPercent: 0 });
    const { result } = await check(fake, updateConfig({ download_window: "08:00-09:00" }));
    expect(result.decision).toBe("install");
  });

  test("the installed version: up to date, nothing to fetch", async () => {
    const fake = runningMachine();
    publish(fake, { version: "1.0" });
    const { result } = await check(fake, updateConfig());
    expect(result.decision).toBe("up-to-date");
    expect(fake.httpRequests.some((url) => url.includes("/images/"))).toBe(false);
  });

  test("a lower version is refused as a downgrade", async () => {
    const fake = runningMachine();
    publish(fake, { version: "0.9" });
    const { result, text } = await check(fake, updateConfig());
    expect(result.decision).toBe("refused");
    expect(text).toContain("Cannot install version 0.9 from channel stable: it is lower than the installed version 1.0");
  });

  test("an expired manifest is refused", async () => {
    const fake = runningMachine();
    publish(fake, { version: "2.0", expires: "2025-12-31T00:00:00.000Z" });
    const { result } = await check(fake, updateConfig());
    expect(result.decision).toBe("refused");
    expect(result.attempts[0]?.detail).toContain("expired at 2025-12-31T00:00:00.000Z");
  });

  test("a manifest of another channel is refused", async () => {
    const fake = runningMachine();
    publish(fake, { version: "2.0", channel: "beta" });
    const { result } = await check(fake, updateConfig());
    expect(result.decision).toBe("refused");
    // signed for channel beta: the signature already refuses it here, before the manifest's own channel is read
    expect(result.attempts[0]?.detail).toContain("the signature file is for channel beta, not channel stable");
  });

  test("a manifest signed by an unknown key is refused", async () => {
    const fake = runningMachine();
    publish(fake, { version: "2.0", signWith: OTHER_KEYS });
    const { result, text } = await check(fake, updateConfig());
    expect(result.decision).toBe("refused");
    expect(text).toContain("the signature is not valid for the trusted key");
  });

  test("a second trusted key (rotation) is accepted", async () => {
    const fake = runningMachine();
    publish(fake, { version: "2.0", signWith: OTHER_KEYS });
    const { result } = await check(fake, updateConfig({ trusted_keys: [PUBLIC_KEY, encodePublicKey(OTHER_KEYS.publicKey)] }));
    expect(result.decision).toBe("install");
  });

  test("a manifest changed after signing has no signature: refused, with the reason", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0" });
    const tampered = new Uint8Array(published.manifestBytes);
    tampered[tampered.indexOf("2".charCodeAt(0))] = "3".charCodeAt(0);
    fake.http.set(`${SERVER}${manifestPath("stable")}`, { body: tampered });
    const { result } = await check(fake, updateConfig());
    expect(result.decision).toBe("refused");
    expect(result.attempts[0]?.detail).toContain("there is no signature for these exact bytes");
  });

  test("an oversized manifest is not read past its cap", async () => {
    const fake = runningMachine();
    fake.http.set(`${SERVER}${manifestPath("stable")}`, { body: new Uint8Array(10_000_000) });
    const { result } = await check(fake, updateConfig());
    expect(result.decision).toBe("unreachable");
    expect(result.attempts[0]?.detail).toContain("more than the 65536");
  });

  test("servers in order: a down one and a refused one do not stop the next", async () => {
    const fake = runningMachine();
    const third = "http://10.0.2.102:8080/";
    publish(fake, { version: "2.0", expires: "2025-12-31T00:00:00.000Z" }, MIRROR);
    publish(fake, { version: "2.0" }, third);
    const { result } = await check(fake, updateConfig({ servers: ["http://10.0.2.99:8080/", MIRROR, third] }));
    expect(result.decision).toBe("install");
    expect(result.accepted?.server).toBe(third);
    expect(result.attempts.map((attempt) => attempt.outcome)).toEqual(["unreachable", "refused", "accepted"]);
  });

  test("no server answers: unreachable, the local system boots", async () => {
    const fake = runningMachine();
    const { result, text } = await check(fake, updateConfig());
    expect(result.decision).toBe("unreachable");
    // each server's own reason, not a timeout it never waited for: the connection was refused at once
    expect(text).toContain(`WARNING: ${SERVER}: Cannot fetch ${SERVER}channels/stable/manifest.json: ECONNREFUSED`);
    expect(text).toContain("no update server could be reached (its reason is above): booting the local system");
  });
});

describe("server-config stage", () => {
  async function accepted(fake: FakeSystem) {
    const { result } = await check(fake, updateConfig());
    if (result.accepted === undefined) throw new Error(`no manifest accepted: ${result.reason}`);
    return result.accepted;
  }

  test("fleet files and this machine's files (by MAC and its own name), verified and parsed", async () => {
    const fake = runningMachine();
    publish(fake, {
      version: "2.0",
      fleetConfig: { "50-fleet.toml": "[timeouts]\ndevices_seconds = 7\n", "60-site.toml": "[timeouts]\ncommand_seconds = 30\n" },
      machineConfig: [
        { match: { mac: "52:54:00:12:34:56" }, files: { "60-site.toml": "[timeouts]\ncommand_seconds = 40\n" } },
        { match: { hostname: "LAB-07" }, files: { "70-host.toml": "[boot]\nreal_init = \"/sbin/alt-init\"\n" } },
        { match: { hostname: "lab-08" }, files: { "70-host.toml": "[boot]\nreal_init = \"/wrong\"\n" } },
      ],
    });
    const { log } = memoryLogger();
    const result = await runServerConfigStage(fake, log, updateConfig(), await accepted(fake), { macs: NETWORK_UP.macs, name: "lab-07" });
    expect(result.status).toBe("fetched");
    if (result.status !== "fetched") return;
    expect(result.files.map((file) => file.name)).toEqual(["50-fleet.toml", "60-site.toml", "70-host.toml"]);
    expect(result.matched).toEqual(["mac 52:54:00:12:34:56", "hostname LAB-07"]);
    expect(new TextDecoder().decode(result.files[1]?.content)).toContain("command_seconds = 40");
    expect(result.layers.map((layer) => [layer.source, layer.status])).toEqual([
      ["server:50-fleet.toml", "parsed"],
      ["server:60-site.toml", "parsed"],
      ["server:70-host.toml", "parsed"],
    ]);
  });

  test("a file whose bytes differ from what the manifest signs: none is used", async () => {
    const fake = runningMachine();
    publish(fake, { version: "2.0", fleetConfig: { "50-a.toml": "[timeouts]\ndevices_seconds = 7\n", "60-b.toml": "[timeouts]\ndevices_seconds = 8\n" } });
    const manifest = await accepted(fake);
    const second = manifest.manifest.config.fleet[1];
    if (second === undefined) throw new Error("no second file");
    fake.http.set(`${SERVER}${second.url}`, { body: new TextEncoder().encode("[timeouts]\ndevices_seconds = 9\n") });
    const { log } = memoryLogger();
    const result = await runServerConfigStage(fake, log, updateConfig(), manifest, { macs: NETWORK_UP.macs, name: "" });
    expect(result).toEqual({ status: "failed", problem: expect.stringContaining("60-b.toml: its sha512 is") });
  });
});

/** The slots stage and the spare plan of a running machine, as the boot would compute them. */
async function slotsOf(fake: FakeSystem, config = updateConfig()) {
  const { log } = memoryLogger();
  return runSlotsStage(fake, log, new KeptSlotMount(fake), await fake.listBlockDevices(), config);
}

async function install(fake: FakeSystem, config = updateConfig()) {
  const { result } = await check(fake, config);
  if (result.accepted === undefined) throw new Error(`no manifest accepted: ${result.reason}`);
  const slots = await slotsOf(fake, config);
  const spare = planSpare(slots.slots, "/dev/vda1", config);
  if (!spare.ok) throw new Error(spare.reason);
  const { log, sink } = memoryLogger();
  const installed = await runInstallStage(fake, log, config, result.accepted, [], spare.spare, undefined);
  return { installed, text: sink.text(), spare: spare.spare };
}

describe("install stage", () => {
  test("writes the image into the spare slot beside its old one, then records the signed manifest; no label changes", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0", imageSize: 50_000 });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", version: "2.0", device: "/dev/vda2", label: "BACKUPFS", bytesFetched: 50_000, resumes: 0, resumedFromByte: 0 });
    expect(fake.labelChanges).toEqual([]);
    const tree = fake.deviceTree("/dev/vda2") ?? {};
    expect(tree["system.squashfs"]).toEqual({ text: bytesToText(published.imageBytes), mode: 0o644 });
    expect(tree["controller/manifest.json"]).toMatchObject({ text: bytesToText(published.manifestBytes) });
    expect(tree["controller/install.json"]).toBeUndefined();
    expect(tree["system.squashfs.partial"]).toBeUndefined();
    expect(text).toContain("100% of 0.1 MB");
    expect(text).toContain("written to /dev/vda2 and verified from the disk");
    // the spare is unmounted again; SYSFS stays mounted read-only for the mounts stage (kept-slot-mount.ts)
    expect(fake.mounts.map((mount) => [mount.source, mount.target, mount.readOnly])).toEqual([["/dev/vda1", "/run/controller/slots/SYSFS", true]]);
  });

  test("a slot without room for two images is relabelled DEPRIVED and emptied before the download", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0" });
    fake.freeBytesAnswer = 1000;
    const tooSmall = await install(fake);
    expect(tooSmall.installed).toMatchObject({ status: "failed", label: "DEPRIVED" });
    expect(tooSmall.installed.detail).toContain("it has 0.0 MB free, the image needs 0.0 MB more");
    expect(fake.labelChanges).toEqual(["/dev/vda2 BACKUPFS -> DEPRIVED"]);
    expect(fake.deviceTree("/dev/vda2")?.["system.squashfs"]).toBeUndefined();
    expect(fake.deviceTree("/dev/vda2")?.["controller/manifest.json"]).toBeUndefined();

    // once emptied there is room: the next boot installs into the DEPRIVED slot
    fake.freeBytesAnswer = 2 ** 30;
    const { installed } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", device: "/dev/vda2", label: "DEPRIVED" });
    expect(fake.deviceTree("/dev/vda2")?.["system.squashfs"]).toEqual({ text: bytesToText(published.imageBytes), mode: 0o644 });
  });

  test("a DEPRIVED slot is taken before BACKUPFS; the running SYSFS never", async () => {
    const fake = runningMachine();
    fake.addDevice({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, {});
    const slots = await slotsOf(fake);
    const plan = planSpare(slots.slots, "/dev/vda1", updateConfig());
    expect(plan.ok && plan.spare.device.device).toBe("/dev/vda3");
    const onlySystem = planSpare(slots.slots.filter((slot) => slot.role === "system"), "/dev/vda1", updateConfig());
    expect(onlySystem).toEqual({ ok: false, reason: expect.stringContaining("there is no spare slot") });
  });

  test("a dropped connection is resumed with a Range request from where it broke", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0", imageSize: 50_000 });
    fake.http.set(published.imageUrl, { body: published.imageBytes, dropAfterBytes: 20_000, dropTimes: 2 });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", resumes: 2, bytesFetched: 50_000 });
    expect(fake.httpRequests.filter((url) => url.startsWith(published.imageUrl))).toEqual([
      published.imageUrl,
      `${published.imageUrl} from 20000`,
      `${published.imageUrl} from 40000`,
    ]);
    expect(text).toContain("broke at byte 20000");
  });

  test("gives up after update.resume_attempts; the backup keeps its label, its image and its record", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0", imageSize: 50_000 });
    fake.http.set(published.imageUrl, { body: published.imageBytes, dropAfterBytes: 100, dropTimes: 99 });
    const { installed } = await install(fake, updateConfig({ resume_attempts: 2 }));
    expect(installed.status).toBe("failed");
    expect(installed.detail).toContain("gave up after 2 resumes (update.resume_attempts)");
    expect(fake.device("/dev/vda2")?.label).toBe("BACKUPFS");
    expect(fake.deviceTree("/dev/vda2")?.["controller/manifest.json"]).toMatchObject({ text: expect.stringContaining('"version": "0.9"') });
  });

  test("image bytes that do not match the signed sha512: refused, the backup untouched, the partial file removed", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0" });
    const corrupted = new Uint8Array(published.imageBytes);
    corrupted[100] = (corrupted[100] ?? 0) ^ 1;
    fake.http.set(published.imageUrl, { body: corrupted });
    const { installed } = await install(fake);
    expect(installed.status).toBe("failed");
    expect(installed.detail).toMatch(/the image from .* has sha512 .*, the manifest signs .*; nothing was switched/);
    const tree = fake.deviceTree("/dev/vda2") ?? {};
    expect(tree["system.squashfs"]).toEqual({ text: bytesToText(imageBytes("0.9")), mode: 0o644 });
    expect(tree["system.squashfs.partial"]).toBeUndefined();
    expect(tree["controller/manifest.json"]).toMatchObject({ text: expect.stringContaining('"version": "0.9"') });
    expect(fake.labelChanges).toEqual([]);
  });

  test("a server that sends more than the signed size is cut off", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0" });
    fake.http.set(published.imageUrl, { body: new Uint8Array(published.imageBytes.length * 3) });
    const { installed } = await install(fake);
    expect(installed.status).toBe("failed");
    expect(installed.detail).toContain("sent more than the 5000 bytes the manifest signs");
  });

  test("an install cut short on an earlier boot resumes at the bytes already on the slot", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0", imageSize: 50_000 });
    const image = JSON.parse(bytesToText(published.manifestBytes)).image;
    fake.addDevice({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, {
      "controller/install.json": `${JSON.stringify({ version: "2.0", sha512: image.sha512, size: image.size })}\n`,
      "system.squashfs.partial": bytesToText(published.imageBytes.subarray(0, 30_000)),
    });
    const { installed } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", device: "/dev/vda3", resumedFromByte: 30_000, bytesFetched: 20_000 });
    expect(fake.httpRequests.filter((url) => url.startsWith(published.imageUrl))).toEqual([`${published.imageUrl} from 30000`]);
  });

  test("a partial file of another image is thrown away, not resumed", async () => {
    const fake = runningMachine();
    publish(fake, { version: "2.0" });
    fake.addDevice({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, {
      "controller/install.json": `${JSON.stringify({ version: "1.5", sha512: "ab".repeat(64), size: 5000 })}\n`,
      "system.squashfs.partial": "junk",
    });
    const { installed } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", resumedFromByte: 0, bytesFetched: 5000 });
  });

  test("the same manifest already installed on the spare (cut before the switch): verified from the disk, not fetched again", async () => {
    const fake = runningMachine();
    publish(fake, { version: "2.0" });
    fake.addDevice({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, installedSlot({ version: "2.0" }));
    const { installed } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", bytesFetched: 0 });
    expect(installed.detail).toContain("already on /dev/vda3 and verifies: no download needed");
  });
});

describe("install stage: chunked images", () => {
  const MiB = 1 << 20;
  const size = 3 * MiB + 1000;
  const imageOffsets = (fake: FakeSystem) => fake.hashedRanges.filter((range) => range.path.endsWith(".partial")).map((range) => range.offset);

  test("every chunk is hashed back from the disk once, as soon as it is written; the report says how many pieces", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0", imageSize: size, chunkSize: MiB });
    const { installed } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", bytesFetched: size, pieces: 4 });
    expect(imageOffsets(fake)).toEqual([0, MiB, 2 * MiB, 3 * MiB]);
    expect(fake.deviceTree("/dev/vda2")?.["system.squashfs"]).toEqual({ text: bytesToText(published.imageBytes), mode: 0o644 });
  });

  test("a CPU with the SHA extensions checks the chunks' sha256s, one without them their sha512s; both say so", async () => {
    for (const [flags, algorithm, said] of [
      [["fpu", "sha_ni", "avx"], "sha256", "verifying 4 chunks of 1 MiB by their sha256, which this CPU hashes in hardware"],
      [["fpu", "avx"], "sha512", "verifying 4 chunks of 1 MiB by their sha512 (without the SHA extensions this CPU hashes sha512 faster)"],
    ] as const) {
      const fake = runningMachine();
      fake.cpuFlagSet = new Set(flags);
      publish(fake, { version: "2.0", imageSize: size, chunkSize: MiB });
      const { installed, text } = await install(fake);
      expect(installed).toMatchObject({ status: "installed", pieces: 4, pieceHash: algorithm });
      expect(fake.hashedRanges.map((range) => range.algorithm)).toEqual([algorithm, algorithm, algorithm, algorithm]);
      expect(text).toContain(said);
    }
  });

  test("a manifest that signs only the chunks' sha512s (publish before sha256s) is checked by them on any CPU", async () => {
    const fake = runningMachine();
    fake.cpuFlagSet = new Set(["sha_ni"]);
    publish(fake, { version: "2.0", imageSize: size, chunkSize: MiB, chunkSha512Only: true });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", pieces: 4, pieceHash: "sha512" });
    expect(text).toContain("verifying 4 chunks of 1 MiB by their sha512 (the manifest signs no sha256s)");
  });

  test("a bad chunk is named by the sha256 the manifest signs for it on a CPU that checks sha256s", async () => {
    const fake = runningMachine();
    fake.cpuFlagSet = new Set(["sha_ni"]);
    const published = publish(fake, { version: "2.0", imageSize: size, chunkSize: MiB });
    const corrupted = new Uint8Array(published.imageBytes);
    corrupted[2 * MiB] = (corrupted[2 * MiB] ?? 0) ^ 0x01;
    fake.http.set(published.imageUrl, { body: corrupted });
    const { installed } = await install(fake);
    expect(installed.detail).toMatch(/chunk 2 of 4 \(bytes 2097152–3145727\) has sha256 [0-9a-f]{16}…, the manifest signs [0-9a-f]{16}…; nothing was switched$/);
    expect(fake.deviceTree("/dev/vda2")?.["system.squashfs.partial"]).toBeUndefined();
  });

  test("a manifest without chunks: the whole image is one piece, hashed once", async () => {
    const fake = runningMachine();
    publish(fake, { version: "2.0", imageSize: size });
    const { installed } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", pieces: 1, pieceHash: "sha512" });
    expect(fake.hashedRanges.map((range) => [range.offset, range.length, range.algorithm])).toEqual([[0, size, "sha512"]]);
  });

  test("a bad chunk stops the download before the end: the chunk is named, the partial file removed, the backup untouched", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0", imageSize: size, chunkSize: MiB });
    const corrupted = new Uint8Array(published.imageBytes);
    corrupted[MiB + 17] = (corrupted[MiB + 17] ?? 0) ^ 0x80;
    fake.http.set(published.imageUrl, { body: corrupted });
    const { installed } = await install(fake);
    expect(installed.status).toBe("failed");
    expect(installed.detail).toMatch(/read back from \/dev\/vda2: chunk 1 of 4 \(bytes 1048576–2097151\) has sha512 [0-9a-f]{16}…, the manifest signs [0-9a-f]{16}…; nothing was switched$/);
    expect(installed.bytesFetched).toBeLessThan(size);
    const tree = fake.deviceTree("/dev/vda2") ?? {};
    expect(tree["system.squashfs.partial"]).toBeUndefined();
    expect(tree["system.squashfs"]).toEqual({ text: bytesToText(imageBytes("0.9")), mode: 0o644 });
    expect(fake.labelChanges).toEqual([]);
  });

  test("a resume after a power cut keeps the chunks that verify and fetches from the first that does not; nothing is hashed twice", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0", imageSize: size, chunkSize: MiB });
    const image = JSON.parse(bytesToText(published.manifestBytes)).image;
    // 2.5 chunks on the disk, the second one damaged by the cut
    const partial = new Uint8Array(published.imageBytes.subarray(0, 2 * MiB + MiB / 2));
    partial[MiB + 3] = (partial[MiB + 3] ?? 0) ^ 1;
    fake.addDevice({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, {
      "controller/install.json": `${JSON.stringify({ version: "2.0", sha512: image.sha512, size: image.size })}\n`,
      "system.squashfs.partial": bytesToText(partial),
    });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", device: "/dev/vda3", resumedFromByte: MiB, bytesFetched: size - MiB });
    expect(text).toContain(`at byte ${MiB} (bytes ${MiB}–${2 * MiB + MiB / 2 - 1} did not verify and are fetched again)`);
    expect(fake.httpRequests.filter((url) => url.startsWith(published.imageUrl))).toEqual([`${published.imageUrl} from ${MiB}`]);
    // chunks 0 and 1 checked at the resume (1 failed), then 1, 2, 3 as they were written
    expect(imageOffsets(fake)).toEqual([0, MiB, MiB, 2 * MiB, 3 * MiB]);
    expect(fake.deviceTree("/dev/vda3")?.["system.squashfs"]).toEqual({ text: bytesToText(published.imageBytes), mode: 0o644 });
  });

  test("a resume of a whole-image manifest goes on from the end of the partial file and verifies once at the end", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0", imageSize: size });
    const image = JSON.parse(bytesToText(published.manifestBytes)).image;
    fake.addDevice({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, {
      "controller/install.json": `${JSON.stringify({ version: "2.0", sha512: image.sha512, size: image.size })}\n`,
      "system.squashfs.partial": bytesToText(published.imageBytes.subarray(0, 2 * MiB)),
    });
    const { installed } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", resumedFromByte: 2 * MiB, bytesFetched: size - 2 * MiB, pieces: 1 });
    expect(imageOffsets(fake)).toEqual([0]);
  });

  test("a resume whose partial file lost bytes in the cut (whole-image manifest): the image is fetched again from byte 0, once, and installs", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0", imageSize: size });
    const image = JSON.parse(bytesToText(published.manifestBytes)).image;
    // 2 MiB on the disk, but a page in the middle never reached it: zeros, as ext4 reads an unwritten extent
    const partial = new Uint8Array(published.imageBytes.subarray(0, 2 * MiB));
    partial.fill(0, MiB, MiB + 4096);
    fake.addDevice({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, {
      "controller/install.json": `${JSON.stringify({ version: "2.0", sha512: image.sha512, size: image.size })}\n`,
      "system.squashfs.partial": bytesToText(partial),
    });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", device: "/dev/vda3", resumedFromByte: 2 * MiB, bytesFetched: size - 2 * MiB + size, pieces: 1 });
    expect(text).toMatch(/the image has sha512 [0-9a-f]{16}…, the manifest signs [0-9a-f]{16}…; it holds bytes written before this boot, .*: writing it again from byte 0/);
    expect(fake.httpRequests.filter((url) => url.startsWith(published.imageUrl))).toEqual([`${published.imageUrl} from ${2 * MiB}`, published.imageUrl]);
    expect(fake.deviceTree("/dev/vda3")?.["system.squashfs"]).toEqual({ text: bytesToText(published.imageBytes), mode: 0o644 });
  });

  test("a resume whose last, incomplete chunk lost bytes in the cut: that chunk alone is fetched again; the chunks before it are kept", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0", imageSize: size, chunkSize: MiB });
    const image = JSON.parse(bytesToText(published.manifestBytes)).image;
    const partial = new Uint8Array(published.imageBytes.subarray(0, 2 * MiB + MiB / 2));
    partial[2 * MiB + 5] = (partial[2 * MiB + 5] ?? 0) ^ 1;
    fake.addDevice({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, {
      "controller/install.json": `${JSON.stringify({ version: "2.0", sha512: image.sha512, size: image.size })}\n`,
      "system.squashfs.partial": bytesToText(partial),
    });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", resumedFromByte: 2 * MiB + MiB / 2, pieces: 4 });
    expect(text).toContain(`chunk 2 of 4 (bytes ${2 * MiB}–${3 * MiB - 1}) has sha512`);
    expect(text).toContain(`writing it again from byte ${2 * MiB}`);
    expect(fake.httpRequests.filter((url) => url.startsWith(published.imageUrl))).toEqual([`${published.imageUrl} from ${2 * MiB + MiB / 2}`, `${published.imageUrl} from ${2 * MiB}`]);
    expect(fake.deviceTree("/dev/vda3")?.["system.squashfs"]).toEqual({ text: bytesToText(published.imageBytes), mode: 0o644 });
  });

  test("a chunk the server sent wrong on a resumed download is not fetched again: refused as on any download", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0", imageSize: size, chunkSize: MiB });
    const image = JSON.parse(bytesToText(published.manifestBytes)).image;
    const corrupted = new Uint8Array(published.imageBytes);
    corrupted[3 * MiB + 7] = (corrupted[3 * MiB + 7] ?? 0) ^ 1;
    fake.http.set(published.imageUrl, { body: corrupted });
    fake.addDevice({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, {
      "controller/install.json": `${JSON.stringify({ version: "2.0", sha512: image.sha512, size: image.size })}\n`,
      "system.squashfs.partial": bytesToText(published.imageBytes.subarray(0, 2 * MiB)),
    });
    const { installed, text } = await install(fake);
    expect(installed.status).toBe("failed");
    expect(installed.detail).toContain(`chunk 3 of 4 (bytes ${3 * MiB}–${size - 1}) has sha512`);
    expect(text).not.toContain("fetching it again");
    expect(fake.httpRequests.filter((url) => url.startsWith(published.imageUrl))).toEqual([`${published.imageUrl} from ${2 * MiB}`]);
    expect(fake.deviceTree("/dev/vda3")?.["system.squashfs.partial"]).toBeUndefined();
  });

  test("a server that ignores the Range header and sends the whole image again: written and verified from byte 0", async () => {
    const fake = runningMachine();
    const published = publish(fake, { version: "2.0", imageSize: size, chunkSize: MiB });
    fake.http.set(published.imageUrl, { body: published.imageBytes, dropAfterBytes: 2 * MiB + 10, dropTimes: 1, ignoresRange: true });
    const { installed } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", resumes: 1, bytesFetched: 2 * MiB + 10 + size });
    expect(imageOffsets(fake)).toEqual([0, MiB, 0, MiB, 2 * MiB, 3 * MiB]);
  });
});

describe("switch and repair", () => {
  test("the switch labels the new slot SYSFS first, then the old one BACKUPFS", async () => {
    const fake = runningMachine();
    fake.addDevice({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, installedSlot({ version: "2.0" }));
    const steps = planSwitch({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, { device: "/dev/vda1", label: "SYSFS", fsType: "ext4" }, updateConfig());
    const { log } = memoryLogger();
    const devices = await runSwitchStage(fake, log, steps, await fake.listBlockDevices(), new KeptSlotMount(fake));
    expect(fake.labelChanges).toEqual(["/dev/vda3 DEPRIVED -> SYSFS", "/dev/vda1 SYSFS -> BACKUPFS"]);
    expect(devices.map((device) => device.label)).toEqual(["BACKUPFS", "BACKUPFS", "SYSFS"]);
  });

  test("a label write that fails stops the switch there: the devices say what was written, and the boot goes on", async () => {
    const fake = runningMachine();
    fake.addDevice({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, installedSlot({ version: "2.0" }));
    const steps = planSwitch({ device: "/dev/vda3", label: "DEPRIVED", fsType: "ext4" }, { device: "/dev/vda1", label: "SYSFS", fsType: "ext4" }, updateConfig());
    // the running slot is still mounted: e2label refuses it
    fake.addTree("/run/held", {});
    await fake.mount({ kind: "filesystem", source: "/dev/vda1", target: "/run/held", fsType: "ext4", options: [] });
    const { log, sink } = memoryLogger();
    const devices = await runSwitchStage(fake, log, steps, await fake.listBlockDevices(), new KeptSlotMount(fake));
    expect(fake.labelChanges).toEqual(["/dev/vda3 DEPRIVED -> SYSFS"]);
    expect(devices.map((device) => `${device.device} ${device.label}`)).toEqual(["/dev/vda1 SYSFS", "/dev/vda2 BACKUPFS", "/dev/vda3 SYSFS"]);
    expect(sink.text()).toContain("Cannot label /dev/vda1 BACKUPFS: EBUSY: e2label: /dev/vda1 is mounted; the boot goes on with the labels as they are");
  });

  test("two SYSFS after a cut between the label writes: the newer verified one stays SYSFS, the other becomes BACKUPFS", async () => {
    const fake = new FakeSystem().addTree("/run", {});
    fake.addDevice({ device: "/dev/vda1", label: "SYSFS", fsType: "ext4" }, installedSlot({ version: "1.0" }));
    fake.addDevice({ device: "/dev/vda2", label: "SYSFS", fsType: "ext4" }, installedSlot({ version: "2.0" }));
    const { log, sink } = memoryLogger();
    const result = await runSlotsStage(fake, log, new KeptSlotMount(fake), await fake.listBlockDevices(), updateConfig());
    expect(fake.labelChanges).toEqual(["/dev/vda1 SYSFS -> BACKUPFS"]);
    expect(result.devices.map((device) => device.label)).toEqual(["BACKUPFS", "SYSFS"]);
    expect(result.repairs[0]).toContain("/dev/vda2 (version 2.0) stays SYSFS");
    expect(sink.text()).toContain("an update's label switch was cut short");
  });

  test("slots: records are read and verified; the SYSFS keeps its config only when it matches the signed manifest", async () => {
    const fake = new FakeSystem().addTree("/run", {});
    const sysfs = installedSlot({ version: "1.0", fleetConfig: { "50-a.toml": "[timeouts]\ndevices_seconds = 7\n" } });
    fake.addDevice({ device: "/dev/vda1", label: "SYSFS", fsType: "ext4" }, { ...sysfs, "controller/config.d/60-extra.toml": "[timeouts]\ndevices_seconds = 9\n" });
    fake.addDevice({ device: "/dev/vda2", label: "BACKUPFS", fsType: "ext4" }, installedSlot({ version: "0.9", signWith: OTHER_KEYS }));
    fake.addDevice({ device: "/dev/vda3", label: "BOOTEXT", fsType: "ext4" }, {});
    const result = await slotsOf(fake);
    expect(result.slots.map((slot) => [slot.device.device, slot.record.status])).toEqual([
      ["/dev/vda1", "valid"],
      ["/dev/vda2", "invalid"],
    ]);
    expect(result.configLayers.map((layer) => [layer.source, layer.status])).toEqual([
      ["server:SYSFS/controller/config.d/50-a.toml", "parsed"],
      ["server:SYSFS/controller/config.d/60-extra.toml", "rejected"],
    ]);
    // BACKUPFS is unmounted again; SYSFS stays mounted read-only for the mounts stage (kept-slot-mount.ts)
    expect(fake.mounts.map((mount) => [mount.source, mount.target, mount.readOnly])).toEqual([["/dev/vda1", "/run/controller/slots/SYSFS", true]]);
  });
});
