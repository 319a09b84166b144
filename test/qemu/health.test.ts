// QEMU scenarios for health checks and rollback. SYSFS holds system-c as the
// signed version 2.0, BACKUPFS system-a as 1.0, marked good. The test system
// marks itself good once it has printed its markers, unless the command line
// says test.no_mark_good, and marks a clean shutdown before it powers off,
// unless it says test.unclean_shutdown. Scenarios of several boots write to
// their own copy of a disk; a boot no later boot starts from runs on a
// snapshot and ends at its report.

import { beforeAll, describe, expect, test } from "bun:test";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BootReport } from "../../controller/boot/report.ts";
import { buildDisk } from "../../qemu-harness/disk.ts";
import type { TestMarkers } from "../../qemu-harness/test-markers.ts";
import { withVm } from "../../qemu-harness/vm.ts";
import { ARTIFACTS, BOOT_TIMEOUT_MS, type Boot, bootToTestSystem, SCENARIO_TIMEOUT_MS, vmOptions } from "./fixtures.ts";
import { MARKED_GOOD, slotFolder, updateWorld } from "./update-fixtures.ts";

interface Disks {
  /** 2.0 freshly installed (no health record yet) on SYSFS, 1.0 marked good on BACKUPFS; max_attempts = 2 */
  readonly fresh: string;
  /** 2.0 marked good on SYSFS, but its image lost a byte on the disk */
  readonly corrupt: string;
  /** both slots ran out of attempts */
  readonly bothBad: string;
  readonly work: string;
}

let disks: Disks;
beforeAll(async () => {
  const world = await updateWorld();
  const work = join(world.work, "health");
  await mkdir(work, { recursive: true });
  const bootext = join(work, "bootext");
  await mkdir(join(bootext, "config.d"), { recursive: true });
  await writeFile(join(bootext, "config.d/60-health.toml"), `[update]\ntrusted_keys = ["${world.publicKey}"]\n[health]\nmax_attempts = 2\n`);
  const backup = await slotFolder(join(work, "backup"), { image: ARTIFACTS.systemA, repo: world.repos.same, health: MARKED_GOOD });
  const disk = async (name: string, sysfs: string, backupfs = backup) => {
    const path = join(work, `${name}.img`);
    await buildDisk({
      path,
      partitions: [
        { label: "SYSFS", sizeMiB: 120, content: sysfs },
        { label: "BACKUPFS", sizeMiB: 120, content: backupfs },
        { label: "BOOTEXT", sizeMiB: 8, content: bootext },
      ],
    });
    return path;
  };
  const worn = { attempts: 5, markedGood: true, cleanShutdown: true };
  disks = {
    fresh: await disk("fresh", await slotFolder(join(work, "fresh"), { image: ARTIFACTS.systemC, repo: world.repos.newer })),
    corrupt: await disk("corrupt", await slotFolder(join(work, "corrupt"), { image: ARTIFACTS.systemC, repo: world.repos.newer, health: MARKED_GOOD, corruptImage: true })),
    bothBad: await disk(
      "both-bad",
      await slotFolder(join(work, "worn-c"), { image: ARTIFACTS.systemC, repo: world.repos.newer, health: worn }),
      await slotFolder(join(work, "worn-a"), { image: ARTIFACTS.systemA, repo: world.repos.same, health: worn }),
    ),
    work,
  };
}, 300_000);

/** A copy of a disk for a scenario that boots more than once. */
async function copyOf(disk: string, name: string): Promise<string> {
  const path = join(disks.work, `${name}.img`);
  await copyFile(disk, path);
  return path;
}

function reportOf(markers: TestMarkers): BootReport {
  expect(markers.reportState).toBe("printed");
  return markers.report as BootReport;
}

function labels(report: BootReport): Record<string, string | undefined> {
  return Object.fromEntries(report.partitions.map((partition) => [partition.device, partition.label]));
}

function marker(markers: TestMarkers, name: string): string | undefined {
  return markers.lines.find((line) => line.startsWith(`${name} `));
}

const ROLLED_BACK = { "/dev/vda1": "DEPRIVED", "/dev/vda2": "SYSFS", "/dev/vda3": "BOOTEXT" };
const UNCHANGED = { "/dev/vda1": "SYSFS", "/dev/vda2": "BACKUPFS", "/dev/vda3": "BOOTEXT" };

function boot(disk: string, append?: string): Boot {
  return { flavour: "shell", disk, writeDisks: true, ...(append === undefined ? {} : { append }) };
}

/**
 * A boot no later boot starts from: its writes go to a snapshot, so it needs no
 * copy of the disk, and it ends at its report (fixtures.ts, BootEnd).
 */
function snapshotBoot(disk: string, append?: string): Boot {
  return { ...boot(disk, append), writeDisks: false };
}

