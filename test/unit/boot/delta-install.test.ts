// The delta install over the fake: the chunks of the new image that the
// running SYSFS or the spare already hold are copied from them, the rest is
// fetched by Range; a local chunk that does not verify is fetched instead;
// anything that stands in the way of a delta means the whole image.

import { describe, expect, test } from "bun:test";
import { slotImage } from "../../../controller/boot/delta-sources.ts";
import { KeptSlotMount } from "../../../controller/boot/kept-slot-mount.ts";
import type { NetworkResult } from "../../../controller/boot/network.ts";
import { runSlotsStage } from "../../../controller/boot/slots.ts";
import { runCheckStage } from "../../../controller/boot/update-check.ts";
import { runInstallStage } from "../../../controller/boot/update-install.ts";
import type { Config } from "../../../controller/config/schema.ts";
import { planSpare } from "../../../controller/plans/spare.ts";
import { sha512Hex } from "../../../controller/update/signing.ts";
import { installedSlot, publish, type Release, updateConfig } from "../../fake-repo.ts";
import { concatBytes, noiseBytes } from "../../bytes.ts";
import { bytesToText, FakeSystem, type Tree } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

const NETWORK_UP: NetworkResult = { status: "up", interface: "eth0", address: "10.0.2.15", mac: "52:54:00:12:34:56", macs: ["52:54:00:12:34:56"], hostname: "lab-07", detail: "lease" };

/** Version 1.0's image, 300 kB, and 2.0: the same with 20 kB in its middle changed, as an upgraded package would. */
const V1 = noiseBytes(300_000, 1);
const V2 = concatBytes(V1.subarray(0, 150_000), noiseBytes(20_000, 2), V1.subarray(170_000));
/** A spare's old image: version 0.9, whose first half 2.0 shares too. */
const V09 = concatBytes(V1.subarray(0, 150_000), noiseBytes(150_000, 3));

/** A machine running `system` on /dev/vda1 with `backup` on /dev/vda2; `edit` changes what a slot holds. */
function machine(system: Release, backup: Release, edit: { system?: Tree; backup?: Tree } = {}): FakeSystem {
  const fake = new FakeSystem().addTree("/run", {});
  fake.addDevice({ device: "/dev/vda1", label: "SYSFS", fsType: "ext4" }, { ...installedSlot(system), ...edit.system });
  fake.addDevice({ device: "/dev/vda2", label: "BACKUPFS", fsType: "ext4" }, { ...installedSlot(backup), ...edit.backup });
  return fake;
}

/** Check, slots and install, as a boot runs them: the running SYSFS stays mounted from the slots stage on. */
async function install(fake: FakeSystem, config: Config = updateConfig()) {
  const versions = { installed: "1.0", floor: { version: "1.0", slot: "SYSFS on /dev/vda1" } };
  const checked = await runCheckStage(fake, memoryLogger().log, config, NETWORK_UP, versions, config.update.trusted_keys);
  if (checked.accepted === undefined) throw new Error(`no manifest accepted: ${checked.reason}`);
  const kept = new KeptSlotMount(fake);
  const slots = await runSlotsStage(fake, memoryLogger().log, kept, await fake.listBlockDevices(), config);
  const spare = planSpare(slots.slots, "/dev/vda1", config);
  if (!spare.ok) throw new Error(spare.reason);
  const dir = kept.dirOf("/dev/vda1");
  const running = dir === undefined ? undefined : slotImage("SYSFS on /dev/vda1", dir, config);
  const { log, sink } = memoryLogger();
  const installed = await runInstallStage(fake, log, config, checked.accepted, [], spare.spare, running);
  return { installed, text: sink.text() };
}

function spareFile(fake: FakeSystem, path: string): string | undefined {
  const entry = fake.deviceTree("/dev/vda2")?.[path];
  return typeof entry === "object" && "text" in entry ? entry.text : typeof entry === "string" ? entry : undefined;
}

function imageRequests(fake: FakeSystem, imageUrl: string): string[] {
  return fake.httpRequests.filter((url) => url.startsWith(imageUrl)).map((url) => url.slice(imageUrl.length).trim());
}

