import { describe, expect, test } from "bun:test";
import { formatStatus } from "../../../controller/boot/report-text.ts";
import type { BootReport } from "../../../controller/boot/report.ts";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { markBootedSlot, readLiveHealth, runLifecycleCommand } from "../../../controller/cli/lifecycle.ts";
import { pairId } from "../../../controller/plans/boot-entries.ts";
import { grubenv } from "../../../controller/plans/grub-config.ts";
import { formatHealth, type HealthRecord, parseHealth } from "../../../controller/plans/slot-health.ts";
import { labMachine } from "../../fake-machine.ts";
import { FakeSystem, type Tree } from "../../fake-system.ts";
import { FakeFleet, FLEET_SERVER, OUTBOX, reportingMachine, TOKEN_FILE } from "../../fleet-machine.ts";
import { memoryLogger } from "../../memory-log.ts";
import { controller } from "../../run-controller.ts";

const SLOT_DIR = "/run/controller/slots/SYSFS";
const HEALTH_PATH = `${SLOT_DIR}/controller/health.json`;
const NOW = new Date("2026-03-04T05:06:07.000Z");
const BOOTED = { role: "system", label: "SYSFS", device: "/dev/vda1", fsType: "ext4", image: `${SLOT_DIR}/system.squashfs` };

const BOOTED_TWICE: HealthRecord = { attempts: 2, markedGood: false, cleanShutdown: false, lastBootAt: "2026-03-04T05:00:00.000Z" };

const SLOT: Tree = { "system.squashfs": "<image bytes>", "controller/health.json": formatHealth(BOOTED_TWICE) };

/** The booted system as the controller leaves it: the slot mounted read-only under /run, the report naming it. */
async function bootedSystem(slot: Tree = SLOT, report: object = { outcome: "handed-off", boot: { candidates: [], booted: BOOTED } }, fake = new FakeSystem()) {
  fake.addDevice({ device: "/dev/vda1", label: "SYSFS", fsType: "ext4" }, slot).addTree(SLOT_DIR, {});
  await fake.mount({ kind: "filesystem", source: "/dev/vda1", target: SLOT_DIR, fsType: "ext4", options: ["ro"] });
  fake.addTree("/run/controller", { "report.json": JSON.stringify(report) });
  return fake;
}

function healthOnDisk(fake: FakeSystem): HealthRecord | undefined {
  const read = parseHealth(fake.peek(HEALTH_PATH) ?? "", HEALTH_PATH);
  return read.status === "read" ? read.health : undefined;
}

function remounts(fake: FakeSystem): string[] {
  return fake.commands.filter((argv) => argv[0] === "mount").map((argv) => argv.join(" "));
}

function output() {
  const lines = { out: "", err: "" };
  return { lines, sink: { out: (text: string) => (lines.out += text), err: (text: string) => (lines.err += text) } };
}

