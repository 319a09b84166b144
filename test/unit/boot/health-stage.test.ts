// Health checks and rollback over the fake: whole boots of a machine whose
// slots carry signed records and life-cycle records in every state.

import { describe, expect, test } from "bun:test";
import { formatStatus } from "../../../controller/boot/report-text.ts";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import type { Config } from "../../../controller/config/schema.ts";
import { type HealthRecord, parseHealth } from "../../../controller/plans/slot-health.ts";
import { connectToNetwork, labMachine, systemImage } from "../../fake-machine.ts";
import { imageBytes, installedSlot, PUBLIC_KEY, publish, SERVER } from "../../fake-repo.ts";
import { type FakeSystem, type Tree, bytesToText } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

const GOOD: HealthRecord = { attempts: 0, markedGood: true, cleanShutdown: true };

function healthConfig(health: Partial<Config["health"]> = {}): Tree {
  const lines = Object.entries(health).map(([key, value]) => `${key} = ${JSON.stringify(value)}`);
  return {
    "config.d/60-update.toml": `[update]\ntrusted_keys = ["${PUBLIC_KEY}"]\n[health]\n${lines.join("\n")}\n`,
  };
}

/** SYSFS runs 2.0 in the given state, BACKUPFS holds a healthy 1.0. */
function machine(sysfs: { health?: HealthRecord; tree?: Tree } = {}, health: Partial<Config["health"]> = {}): FakeSystem {
  return labMachine({
    bootext: healthConfig(health),
    slots: { SYSFS: { ...installedSlot({ version: "2.0" }, sysfs.health), ...sysfs.tree }, BACKUPFS: installedSlot({ version: "1.0" }, GOOD) },
  });
}

async function boot(fake: FakeSystem) {
  const { log, sink } = memoryLogger();
  const result = await runBoot(fake, log);
  return { ...result, text: sink.text() };
}

function slotHealth(fake: FakeSystem, device: string): HealthRecord | undefined {
  const entry = fake.deviceTree(device)?.["controller/health.json"];
  const text = typeof entry === "string" ? entry : entry !== undefined && "text" in entry ? entry.text : undefined;
  if (text === undefined) return undefined;
  const read = parseHealth(text, device);
  return read.status === "read" ? read.health : undefined;
}

/** The booted slot stays mounted: its health.json as the booted system sees it. */
function bootedHealth(fake: FakeSystem, label: string): HealthRecord | undefined {
  const read = parseHealth(fake.peek(`/run/controller/slots/${label}/controller/health.json`) ?? "", label);
  return read.status === "read" ? read.health : undefined;
}

