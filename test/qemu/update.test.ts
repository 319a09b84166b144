// QEMU scenarios for signed updates: the update server runs on the host's
// 127.0.0.1 and the VM reaches it only through guestfwd. SYSFS runs system-a as
// version 1.0; the "newer" repository publishes system-c as 2.0 with a fleet
// config file. Every scenario is its own boot from the same disk (its writes go
// to a snapshot) unless it says otherwise; such a boot ends at the test system's
// boot report, all it reads (fixtures.ts, BootEnd).

import { beforeAll, describe, expect, test } from "bun:test";
import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import type { BootReport } from "../../controller/boot/report.ts";
import type { TestMarkers } from "../../qemu-harness/test-markers.ts";
import { type Boot, bootToTestSystem, type Flavour, NO_NIC_WAIT, SCENARIO_TIMEOUT_MS } from "./fixtures.ts";
import { FLEET_CONFIG, type RepoName, type UpdateWorld, updateWorld } from "./update-fixtures.ts";

let world: UpdateWorld;
beforeAll(async () => {
  world = await updateWorld();
}, 300_000);

function reportOf(markers: TestMarkers): BootReport {
  expect(markers.reportState).toBe("printed");
  return markers.report as BootReport;
}

function labels(report: BootReport): Record<string, string | undefined> {
  return Object.fromEntries(report.partitions.map((partition) => [partition.device, partition.label]));
}

const UNCHANGED = { "/dev/vda1": "SYSFS", "/dev/vda2": "BACKUPFS", "/dev/vda3": "BOOTEXT" };
const SWITCHED = { "/dev/vda1": "BACKUPFS", "/dev/vda2": "SYSFS", "/dev/vda3": "BOOTEXT" };

function imageRequests(): string[] {
  return world.server.accessLog.filter((line) => line.includes("/images/"));
}

/** A boot from the update disk with the server reachable, serving `repo`. */
function online(repo: RepoName, extra: Partial<Boot> = {}): Boot {
  world.server.serve(repo);
  return { flavour: "shell", disk: world.disk, hostPorts: [world.server.port, world.deadPort], ...extra };
}