describe("markBootedSlot", () => {
  test("mark-good: attempts back to 0, marked good, written read-write and read-only again", async () => {
    const fake = await bootedSystem();
    const result = await markBootedSlot(fake, "good", NOW);
    const expected = { ...BOOTED_TWICE, attempts: 0, markedGood: true, lastGoodAt: NOW.toISOString() };
    expect(result).toEqual({ slot: "SYSFS on /dev/vda1", health: expected });
    expect(healthOnDisk(fake)).toEqual(expected);
    expect(remounts(fake)).toEqual([`mount -o remount,rw ${SLOT_DIR}`, `mount -o remount,ro ${SLOT_DIR}`]);
    expect(fake.mountAt(SLOT_DIR)?.readOnly).toBe(true);
    // the write reached the partition: it is there for the next boot
    await fake.unmount(SLOT_DIR);
    expect(fake.deviceTree("/dev/vda1")?.["controller/health.json"]).toEqual({ text: formatHealth(expected), mode: 0o644 });
  });

  test("mark-shutdown: a clean shutdown, the attempts left as they are", async () => {
    const fake = await bootedSystem();
    const { health } = await markBootedSlot(fake, "shutdown", NOW);
    expect(health).toEqual({ ...BOOTED_TWICE, cleanShutdown: true });
    expect(healthOnDisk(fake)).toEqual(health);
    expect(fake.mountAt(SLOT_DIR)?.readOnly).toBe(true);
  });

  test("a slot without health.json starts from nothing known", async () => {
    const fake = await bootedSystem({ "system.squashfs": "<image bytes>" });
    const { health } = await markBootedSlot(fake, "good", NOW);
    expect(health).toEqual({ attempts: 0, markedGood: true, cleanShutdown: true, lastGoodAt: NOW.toISOString() });
    expect(healthOnDisk(fake)).toEqual(health);
  });

  test("a corrupt health.json counts as unknown and is replaced", async () => {
    const fake = await bootedSystem({ "system.squashfs": "<image bytes>", "controller/health.json": "{ half a rec" });
    const result = await markBootedSlot(fake, "good", NOW);
    expect(result.health).toEqual({ attempts: 0, markedGood: true, cleanShutdown: true, lastGoodAt: NOW.toISOString() });
    expect(result.replaced).toStartWith(`${HEALTH_PATH}: Cannot read it as JSON`);
    expect(healthOnDisk(fake)).toEqual(result.health);
  });

  test("a failed write still leaves the slot read-only", async () => {
    // a file where the record's folder belongs: health.json cannot be written
    const fake = await bootedSystem({ "system.squashfs": "<image bytes>", controller: "not a folder" });
    await expect(markBootedSlot(fake, "good", NOW)).rejects.toThrow(`Cannot mark the booted slot good: Cannot write ${HEALTH_PATH}: ENOTDIR`);
    expect(remounts(fake)).toEqual([`mount -o remount,rw ${SLOT_DIR}`, `mount -o remount,ro ${SLOT_DIR}`]);
    expect(fake.mountAt(SLOT_DIR)?.readOnly).toBe(true);
  });

  test("a slot that cannot be made read-only again is the error reported, with the failed write", async () => {
    class StuckWritable extends FakeSystem {
      override async remount(target: string, readOnly: boolean): Promise<void> {
        if (readOnly) throw new Error("mount: /run/controller/slots/SYSFS: mount point is busy");
        await super.remount(target, readOnly);
      }
    }
    const fake = await bootedSystem({ "system.squashfs": "x", controller: "x" }, undefined, new StuckWritable());
    const error = await markBootedSlot(fake, "shutdown", NOW).then(() => undefined, (e: Error) => e.message);
    expect(error).toStartWith(
      "Cannot record the clean shutdown of the booted slot: Cannot make SYSFS on /dev/vda1 read-only again at /run/controller/slots/SYSFS, it stays writable until the next boot: mount:",
    );
    expect(error).toContain(`; before that: Cannot write ${HEALTH_PATH}: ENOTDIR`);
  });

  test("no report: this system was not booted by the controller", async () => {
    await expect(markBootedSlot(new FakeSystem(), "good", NOW)).rejects.toThrow(
      "Cannot mark the booted slot good: this system was not booted by the controller, or /run was cleared: there is no boot report at /run/controller/report.json (got ENOENT",
    );
  });

  test("a report that is not JSON", async () => {
    const fake = new FakeSystem().addTree("/run/controller", { "report.json": "{" });
    await expect(markBootedSlot(fake, "good", NOW)).rejects.toThrow("Cannot mark the booted slot good: /run/controller/report.json: Cannot read it as JSON");
  });

  test("nothing booted", async () => {
    const fake = await bootedSystem(SLOT, { outcome: "nothing-bootable", boot: { candidates: [] } });
    await expect(markBootedSlot(fake, "shutdown", NOW)).rejects.toThrow(
      'Cannot record the clean shutdown of the booted slot: /run/controller/report.json says nothing booted: got outcome "nothing-bootable" and no boot.booted',
    );
    expect(remounts(fake)).toEqual([]);
  });

  test("a booted entry without its label, device or image", async () => {
    const fake = await bootedSystem(SLOT, { boot: { booted: { label: "SYSFS" } } });
    await expect(markBootedSlot(fake, "good", NOW)).rejects.toThrow('/run/controller/report.json: key boot.booted: expected label, device and image, got {"label":"SYSFS"}');
  });

  test("the slot is not mounted any more", async () => {
    const fake = await bootedSystem();
    await fake.unmount(SLOT_DIR);
    await expect(markBootedSlot(fake, "good", NOW)).rejects.toThrow(
      `Cannot mark the booted slot good: SYSFS on /dev/vda1 is not mounted at ${SLOT_DIR}: expected its system image at ${SLOT_DIR}/system.squashfs, got nothing`,
    );
    expect(remounts(fake)).toEqual([]);
  });

  test("works on what a boot over the fake machine leaves behind", async () => {
    const fake = labMachine();
    const { outcome } = await runBoot(fake, memoryLogger().log);
    expect(outcome).toBe("handed-off");
    const { slot, health } = await markBootedSlot(fake, "good", NOW);
    expect(slot).toBe("SYSFS on /dev/vda1");
    expect(health).toMatchObject({ attempts: 0, markedGood: true });
    expect(fake.mountAt(SLOT_DIR)?.readOnly).toBe(true);
  });
});