describe("health checks and rollback in QEMU", () => {
  test(
    "(a) a new image that never marks itself good: after the attempt limit the machine rolls back on its own",
    async () => {
      const disk = await copyOf(disks.fresh, "scenario-a");
      for (const attempt of [1, 2]) {
        await bootToTestSystem(boot(disk, "test.no_mark_good"), ({ markers }) => {
          expect(markers.imageId).toBe("system-c");
          expect(reportOf(markers).boot.health).toMatchObject({ attempts: attempt, markedGood: false });
          expect(marker(markers, "mark-good")).toBe("mark-good skipped");
        });
      }
      await bootToTestSystem(snapshotBoot(disk, "test.no_mark_good test.status"), ({ markers, console }) => {
        expect(markers.imageId).toBe("system-a");
        const report = reportOf(markers);
        expect(labels(report)).toEqual(ROLLED_BACK);
        expect(report.boot.booted).toMatchObject({ device: "/dev/vda2", label: "SYSFS" });
        expect(console).toContain("controller: health: WARNING: ROLLBACK: rollback: SYSFS on /dev/vda1 unhealthy; BACKUPFS on /dev/vda2 becomes SYSFS and boots");
        expect(markers.status?.output).toContain("DEPRIVED");
        expect(markers.status?.output).toContain("attempts: fail (2 boots without a mark-good, the limit is 2 (health.max_attempts))");
      }, "report");
    },
    3 * SCENARIO_TIMEOUT_MS,
  );

  test(
    "(b) a healthy image marks itself good; the next boot counts from zero and keeps it",
    async () => {
      const disk = await copyOf(disks.fresh, "scenario-b");
      await bootToTestSystem(boot(disk), ({ markers }) => {
        expect(markers.imageId).toBe("system-c");
        expect(marker(markers, "mark-good")).toBe("mark-good exit=0");
      });
      await bootToTestSystem(snapshotBoot(disk), ({ markers }) => {
        expect(markers.imageId).toBe("system-c");
        const report = reportOf(markers);
        expect(labels(report)).toEqual(UNCHANGED);
        expect(report.update.slots.find((slot) => slot.device === "/dev/vda1")?.health).toMatchObject({ attempts: 0, markedGood: true, cleanShutdown: true });
        expect(report.boot.health).toMatchObject({ attempts: 1, markedGood: true });
      }, "report");
    },
    2 * SCENARIO_TIMEOUT_MS,
  );

  test(
    "(c) an unclean shutdown: rollback when a clean one is required, none when it is not",
    async () => {
      const disk = await copyOf(disks.fresh, "scenario-c");
      await bootToTestSystem(boot(disk, "test.unclean_shutdown"), ({ markers }) => {
        expect(markers.imageId).toBe("system-c");
        expect(marker(markers, "mark-shutdown")).toBe("mark-shutdown skipped");
      });
      // both boots after the first on snapshots: each starts from what the unclean one left
      await bootToTestSystem(snapshotBoot(disk), ({ markers }) => {
        expect(markers.imageId).toBe("system-c");
        expect(labels(reportOf(markers))).toEqual(UNCHANGED);
      }, "report");
      await bootToTestSystem(snapshotBoot(disk, "controller.health.require_clean_shutdown=true"), ({ markers }) => {
        expect(markers.imageId).toBe("system-a");
        const report = reportOf(markers);
        expect(labels(report)).toEqual(ROLLED_BACK);
        const conditions = report.update.slots.find((slot) => slot.device === "/dev/vda1")?.conditions;
        expect(conditions?.find((c) => c.condition === "clean-shutdown")?.result).toBe("fail");
      }, "report");
    },
    3 * SCENARIO_TIMEOUT_MS,
  );

  test(
    "(d) the running image's file corrupted on the disk: detected before it is mounted, rollback",
    async () => {
      await bootToTestSystem(snapshotBoot(disks.corrupt), ({ markers, console }) => {
        expect(markers.imageId).toBe("system-a");
        const report = reportOf(markers);
        expect(labels(report)).toEqual(ROLLED_BACK);
        const hash = report.update.slots.find((slot) => slot.device === "/dev/vda1")?.conditions?.find((c) => c.condition === "image-hash");
        expect(hash?.result).toBe("fail");
        expect(console).toMatch(/image-hash: system\.squashfs is not version \S+ signed image: (the image|chunk \d+ of \d+ \(bytes \d+–\d+\)) has sha512/);
        // the corrupt image was never the root: the loop device of / holds the backup's image
        expect(report.mounts.find((mount) => mount.target === "/sysroot")?.source).toBe("/run/controller/slots/SYSFS/system.squashfs");
        expect(report.boot.booted?.device).toBe("/dev/vda2");
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(e) both slots bad: the newest boots anyway by default; with both_unhealthy = shell, dracut's emergency shell and the report",
    async () => {
      await bootToTestSystem(snapshotBoot(disks.bothBad), ({ markers }) => {
        expect(markers.imageId).toBe("system-c");
        const report = reportOf(markers);
        expect(labels(report)).toEqual(UNCHANGED);
        expect(report.boot.warnings).toEqual(expect.arrayContaining([expect.stringContaining('every slot is unhealthy: booting SYSFS on /dev/vda1 anyway (health.both_unhealthy = "newest")')]));
      }, "report");
      const options = vmOptions(snapshotBoot(disks.bothBad, "controller.health.both_unhealthy=shell"));
      await withVm(options, async (vm) => {
        await vm.waitFor('every slot is unhealthy: stopping in the emergency shell (health.both_unhealthy = "shell")', BOOT_TIMEOUT_MS);
        await vm.waitFor("NOTHING TO BOOT.", 30_000);
        // the report, printed for the person at the console
        await vm.waitFor("controller: report: outcome: nothing-bootable", 30_000);
        await vm.waitFor("attempts: fail (5 boots without a mark-good, the limit is 2 (health.max_attempts))", 30_000);
        await vm.waitFor("controller:/# ", 60_000);
        await vm.kill();
      });
    },
    2 * SCENARIO_TIMEOUT_MS,
  );
});