describe("health at boot", () => {
  test("a healthy SYSFS boots; the boot is counted on it and the slot is read-only again", async () => {
    const fake = machine({ health: { ...GOOD, attempts: 1 } });
    const { report } = await boot(fake);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
    expect(fake.labelChanges).toEqual([]);
    expect(bootedHealth(fake, "SYSFS")).toMatchObject({ attempts: 2, markedGood: true, cleanShutdown: false });
    expect(report.boot.health).toMatchObject({ attempts: 2 });
    expect(fake.mountAt("/run/controller/slots/SYSFS")?.readOnly).toBe(true);
    const sysfs = report.update.slots.find((slot) => slot.label === "SYSFS");
    expect(sysfs?.conditions?.map((c) => [c.condition, c.result])).toEqual([
      ["fsck", "pass"],
      ["attempts", "pass"],
      ["clean-shutdown", "skipped"],
      ["image-hash", "pass"],
      ["required-files", "skipped"],
    ]);
  });

  test("too many boots without a mark-good: rollback on this boot, loudly, and the slot says why", async () => {
    const fake = machine({ health: { attempts: 3, markedGood: false, cleanShutdown: false } });
    const { report, text } = await boot(fake);
    expect(fake.labelChanges).toEqual(["/dev/vda1 SYSFS -> DEPRIVED", "/dev/vda2 BACKUPFS -> SYSFS"]);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-1.0");
    expect(report.boot.booted).toMatchObject({ device: "/dev/vda2", label: "SYSFS" });
    expect(text).toContain("ROLLBACK: rollback: SYSFS on /dev/vda1 unhealthy; BACKUPFS on /dev/vda2 becomes SYSFS and boots");
    expect(report.decisions).toEqual(expect.arrayContaining([expect.stringContaining("rollback:")]));
    expect(slotHealth(fake, "/dev/vda1")?.deprivedReason).toBe("attempts: 3 boots without a mark-good, the limit is 3 (health.max_attempts)");
    expect(report.partitions.map((p) => p.label)).toEqual(["DEPRIVED", "SYSFS", "BOOTEXT"]);
    // the next boot's status says why the slot is out of service
    const next = await boot(fake);
    expect(formatStatus(next.report)).toMatch(/\/dev\/vda1 {2}DEPRIVED.*\n.*health at boot: .*, taken out of service \S+: attempts: 3 boots without a mark-good/);
  });

  test("an unclean shutdown rolls back only when a clean one is required", async () => {
    const unclean = { attempts: 0, markedGood: true, cleanShutdown: false };
    const required = machine({ health: unclean }, { require_clean_shutdown: true });
    await boot(required);
    expect(required.peek("/sysroot/etc/test-image-id")).toBe("system-1.0");
    const notRequired = machine({ health: unclean });
    await boot(notRequired);
    expect(notRequired.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
    expect(notRequired.labelChanges).toEqual([]);
  });

  test("a filesystem check that finds errors it cannot repair: rollback", async () => {
    const fake = machine({ health: GOOD });
    fake.brokenFilesystems.set("/dev/vda1", "e2fsck: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY");
    const { report } = await boot(fake);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-1.0");
    const sysfs = report.update.slots.find((slot) => slot.device === "/dev/vda1");
    expect(sysfs?.conditions?.[0]).toEqual({ condition: "fsck", result: "fail", detail: "e2fsck: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY" });
  });

  test("an image whose bytes changed on the disk fails its signed hash: rollback", async () => {
    const corrupted = new Uint8Array(imageBytes("2.0"));
    corrupted[10] = (corrupted[10] ?? 0) ^ 1;
    const fake = machine({ health: GOOD, tree: { "system.squashfs": { text: bytesToText(corrupted), mode: 0o644 } } });
    const { report } = await boot(fake);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-1.0");
    expect(fake.labelChanges).toEqual(["/dev/vda1 SYSFS -> DEPRIVED", "/dev/vda2 BACKUPFS -> SYSFS"]);
    expect(slotHealth(fake, "/dev/vda1")?.deprivedReason).toMatch(/^image-hash: system\.squashfs is not version 2\.0's signed image: the image has sha512 .*, the manifest signs/);
    expect(report.update.slots.find((slot) => slot.device === "/dev/vda1")?.conditions?.find((c) => c.condition === "required-files")?.result).toBe("skipped");
  });

  test("a file the image must contain is missing: rollback; present: boots", async () => {
    const { "sbin/alt-init": _, ...withoutAltInit } = systemImage("system-2.0");
    const options = { verify_image: false, required_files: ["/sbin/init", "/sbin/alt-init"] };
    const missing = machine({ health: GOOD, tree: { "system.squashfs": { image: withoutAltInit } } }, options);
    const { report } = await boot(missing);
    expect(missing.peek("/sysroot/etc/test-image-id")).toBe("system-1.0");
    expect(report.boot.warnings).toEqual(expect.arrayContaining([expect.stringContaining("missing from the image: /sbin/alt-init (health.required_files)")]));
    const present = machine({ health: GOOD }, options);
    await boot(present);
    expect(present.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
  });

  test("a slot the slots stage could not inspect still boots, unchecked", async () => {
    const fake = machine({ health: { attempts: 9, markedGood: false, cleanShutdown: false } });
    // SYSFS is read where it will boot from (kept-slot-mount.ts): only that first mount fails
    fake.mountFailuresLeft.set("/run/controller/slots/SYSFS", 1);
    fake.failingMountTargets.add("/run/controller/inspect/1");
    const { report } = await boot(fake);
    expect(report.outcome).toBe("handed-off");
    expect(report.update.slots.map((slot) => slot.record)).toEqual(["invalid", "invalid"]);
  });

  test("a slot without a signed record cannot be verified: the hash check is skipped, not failed", async () => {
    const fake = labMachine({ bootext: healthConfig() });
    const { report } = await boot(fake);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-a");
    const conditions = report.update.slots.find((slot) => slot.label === "SYSFS")?.conditions;
    expect(conditions?.find((c) => c.condition === "image-hash")).toEqual({
      condition: "image-hash",
      result: "skipped",
      detail: "nothing to verify against: the slot has no signed record",
    });
  });

  describe("both slots unhealthy: health.both_unhealthy", () => {
    const broken = { attempts: 5, markedGood: true, cleanShutdown: true };
    function bothBad(choice: string): FakeSystem {
      return labMachine({
        bootext: healthConfig({ both_unhealthy: choice }),
        slots: { SYSFS: installedSlot({ version: "2.0" }, broken), BACKUPFS: installedSlot({ version: "3.0" }, broken) },
      });
    }

    test("newest: the newest verified version boots, no label changes", async () => {
      const fake = bothBad("newest");
      const { text } = await boot(fake);
      expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-3.0");
      expect(fake.labelChanges).toEqual([]);
      expect(text).toContain('every slot is unhealthy: booting BACKUPFS on /dev/vda2 anyway (health.both_unhealthy = "newest")');
    });

    test("backup: BACKUPFS boots", async () => {
      const fake = bothBad("backup");
      await boot(fake);
      expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-3.0");
    });

    test("shell: nothing boots, dracut's emergency shell, with the report on the console", async () => {
      const fake = bothBad("shell");
      const { outcome, text } = await boot(fake);
      expect(outcome).toBe("nothing-bootable");
      expect(text).toContain('every slot is unhealthy: stopping in the emergency shell (health.both_unhealthy = "shell")');
      expect(text).toContain("controller: report: outcome: nothing-bootable");
    });
  });
});

describe("updates respect health", () => {
  test("an update waits while the running SYSFS has not been marked good", async () => {
    const fake = connectToNetwork(
      labMachine({
        bootext: { "config.d/60-update.toml": `[update]\nservers = ["${SERVER}"]\ntrusted_keys = ["${PUBLIC_KEY}"]\n` },
        slots: { SYSFS: installedSlot({ version: "2.0" }, { attempts: 1, markedGood: false, cleanShutdown: false }), BACKUPFS: installedSlot({ version: "1.0" }) },
      }),
    );
    publish(fake, { version: "3.0" });
    const { report } = await boot(fake);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
    expect(report.update.install).toBeUndefined();
    expect(report.decisions).toEqual(expect.arrayContaining([expect.stringContaining("version 3.0 waits: the running system (SYSFS on /dev/vda1) has not been marked good yet")]));
    expect(fake.httpRequests.some((url) => url.includes("/images/"))).toBe(false);
  });

  test("an update waits while the system that boots failed its health check, and says so", async () => {
    const exhausted = { attempts: 5, markedGood: true, cleanShutdown: true };
    const fake = connectToNetwork(
      labMachine({
        bootext: {
          ...healthConfig({ both_unhealthy: "newest" }),
          "config.d/61-servers.toml": `[update]\nservers = ["${SERVER}"]\n`,
        },
        slots: { SYSFS: installedSlot({ version: "2.0" }, exhausted), BACKUPFS: installedSlot({ version: "3.0" }, exhausted) },
      }),
    );
    publish(fake, { version: "4.0" });
    const { report } = await boot(fake);
    expect(report.update.install).toBeUndefined();
    const waits = report.decisions.find((decision) => decision.includes("version 4.0 waits"));
    expect(waits).toContain("the running system (BACKUPFS on /dev/vda2) failed its health check");
    expect(waits).not.toContain("marked good");
  });

  test("after a rollback the DEPRIVED slot takes the next update, not the system that runs", async () => {
    const fake = connectToNetwork(
      labMachine({
        bootext: { "config.d/60-update.toml": `[update]\nservers = ["${SERVER}"]\ntrusted_keys = ["${PUBLIC_KEY}"]\n` },
        slots: { SYSFS: installedSlot({ version: "2.0" }, { attempts: 3, markedGood: false, cleanShutdown: false }), BACKUPFS: installedSlot({ version: "1.0" }) },
      }),
    );
    publish(fake, { version: "2.1" });
    const { report } = await boot(fake);
    expect(report.update.install).toMatchObject({ status: "installed", device: "/dev/vda1" });
    expect(fake.labelChanges).toEqual(["/dev/vda1 SYSFS -> DEPRIVED", "/dev/vda2 BACKUPFS -> SYSFS", "/dev/vda1 DEPRIVED -> SYSFS", "/dev/vda2 SYSFS -> BACKUPFS"]);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-2.1");
  });
});