describe("controller mark-good / mark-shutdown", () => {
  test("prints one line saying what it recorded", async () => {
    const fake = await bootedSystem();
    const good = output();
    expect(await runLifecycleCommand(["mark-good"], fake, good.sink)).toBe(0);
    expect(good.lines).toEqual({ out: "controller: SYSFS on /dev/vda1 marked good (attempts 0)\n", err: "" });
    const shutdown = output();
    expect(await runLifecycleCommand(["mark-shutdown"], fake, shutdown.sink)).toBe(0);
    expect(shutdown.lines).toEqual({ out: "controller: SYSFS on /dev/vda1 marked shut down cleanly (attempts 0)\n", err: "" });
  });

  test("warns when it replaced an unreadable record", async () => {
    const { lines, sink } = output();
    expect(await runLifecycleCommand(["mark-good"], await bootedSystem({ "system.squashfs": "x", "controller/health.json": '{"format": 1}' }), sink)).toBe(0);
    expect(lines.err).toBe(`controller: WARNING: ${HEALTH_PATH}: key attempts: expected a whole number from 0, got undefined; replaced it with a fresh record\n`);
  });

  test("a failure is exit status 1 with the reason; wrong arguments 2", async () => {
    const failed = output();
    expect(await runLifecycleCommand(["mark-good"], new FakeSystem(), failed.sink)).toBe(1);
    expect(failed.lines.err).toStartWith("controller: Cannot mark the booted slot good: this system was not booted by the controller");
    const extra = output();
    expect(await runLifecycleCommand(["mark-shutdown", "now"], await bootedSystem(), extra.sink)).toBe(2);
    expect(extra.lines.err).toBe('mark-shutdown takes no arguments, got "now"\n');
    expect(await runLifecycleCommand(["mark-bad"], await bootedSystem(), output().sink)).toBe(2);
  });

  test("mark-good and mark-shutdown outside a system the controller booted: exit status 1 and why", async () => {
    for (const command of ["mark-good", "mark-shutdown"]) {
      const result = await controller(command);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("this system was not booted by the controller");
    }
    expect((await controller("mark-good", "extra")).code).toBe(2);
  });
});