describe("delta install", () => {
  test("a small change: the shared chunks are copied from SYSFS, the rest fetched by Range; the spare keeps the new index", async () => {
    const fake = machine({ version: "1.0", image: V1, index: true }, { version: "0.9" });
    const published = publish(fake, { version: "2.0", image: V2, index: true });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", chunksRefetched: 0, resumes: 0 });
    expect(installed.bytesCopied + installed.bytesFetched).toBe(V2.length);
    // the 20 kB changed and the chunks around it, in one request
    expect(installed.bytesFetched).toBeLessThan(100_000);
    expect(installed.delta).toEqual({ localImages: ["SYSFS on /dev/vda1"], plannedCopyBytes: installed.bytesCopied, plannedFetchBytes: installed.bytesFetched, requests: 1 });
    expect(imageRequests(fake, published.imageUrl)).toEqual([expect.stringMatching(/^bytes \d+-\d+$/)]);
    expect(spareFile(fake, "system.squashfs")).toBe(bytesToText(V2));
    expect(spareFile(fake, "controller/image.index")).toBe(bytesToText(published.indexBytes ?? new Uint8Array()));
    expect(text).toMatch(/delta: copying 0\.\d MB of the new image's 0\.3 MB from SYSFS on \/dev\/vda1, fetching 0\.\d MB in 1 request/);
    expect(installed.detail).toMatch(/written to \/dev\/vda2 and verified from the disk, 0\.\d MB fetched, 0\.\d MB copied from this machine$/);
  });

  test("chunks only the spare's old image holds are copied from it", async () => {
    const fake = machine({ version: "1.0", image: noiseBytes(300_000, 9), index: true }, { version: "0.9", image: V09, index: true });
    publish(fake, { version: "2.0", image: V2, index: true });
    const { installed } = await install(fake);
    expect(installed).toMatchObject({ status: "installed" });
    expect(installed.delta?.localImages).toEqual(["BACKUPFS on /dev/vda2"]);
    expect(installed.bytesCopied).toBeGreaterThan(100_000);
    expect(spareFile(fake, "system.squashfs")).toBe(bytesToText(V2));
  });

  test("a chunk damaged on the local disk does not verify: it is fetched instead, and the update succeeds", async () => {
    const damaged = V1.slice();
    damaged[10] = (damaged[10] as number) ^ 1;
    const fake = machine({ version: "1.0", image: V1, index: true }, { version: "0.9" }, { system: { "system.squashfs": { text: bytesToText(damaged), mode: 0o644 } } });
    const published = publish(fake, { version: "2.0", image: V2, index: true });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", chunksRefetched: 1 });
    expect(text).toContain("chunk 0 at byte 0 of /run/controller/slots/SYSFS/system.squashfs does not have the sha256 the new image's index lists: fetching it instead");
    expect(imageRequests(fake, published.imageUrl)[0]).toMatch(/^bytes 0-\d+$/);
    expect(spareFile(fake, "system.squashfs")).toBe(bytesToText(V2));
  });

  test("a local image that cannot be read (a disk going bad): after 3 failed reads it is given up, the rest fetched in as few requests as the plan has, and the update succeeds", async () => {
    const fake = machine({ version: "1.0", image: V1, index: true }, { version: "0.9" });
    const published = publish(fake, { version: "2.0", image: V2, index: true });
    fake.unreadableFiles.add("/run/controller/slots/SYSFS/system.squashfs");
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", bytesCopied: 0, bytesFetched: V2.length });
    expect(installed.chunksRefetched).toBeGreaterThan(3);
    const said = text.split("\n").filter((line) => line.includes("of /run/controller/slots/SYSFS/system.squashfs cannot be read: EIO: reading"));
    expect(said.length).toBe(3);
    expect(said[2]).toContain("(any more are fetched without a word; the report counts them)");
    expect(spareFile(fake, "system.squashfs")).toBe(bytesToText(V2));
    expect(text.split("\n").filter((line) => line.includes("nothing more is copied from it")).length).toBe(1);
    // the three failed reads cost a request each; after them, no more than the plan's fetches and one for the chunks given up
    const requests = imageRequests(fake, published.imageUrl).length;
    expect(installed.delta?.requests).toBeGreaterThan(0);
    expect(requests).toBeLessThanOrEqual(3 + (installed.delta?.requests ?? 0) + 1);
    expect(requests).toBeLessThan(installed.chunksRefetched);
    expect(fake.readsThrough.get("/run/controller/slots/SYSFS/system.squashfs")).toBe(3);
  });

  test("a connection dropped during a Range request is resumed from where it broke", async () => {
    const fake = machine({ version: "1.0", image: V1, index: true }, { version: "0.9" });
    const published = publish(fake, { version: "2.0", image: V2, index: true });
    fake.http.set(published.imageUrl, { body: published.imageBytes, dropAfterBytes: 5000, dropTimes: 1 });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", resumes: 1 });
    const [first, resumed] = imageRequests(fake, published.imageUrl);
    const [, from, to] = /^bytes (\d+)-(\d+)$/.exec(first ?? "") ?? [];
    expect(resumed).toBe(`bytes ${Number(from) + 5000}-${to}`);
    expect(text).toContain(`broke at byte ${Number(from) + 5000}`);
    expect(spareFile(fake, "system.squashfs")).toBe(bytesToText(V2));
  });

  test("a server that ignores Range sends the whole image: it is taken whole", async () => {
    const fake = machine({ version: "1.0", image: V1, index: true }, { version: "0.9" });
    const published = publish(fake, { version: "2.0", image: V2, index: true });
    fake.http.set(published.imageUrl, { body: published.imageBytes, ignoresRange: true });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", bytesFetched: V2.length });
    expect(text).toContain("it answered 200 to a Range request): starting over with the whole image");
    expect(spareFile(fake, "system.squashfs")).toBe(bytesToText(V2));
  });

  test("a manifest without an index (published before delta updates): the whole image, and no index in the record", async () => {
    const fake = machine({ version: "1.0", image: V1, index: true }, { version: "0.9", image: V09, index: true });
    const published = publish(fake, { version: "2.0", image: V2 });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", bytesFetched: V2.length, bytesCopied: 0 });
    expect(installed.delta).toBeUndefined();
    expect(imageRequests(fake, published.imageUrl)).toEqual([""]);
    expect(text).toContain("the manifest names no chunk index (published before delta updates): fetching the whole image");
    // the old image's index went with it
    expect(spareFile(fake, "controller/image.index")).toBeUndefined();
  });

  test("an index that is not the one the manifest signs: the whole image, with why", async () => {
    const fake = machine({ version: "1.0", image: V1, index: true }, { version: "0.9" });
    const published = publish(fake, { version: "2.0", image: V2, index: true });
    const wrong = new Uint8Array(published.indexBytes ?? []);
    wrong[40] = (wrong[40] as number) ^ 1;
    fake.http.set(published.indexUrl ?? "", { body: wrong });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", bytesFetched: V2.length, bytesCopied: 0 });
    expect(text).toContain(`Cannot use the chunk index ${published.indexUrl}: it has ${wrong.length} bytes and sha512`);
    expect(spareFile(fake, "controller/image.index")).toBeUndefined();
  });

  test("slots installed before delta updates keep no index: the whole image, whose index the spare then keeps", async () => {
    const fake = machine({ version: "1.0", image: V1 }, { version: "0.9" });
    const published = publish(fake, { version: "2.0", image: V2, index: true });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", bytesFetched: V2.length });
    expect(text).toContain("SYSFS on /dev/vda1 keeps no chunk index (installed before delta updates): none of its chunks are used");
    expect(text).toContain("no chunk of the new image is on this machine (no slot keeps a chunk index): fetching the whole image");
    expect(spareFile(fake, "controller/image.index")).toBe(bytesToText(published.indexBytes ?? new Uint8Array()));
  });

  test("an install cut short in the middle of a copied chunk goes on from the byte it reached", async () => {
    const cutShort = {
      "controller/install.json": `${JSON.stringify({ version: "2.0", sha512: sha512Hex(V2), size: V2.length })}\n`,
      "system.squashfs.partial": { text: bytesToText(V2.subarray(0, 10_000)), mode: 0o644 },
    };
    const fake = machine({ version: "1.0", image: V1, index: true }, { version: "0.9" }, { backup: cutShort });
    publish(fake, { version: "2.0", image: V2, index: true });
    const { installed, text } = await install(fake);
    expect(installed).toMatchObject({ status: "installed", resumedFromByte: 10_000 });
    expect(text).toContain("resuming the install of version 2.0 cut short on an earlier boot, at byte 10000");
    expect(installed.bytesCopied + installed.bytesFetched).toBe(V2.length - 10_000);
    expect(spareFile(fake, "system.squashfs")).toBe(bytesToText(V2));
  });
});