/** (a): the new version is fetched, verified, installed in the spare slot, switched to and booted. */
function expectInstalledAndBooted(markers: TestMarkers, console: string) {
  expect(markers.imageId).toBe("system-c");
  const report = reportOf(markers);
  const { update } = report;
  expect(update.network.status).toBe("up");
  expect(update.check.decision).toBe("install");
  expect(update.check.attempts).toEqual([{ server: expect.stringContaining(`:${world.server.port}/`), outcome: "accepted", detail: expect.any(String) }]);
  expect(update.check.manifest).toMatchObject({ version: "2.0", channel: "stable" });
  expect(update.install).toMatchObject({ status: "installed", version: "2.0", device: "/dev/vda2" });
  expect(update.install?.bytesFetched).toBe(update.check.manifest?.image.size);
  expect(update.install?.throughputMBps).toBeGreaterThan(0);
  expect(update.switched).toEqual(["/dev/vda2 BACKUPFS -> SYSFS", "/dev/vda1 SYSFS -> BACKUPFS"]);
  expect(labels(report)).toEqual(SWITCHED);
  expect(report.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda2" });
  expect(report.stages.map((stage) => stage.stage)).toEqual(expect.arrayContaining(["network", "check", "server-config", "install", "switch"]));
  // progress on the console, and the server's config used on this boot
  expect(console).toMatch(/controller: install: 100% of \d+\.\d MB, [\d.]+ MB\/s/);
  expect(markers.mounts.findLast((mount) => mount.target === "/var/log")?.options).toContain("size=24576k");
  expect(report.config.provenance['tmpfs."/var/log".size']).toBe(`server:${FLEET_CONFIG.name}`);
  expect(imageRequests().length).toBeGreaterThan(0);
}

function expectLocalBoot(markers: TestMarkers): BootReport {
  expect(markers.imageId).toBe("system-a");
  const report = reportOf(markers);
  expect(report.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda1" });
  expect(labels(report)).toEqual(UNCHANGED);
  expect(report.update.switched).toBeUndefined();
  return report;
}

describe("signed updates in QEMU", () => {
  test(
    "(a, h) a newer version is installed and booted, with the server's config; the next boot without network keeps both",
    async () => {
      const disk = join(world.work, "scenario-h.img");
      await copyFile(world.disk, disk);
      let machineId: string | undefined;
      await bootToTestSystem(online("newer", { disk, writeDisks: true, append: "test.status" }), ({ markers, console }) => {
        expectInstalledAndBooted(markers, console);
        // publish signs chunk hashes: the image was verified chunk by chunk
        expect(reportOf(markers).update.install?.pieces).toBeGreaterThan(1);
        // the machine's identity, made on its first boot and kept on BOOTEXT
        machineId = markers.lines.find((line) => line.startsWith("machine-id "))?.slice("machine-id ".length);
        expect(machineId).toMatch(/^[0-9a-f]{32}$/);
        expect(reportOf(markers).machineId).toMatchObject({ source: "generated", id: machineId });
        // `controller status` shows the slots as the install and the switch left them
        expect(markers.status?.output).toMatch(/\/dev\/vda2 {2}SYSFS {2}version 2\.0 {2}\(booted\)/);
      });

      // no NIC at all this time: the config kept on the slot still applies
      await bootToTestSystem({ flavour: "shell", disk, writeDisks: true, append: NO_NIC_WAIT }, ({ markers }) => {
        expect(markers.imageId).toBe("system-c");
        // the same identity after the update, on another boot
        expect(markers.lines).toContain(`machine-id ${machineId}`);
        const report = reportOf(markers);
        expect(report.machineId?.source).toBe("bootext");
        expect(report.update.check.decision).toBe("no-network");
        const slots = report.update.slots.map((slot) => [slot.device, slot.label, slot.version]);
        expect(slots.sort()).toEqual([
          ["/dev/vda1", "BACKUPFS", "1.0"],
          ["/dev/vda2", "SYSFS", "2.0"],
        ]);
        expect(markers.mounts.findLast((mount) => mount.target === "/var/log")?.options).toContain("size=24576k");
        expect(report.config.provenance['tmpfs."/var/log".size']).toBe(`server:SYSFS/controller/config.d/${FLEET_CONFIG.name}`);
      });
    },
    2 * SCENARIO_TIMEOUT_MS,
  );

  test(
    "(a) on the systemd initrd too, from a manifest without chunk hashes (as publish wrote them before): verified as one piece",
    async () => {
      await bootToTestSystem(online("unchunked", { flavour: "systemd" satisfies Flavour }), ({ markers, console }) => {
        expectInstalledAndBooted(markers, console);
        expect(reportOf(markers).update.install?.pieces).toBe(1);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(b) a manifest signed by an unknown key is refused; the local system boots and the console says why",
    async () => {
      await bootToTestSystem(online("unknownKey"), ({ markers, console }) => {
        const report = expectLocalBoot(markers);
        expect(report.update.check.decision).toBe("refused");
        expect(console).toContain("the signature is not valid for the trusted key");
        expect(imageRequests()).toEqual([]);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(c) image bytes corrupted on the server: refused after the download, no label changed",
    async () => {
      await bootToTestSystem(online("corrupt"), ({ markers, console }) => {
        const report = expectLocalBoot(markers);
        expect(report.update.check.decision).toBe("install");
        expect(report.update.install).toMatchObject({ status: "failed" });
        // the flipped byte is in the middle: its chunk is named, and the download stopped there
        expect(report.update.install?.detail).toMatch(/read back from \/dev\/vda2: chunk \d+ of \d+ \(bytes \d+–\d+\) has sha512 .*, the manifest signs .*; nothing was switched/);
        expect(console).toContain("nothing was switched");
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(d) a downgrade is refused without fetching the image",
    async () => {
      await bootToTestSystem(online("downgrade"), ({ markers }) => {
        const report = expectLocalBoot(markers);
        expect(report.update.check.decision).toBe("refused");
        expect(report.update.check.attempts[0]?.detail).toContain("Cannot install version 0.5 from channel stable: it is lower than the installed version 1.0");
        expect(imageRequests()).toEqual([]);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(e) an expired manifest is refused",
    async () => {
      await bootToTestSystem(online("expired"), ({ markers }) => {
        const report = expectLocalBoot(markers);
        expect(report.update.check.decision).toBe("refused");
        // the signature's expiry is the manifest's own, and the signature is checked first
        expect(report.update.check.attempts[0]?.detail).toMatch(/the signature expired at \S+ \(it is now \S+\): publish a new version \(the server is frozen or replays an old manifest, or this machine's clock is wrong\)/);
        expect(imageRequests()).toEqual([]);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(f) the server is down: the local system boots within the configured time",
    async () => {
      const dead = `controller.update.servers=["http://10.0.2.100:${world.deadPort}/"]`;
      await bootToTestSystem(online("newer", { append: dead }), ({ markers, console }) => {
        const report = expectLocalBoot(markers);
        expect(report.update.network.status).toBe("up");
        expect(report.update.check.decision).toBe("unreachable");
        expect(console).toContain("no update server could be reached (its reason is above): booting the local system");
        const check = report.stages.find((stage) => stage.stage === "check");
        // timeouts.server_seconds = 10 on the disk's BOOTEXT
        expect(check?.durationMs).toBeLessThan(10_000 + 5_000);
        expect(world.server.accessLog).toEqual([]);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(g) the server drops the connection half-way through the image: resumed, and the verified new system boots",
    async () => {
      const boot = online("newer");
      world.server.dropNextImageAfter(20_000_000);
      await bootToTestSystem(boot, ({ markers, console }) => {
        expectInstalledAndBooted(markers, console);
        const report = reportOf(markers);
        expect(report.update.install?.resumes).toBe(1);
        expect(console).toMatch(/broke at byte \d+/);
        expect(imageRequests().some((line) => line.includes(" 206 "))).toBe(true);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(i) the same version as installed: nothing to download",
    async () => {
      await bootToTestSystem(online("same"), ({ markers }) => {
        const report = expectLocalBoot(markers);
        expect(report.update.check.decision).toBe("up-to-date");
        expect(report.update.install).toBeUndefined();
        expect(imageRequests()).toEqual([]);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(l) a version rolled out to 0 % of the machines does not reach this one: the local system boots, and the check says why",
    async () => {
      await bootToTestSystem(online("rollout0"), ({ markers, console }) => {
        const report = expectLocalBoot(markers);
        expect(report.update.check).toMatchObject({ decision: "not-in-rollout", rollout: { percent: 0 }, manifest: { version: "2.0" } });
        expect(report.update.check.reason).toMatch(/publishes version 2\.0 \(installed: 1\.0\), but version 2\.0 is rolled out to 0 % of machines; this machine/);
        expect(console).toContain("controller: check: ");
        expect(console).toContain("is rolled out to 0 % of machines");
        expect(report.update.install).toBeUndefined();
        expect(imageRequests()).toEqual([]);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(m) the same version raised to 100 % by `controller rollout` reaches it: installed and booted",
    async () => {
      await bootToTestSystem(online("rollout100"), ({ markers, console }) => {
        expectInstalledAndBooted(markers, console);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(n) outside update.download_window (given on the command line) no download starts: the local system boots, and the check says why",
    async () => {
      // a one-minute window twelve hours from now, in UTC
      const hour = String((new Date().getUTCHours() + 12) % 24).padStart(2, "0");
      const window = `${hour}:00-${hour}:01`;
      await bootToTestSystem(online("newer", { append: `controller.update.download_window=${window}` }), ({ markers, console }) => {
        const report = expectLocalBoot(markers);
        expect(report.update.check.decision).toBe("outside-window");
        expect(report.update.check.reason).toContain(`but outside the download window ${window} UTC (it is `);
        expect(console).toContain(`outside the download window ${window} UTC`);
        expect(imageRequests()).toEqual([]);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(j) the server trickles its manifest, a byte every 500 ms: the local system boots once timeouts.request_seconds is up, and says why",
    async () => {
      const boot = online("newer", { append: "controller.timeouts.request_seconds=5" });
      world.server.answerManifestsWith(() => {
        let sent = 0;
        return new Response(
          new ReadableStream({
            async pull(controller) {
              if (sent > 0) await Bun.sleep(500);
              controller.enqueue(new TextEncoder().encode(sent++ === 0 ? "{" : " "));
            },
          }),
          { headers: { "content-type": "application/json" } },
        );
      });
      await bootToTestSystem(boot, ({ markers, console }) => {
        const report = expectLocalBoot(markers);
        expect(report.update.check.decision).toBe("unreachable");
        expect(report.update.check.attempts[0]?.detail).toContain("/manifest.json did not finish within 5 s (timeouts.request_seconds)");
        expect(console).toContain("did not finish within 5 s (timeouts.request_seconds)");
        expect(console).toContain("no update server could be reached (its reason is above): booting the local system");
        const check = report.stages.find((stage) => stage.stage === "check");
        // each gap (0.5 s) is far below timeouts.server_seconds = 10: only the total deadline ends it
        expect(check?.durationMs).toBeGreaterThanOrEqual(5_000);
        expect(check?.durationMs).toBeLessThan(5_000 + 4_000);
        expect(imageRequests()).toEqual([]);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(k) the server redirects its manifest to a local file: refused, nothing local read, the local system boots",
    async () => {
      const boot = online("newer");
      world.server.answerManifestsWith(() => new Response(null, { status: 302, headers: { location: "file:///proc/cmdline" } }));
      await bootToTestSystem(boot, ({ markers, console }) => {
        const report = expectLocalBoot(markers);
        expect(report.update.check.decision).toBe("unreachable");
        expect(report.update.check.attempts[0]?.detail).toContain(
          "/manifest.json redirected to file:///proc/cmdline: refused, only http:// and https:// URLs are followed (its scheme is file:)",
        );
        expect(console).toContain("redirected to file:///proc/cmdline: refused");
        // a signature request would carry the sha512 of the local file back to the server
        expect(world.server.accessLog.length).toBeGreaterThan(0);
        expect(world.server.accessLog.every((line) => line.includes("/manifest.json"))).toBe(true);
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );
});