describe("controller mark-good / mark-shutdown with fleet.server set", () => {
  const REPORT = { outcome: "handed-off", boot: { candidates: [], booted: BOOTED }, config: { values: { fleet: { server: FLEET_SERVER, token_file: TOKEN_FILE } } } };

  test("mark-good queues its envelope for the running sender, sends nothing itself", async () => {
    const fake = await bootedSystem(SLOT, REPORT, reportingMachine());
    const fleet = new FakeFleet();
    const { lines, sink } = output();
    expect(await runLifecycleCommand(["mark-good"], fake, sink, fleet.fetch)).toBe(0);
    const queued = await fake.readdir(OUTBOX);
    expect(queued).toEqual([expect.stringMatching(/^1-\d{15}-mark-good-[0-9a-f]{8}\.json$/)]);
    expect(lines.out).toBe(`controller: SYSFS on /dev/vda1 marked good (attempts 0)\ncontroller: queued the mark-good report as ${queued[0]}\n`);
    expect(fleet.requests).toEqual([]);
  });

  test("mark-shutdown sends its envelope at once; a server away leaves it queued, and the exit status is the mark's", async () => {
    const fake = await bootedSystem(SLOT, REPORT, reportingMachine());
    const fleet = new FakeFleet();
    expect(await runLifecycleCommand(["mark-shutdown"], fake, output().sink, fleet.fetch)).toBe(0);
    expect(fleet.kinds()).toEqual(["mark-shutdown"]);

    const away = new FakeFleet([new Error("Unable to connect")]);
    const { lines, sink } = output();
    expect(await runLifecycleCommand(["mark-shutdown"], fake, sink, away.fetch)).toBe(0);
    expect(lines.out).toContain("controller: cannot send the mark-shutdown report to http://fleet.test/api/reports now: Unable to connect; queued as 1-");
    expect(await fake.readdir(OUTBOX)).toHaveLength(1);
  });

  test("a diskless boot has no slot to mark, but its mark-good still goes to the fleet", async () => {
    const fake = reportingMachine({ ...REPORT, diskless: { status: "running-from-ram" } });
    const { lines, sink } = output();
    expect(await runLifecycleCommand(["mark-good"], fake, sink, new FakeFleet().fetch)).toBe(0);
    expect(lines.out).toContain("controller: queued the mark-good report as 1-");
  });

  test("what keeps the report from going is a line; the mark stands and the exit status is 0", async () => {
    const fake = await bootedSystem(SLOT, REPORT, reportingMachine().addTree("/etc", { "machine-id": "" }));
    const { lines, sink } = output();
    expect(await runLifecycleCommand(["mark-good"], fake, sink, new FakeFleet().fetch)).toBe(0);
    expect(healthOnDisk(fake)?.markedGood).toBe(true);
    expect(lines.out).toContain("controller: Cannot send the mark-good report: Cannot name this machine");
  });

  test("a slot that cannot be marked sends nothing", async () => {
    const fake = reportingMachine(REPORT);
    const fleet = new FakeFleet();
    expect(await runLifecycleCommand(["mark-shutdown"], fake, output().sink, fleet.fetch)).toBe(1);
    expect(fleet.requests).toEqual([]);
    expect(await fake.readdir(OUTBOX).catch(() => [])).toEqual([]);
  });
});

