// QEMU scenarios for delta installs: the machine fetches only the chunks of a
// new image that its slots do not hold. SYSFS runs system-a as version 1.0
// and keeps its chunk index with its record, as an install does since delta
// updates; the "newer" repository publishes system-c as 2.0, which differs
// from system-a in one file (scripts/build-test-image). Each scenario boots
// from its own snapshot of the disk and ends at the test system's report.

import { beforeAll, describe, expect, test } from "bun:test";
import type { BootReport } from "../../controller/boot/report.ts";
import type { TestMarkers } from "../../qemu-harness/test-markers.ts";
import { type Boot, bootToTestSystem, SCENARIO_TIMEOUT_MS } from "./fixtures.ts";
import { indexedDisk, type RepoName, type UpdateWorld, updateWorld } from "./update-fixtures.ts";

let world: UpdateWorld;
/** SYSFS with its index; and the same with one byte of its image flipped */
let disks: { indexed: string; damaged: string };

beforeAll(async () => {
  world = await updateWorld();
  disks = { indexed: await indexedDisk(world, "delta-indexed"), damaged: await indexedDisk(world, "delta-damaged", true) };
}, 300_000);

function reportOf(markers: TestMarkers): BootReport {
  expect(markers.reportState).toBe("printed");
  return markers.report as BootReport;
}

function online(repo: RepoName, disk: string, append?: string): Boot {
  world.server.serve(repo);
  return { flavour: "shell", disk, hostPorts: [world.server.port], ...(append === undefined ? {} : { append }) };
}

function imageRequests(): string[] {
  return world.server.accessLog.filter((line) => line.includes("/images/") && line.includes(".squashfs"));
}

/** 2.0 was installed and boots; what the install reported. */
function installedAndBooted(markers: TestMarkers): NonNullable<BootReport["update"]["install"]> {
  expect(markers.imageId).toBe("system-c");
  const report = reportOf(markers);
  expect(report.update.install).toMatchObject({ status: "installed", version: "2.0", device: "/dev/vda2" });
  expect(report.update.switched).toEqual(["/dev/vda2 BACKUPFS -> SYSFS", "/dev/vda1 SYSFS -> BACKUPFS"]);
  expect(report.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda2" });
  const install = report.update.install;
  if (install === undefined) throw new Error("no install in the report");
  expect(install.bytesFetched + install.bytesCopied).toBe(report.update.check.manifest?.image.size ?? -1);
  return install;
}

describe("delta installs in QEMU", () => {
  test(
    "(a) 1.0 to 2.0, one file changed: the rest is copied from SYSFS, a small part fetched by Range, and 2.0 boots verified",
    async () => {
      await bootToTestSystem(online("newer", disks.indexed), ({ markers, console }) => {
        const install = installedAndBooted(markers);
        expect(install.delta).toMatchObject({ localImages: ["SYSFS on /dev/vda1"] });
        expect(install.bytesFetched).toBeLessThan(install.bytesCopied / 10);
        expect(install.chunksRefetched).toBe(0);
        expect(console).toMatch(/controller: install: delta: copying [\d.]+ MB of the new image's [\d.]+ MB from SYSFS on \/dev\/vda1, fetching [\d.]+ MB in \d+ requests?/);
        // every image request asked for a part of it
        expect(imageRequests().length).toBe(install.delta?.requests ?? -1);
        expect(imageRequests().every((line) => line.includes(" 206 "))).toBe(true);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(b) a chunk damaged on SYSFS's disk does not verify: it is fetched instead, and the update succeeds",
    async () => {
      // the damaged image would fail SYSFS's own health check and make it boot the backup, which an update must not replace
      await bootToTestSystem(online("newer", disks.damaged, "controller.health.verify_image=false"), ({ markers, console }) => {
        const install = installedAndBooted(markers);
        expect(install.chunksRefetched).toBe(1);
        expect(console).toMatch(/chunk \d+ at byte \d+ of \/run\/controller\/slots\/SYSFS\/system\.squashfs does not have the sha256 the new image's index lists: fetching it instead/);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(c) the server cuts the connection during a Range request of the delta: resumed, and 2.0 boots",
    async () => {
      const boot = online("newer", disks.indexed);
      world.server.dropNextImageAfter(5000, true);
      await bootToTestSystem(boot, ({ markers, console }) => {
        const install = installedAndBooted(markers);
        expect(install.resumes).toBe(1);
        expect(install.delta).toBeDefined();
        expect(console).toMatch(/broke at byte \d+/);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(d) a manifest from before delta updates (no chunk index): the whole image is fetched, as before",
    async () => {
      await bootToTestSystem(online("unchunked", disks.indexed), ({ markers, console }) => {
        const install = installedAndBooted(markers);
        expect(install.bytesCopied).toBe(0);
        expect(install.delta).toBeUndefined();
        expect(console).toContain("the manifest names no chunk index (published before delta updates): fetching the whole image");
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );
});
