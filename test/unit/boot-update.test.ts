// A whole boot over the fake with an update server on its network: the stages
// from slots to switch working together, and what the report keeps of them.

import { describe, expect, test } from "bun:test";
import { runBoot } from "../../controller/boot.ts";
import type { FakeSystem, Tree } from "../fake-system.ts";
import { connectToNetwork, labMachine } from "../fake-machine.ts";
import { installedSlot, PUBLIC_KEY, publish, SERVER } from "../fake-repo.ts";
import { memoryLogger } from "../memory-log.ts";

const UPDATE_CONFIG: Tree = {
  "config.d/60-update.toml": `[update]\nservers = ["${SERVER}"]\ntrusted_keys = ["${PUBLIC_KEY}"]\n`,
};

const FLEET = { "50-fleet.toml": '[tmpfs."/var/log"]\nsize = "24m"\n' };

/** A machine running 1.0 from SYSFS with 0.9 as its backup, its BOOTEXT naming the server. */
function machine(slots?: Readonly<Record<string, Tree>>): FakeSystem {
  return labMachine({
    bootext: UPDATE_CONFIG,
    slots: slots ?? { SYSFS: installedSlot({ version: "1.0" }), BACKUPFS: installedSlot({ version: "0.9" }) },
  });
}

async function boot(fake: FakeSystem) {
  const { log, sink } = memoryLogger();
  const result = await runBoot(fake, log);
  return { ...result, text: sink.text() };
}

describe("a boot with an update server", () => {
  test("a newer version is installed into BACKUPFS, switched to, and booted, with its config, on this boot", async () => {
    const fake = connectToNetwork(machine());
    publish(fake, { version: "2.0", fleetConfig: FLEET });
    const { outcome, report, text } = await boot(fake);
    expect(outcome).toBe("handed-off");
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
    expect(report.boot.booted).toMatchObject({ label: "SYSFS", device: "/dev/vda2" });
    expect(fake.labelChanges).toEqual(["/dev/vda2 BACKUPFS -> SYSFS", "/dev/vda1 SYSFS -> BACKUPFS"]);
    expect(report.update.network).toMatchObject({ status: "up", interface: "eth0", hostname: "lab-07" });
    expect(report.update.check).toMatchObject({ decision: "install", manifest: { version: "2.0", server: SERVER, signedBy: PUBLIC_KEY } });
    expect(report.update.serverConfig).toEqual({ status: "fetched", files: [{ name: "50-fleet.toml", sha512: expect.any(String) }] });
    expect(report.update.install).toMatchObject({ status: "installed", bytesFetched: 5000 });
    expect(report.update.switched).toEqual(["/dev/vda2 BACKUPFS -> SYSFS", "/dev/vda1 SYSFS -> BACKUPFS"]);
    expect(report.config.provenance['tmpfs."/var/log".size']).toBe("server:50-fleet.toml");
    expect(report.decisions).toEqual(expect.arrayContaining([expect.stringContaining("update: version 2.0 on /dev/vda2 is now SYSFS")]));
    expect(report.stages.map((stage) => stage.stage)).toEqual([
      "cmdline", "config", "disks", "bootext", "heddle", "slots", "health", "network", "check", "server-config", "install", "switch", "mounts", "overmounts", "attempt", "handoff",
    ]);
    expect(text).toContain("controller: install: 100% of 0.0 MB");

    // the next boot, without a network: version 2.0 from SYSFS, with the config it keeps
    const next = machine({ SYSFS: fake.deviceTree("/dev/vda2") ?? {}, BACKUPFS: fake.deviceTree("/dev/vda1") ?? {} });
    const second = await boot(next);
    expect(next.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
    expect(second.report.update.check.decision).toBe("no-network");
    expect(second.report.update.slots.map((slot) => [slot.label, slot.version])).toEqual([["SYSFS", "2.0"], ["BACKUPFS", "1.0"]]);
    expect(second.report.config.provenance['tmpfs."/var/log".size']).toBe("server:SYSFS/controller/config.d/50-fleet.toml");
  });

  test("a refused update leaves the boot as it was: the local SYSFS, labels untouched", async () => {
    const fake = connectToNetwork(machine());
    publish(fake, { version: "0.5" });
    const { report } = await boot(fake);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-1.0");
    expect(fake.labelChanges).toEqual([]);
    expect(report.update.check.decision).toBe("refused");
    expect(report.update.install).toBeUndefined();
    expect(report.stages.map((stage) => stage.stage)).not.toContain("install");
  });

  test("without a SYSFS the backup boots, and it is not overwritten: no spare slot, no install", async () => {
    const fake = connectToNetwork(labMachine({ labels: ["BACKUPFS", "BOOTEXT"], bootext: UPDATE_CONFIG, slots: { BACKUPFS: installedSlot({ version: "1.0" }) } }));
    publish(fake, { version: "2.0" });
    const { report } = await boot(fake);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-1.0");
    expect(fake.labelChanges).toEqual([]);
    expect(report.update.check.decision).toBe("install");
    expect(report.decisions).toEqual(expect.arrayContaining([expect.stringContaining("there is no spare slot")]));
    expect(fake.httpRequests.some((url) => url.includes("/images/"))).toBe(false);
  });

  test("trust is local: a server config that sets update.trusted_keys is ignored, with a warning", async () => {
    const fake = connectToNetwork(machine());
    publish(fake, { version: "1.0", fleetConfig: { "50-keys.toml": `[update]\ntrusted_keys = []\n` } });
    const { report, text } = await boot(fake);
    expect(report.update.check.decision).toBe("up-to-date");
    expect(text).toContain("the server's config sets update.trusted_keys: ignored");
  });
});