describe("mark-good after a reboot into a new kernel: GRUB's lasting choice back to active", () => {
  const BOOTEXT_DIR = "/run/controller/bootext";
  const kernel = {
    release: "6.1.0-58-amd64",
    vmlinuz: { path: "/boot/vmlinuz-6.1.0-58-amd64", size: 100, sha512: "2".repeat(128) },
    initrd: { path: "/boot/initrd.img-6.1.0-58-amd64", size: 200, sha512: "b".repeat(128) },
  };
  const manifest = {
    format: 2,
    channel: "stable",
    version: "2.0",
    created: "2026-11-23T10:00:00.000Z",
    expires: "2026-12-23T10:00:00.000Z",
    image: { url: `images/${"a".repeat(128)}.squashfs`, size: 13, sha512: "a".repeat(128), format: "squashfs" },
    kernel,
    config: { fleet: [], machines: [] },
  };
  const slotPair = pairId({ release: kernel.release, kernel: kernel.vmlinuz, initrd: kernel.initrd });
  const armed = grubenv({ saved_entry: "recovery", next_entry: "" });

  /** Booted on `running` (the new kernel unless told): BOOTEXT read-only with grubenv still on recovery, its active link naming `activePair`. */
  async function rebootedInto(activePair: string, running = kernel.release) {
    const fake = new FakeSystem().addDevice({ device: "/dev/vda3", label: "BOOTEXT", fsType: "ext4" }, {
      "grub/grubenv": armed.ok ? armed.text : "",
      "Kernel/active": { symlink: `pairs/${activePair}` },
    });
    fake.addTree(BOOTEXT_DIR, {}).commandHandlers.set("fsfreeze", () => ({ stdout: "" }));
    fake.addTree("/proc/sys/kernel", { osrelease: `${running}\n`, version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)\n" });
    await fake.mount({ kind: "filesystem", source: "/dev/vda3", target: BOOTEXT_DIR, fsType: "ext4", options: ["ro"] });
    const report = { outcome: "handed-off", boot: { candidates: [], booted: BOOTED }, bootext: { mountPoint: BOOTEXT_DIR, device: "/dev/vda3", readOnly: true } };
    return bootedSystem({ ...SLOT, "controller/manifest.json": JSON.stringify(manifest) }, report, fake);
  }

  test("the booted slot's kernel is the active entry: saved_entry=active, BOOTEXT read-only again", async () => {
    const fake = await rebootedInto(slotPair);
    const { lines, sink } = output();
    expect(await runLifecycleCommand(["mark-good"], fake, sink)).toBe(0);
    expect(lines.out).toBe(
      `controller: SYSFS on /dev/vda1 marked good (attempts 0)\ncontroller: ${BOOTEXT_DIR}/grub/grubenv: saved_entry=active, the booted slot's kernel ${slotPair} is BOOTEXT's active entry\n`,
    );
    const settled = grubenv({ saved_entry: "active" });
    expect(settled.ok && fake.peek(`${BOOTEXT_DIR}/grub/grubenv`) === settled.text).toBe(true);
    expect(fake.mountAt(BOOTEXT_DIR)?.readOnly).toBe(true);
  });

  test("the active entry is another kernel (GRUB fell back to recovery): grubenv left as it is", async () => {
    const fake = await rebootedInto(`6.1.0-57-amd64-${"1".repeat(16)}-${"a".repeat(16)}`);
    const { lines, sink } = output();
    expect(await runLifecycleCommand(["mark-good"], fake, sink)).toBe(0);
    expect(lines.out).toBe("controller: SYSFS on /dev/vda1 marked good (attempts 0)\n");
    expect(armed.ok && fake.peek(`${BOOTEXT_DIR}/grub/grubenv`) === armed.text).toBe(true);
  });

  test("the active entry is the slot's kernel, but the system came up on another (GRUB fell back to recovery): grubenv left as it is", async () => {
    const fake = await rebootedInto(slotPair, "6.1.0-57-amd64");
    const { lines, sink } = output();
    expect(await runLifecycleCommand(["mark-good"], fake, sink)).toBe(0);
    expect(lines.out).toBe("controller: SYSFS on /dev/vda1 marked good (attempts 0)\n");
    expect(armed.ok && fake.peek(`${BOOTEXT_DIR}/grub/grubenv`) === armed.text).toBe(true);
  });

  test("a grubenv that cannot be written: marked good all the same, exit status 1 and why", async () => {
    const fake = await rebootedInto(slotPair);
    fake.commandHandlers.set("fsfreeze", () => {
      throw new Error("fsfreeze: no such program");
    });
    const { lines, sink } = output();
    expect(await runLifecycleCommand(["mark-good"], fake, sink)).toBe(1);
    expect(lines.err).toBe("controller: the slot is marked good, but Cannot make GRUB boot the active entry again: fsfreeze: no such program\n");
    expect(healthOnDisk(fake)?.markedGood).toBe(true);
  });
});

describe("readLiveHealth", () => {
  const report = (booted: unknown) => ({ boot: { candidates: [], booted } }) as unknown as BootReport;

  test("the booted slot's health.json as it is now", async () => {
    expect(await readLiveHealth(await bootedSystem(), report(BOOTED))).toEqual({ status: "read", health: BOOTED_TWICE });
    expect(await readLiveHealth(await bootedSystem({ "system.squashfs": "x" }), report(BOOTED))).toEqual({ status: "none" });
  });

  test("says why it cannot, instead of failing; nothing when nothing booted", async () => {
    expect(await readLiveHealth(new FakeSystem(), report(BOOTED))).toEqual({
      status: "unavailable",
      problem: `SYSFS on /dev/vda1 is not mounted at ${SLOT_DIR}: expected its system image at ${SLOT_DIR}/system.squashfs, got nothing`,
    });
    expect(await readLiveHealth(await bootedSystem(), report(undefined))).toBeUndefined();
  });
});

describe("controller status with health", () => {
  async function bootReport(): Promise<BootReport> {
    const { report } = await runBoot(labMachine(), memoryLogger().log);
    const [sysfs, backup, ...others] = report.update.slots;
    if (sysfs === undefined || backup === undefined) throw new Error(`expected SYSFS and BACKUPFS in the report, got ${JSON.stringify(report.update.slots)}`);
    return {
      ...report,
      update: {
        ...report.update,
        slots: [
          {
            ...sysfs,
            health: BOOTED_TWICE,
            conditions: [
              { condition: "attempts", result: "pass", detail: "2 of 3" },
              { condition: "fsck", result: "skipped", detail: "" },
              { condition: "image-hash", result: "fail", detail: "sha512 differs" },
            ],
          },
          { ...backup, health: { attempts: 0, markedGood: true, cleanShutdown: true, lastGoodAt: "2026-02-01T00:00:00.000Z" } },
          ...others,
        ],
      },
    };
  }

  test("each slot with its health and conditions at boot; the booted one also as it is now", async () => {
    const text = formatStatus(await bootReport(), { status: "read", health: { ...BOOTED_TWICE, attempts: 0, markedGood: true, lastGoodAt: NOW.toISOString() } });
    const slots = text.slice(text.indexOf("slots:\n"), text.indexOf("\nupdate:"));
    expect(slots).toBe(
      [
        "slots:",
        "  /dev/vda1  SYSFS  (no signed record)  (booted)",
        "    health at boot: attempts 2, never marked good, no clean shutdown recorded, last boot 2026-03-04T05:00:00.000Z",
        "    check attempts: pass (2 of 3)",
        "    check fsck: skipped",
        "    check image-hash: fail (sha512 differs)",
        "    now: attempts 0, marked good (last 2026-03-04T05:06:07.000Z), no clean shutdown recorded, last boot 2026-03-04T05:00:00.000Z",
        "  /dev/vda2  BACKUPFS  (no signed record)",
        "    health at boot: attempts 0, marked good (last 2026-02-01T00:00:00.000Z), shut down cleanly",
      ].join("\n"),
    );
  });

  test("what the live health says when it has no record or cannot read one", async () => {
    const report = await bootReport();
    expect(formatStatus(report, { status: "none" })).toContain("    now: no controller/health.json on the slot yet\n");
    expect(formatStatus(report, { status: "invalid", problem: "bad JSON" })).toContain("    now: unknown: bad JSON\n");
    expect(formatStatus(report)).not.toContain("now:");
  });

  test("the booted slot is shown with its live health even when the report lists no slots", async () => {
    const report = await bootReport();
    const text = formatStatus({ ...report, update: { ...report.update, slots: [] } }, { status: "unavailable", problem: "not mounted" });
    expect(text).toContain("slots:\n  /dev/vda1  SYSFS  (booted)\n    now: unknown: not mounted\nupdate:");
    expect(formatStatus({ ...report, update: { ...report.update, slots: [] } })).toContain("slots:\n  none\nupdate:");
  });
});
