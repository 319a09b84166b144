// A whole boot over the fake with an update server on its network: the stages
// from slots to switch working together, and what the report keeps of them.

import { afterAll, describe, expect, test } from "bun:test";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { formatHealth } from "../../../controller/plans/slot-health.ts";
import { LinuxSystem } from "../../../controller/system/linux-system.ts";
import { connectToNetwork, labMachine, systemImage } from "../../fake-machine.ts";
import { installedSlot, PUBLIC_KEY, publish, SERVER } from "../../fake-repo.ts";
import type { FakeSystem, Tree } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

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
    expect(report.update.serverConfig).toEqual({ status: "fetched", files: [{ name: "50-fleet.toml", sha512: expect.any(String) }], matched: [] });
    expect(report.update.install).toMatchObject({ status: "installed", bytesFetched: 5000 });
    expect(report.update.switched).toEqual(["/dev/vda2 BACKUPFS -> SYSFS", "/dev/vda1 SYSFS -> BACKUPFS"]);
    expect(report.config.provenance['tmpfs."/var/log".size']).toBe("server:50-fleet.toml");
    expect(report.decisions).toEqual(expect.arrayContaining([expect.stringContaining("update: version 2.0 on /dev/vda2 is now SYSFS")]));
    expect(report.stages.map((stage) => stage.stage)).toEqual([
      "cmdline", "config", "disks", "bootext", "heddle", "slots", "health", "network", "check", "server-config", "install", "switch", "mounts", "overmounts", "attempt", "kernel", "handoff",
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

  test("where the machine reports is local: a server config that sets fleet.* is ignored, with a warning, and the report holds the machine's own", async () => {
    const fake = connectToNetwork(machine());
    publish(fake, { version: "1.0", fleetConfig: { "50-fleet.toml": '[fleet]\nserver = "http://fleet.example.org/"\ntoken_file = "/tmp/token"\n' } });
    const { report, text } = await boot(fake);
    expect(report.update.check.decision).toBe("up-to-date");
    expect(text).toContain("the server's config sets fleet.*: ignored, where the machine reports comes from its own config");
    expect(report.config.values.fleet).toEqual({ server: "", token_file: "/etc/controller/fleet-token", ca_bundle: "/etc/ssl/certs/ca-certificates.crt" });
    expect(report.config.provenance["fleet.server"]).toBe("built-in defaults");
    expect(report.config.provenance["fleet.token_file"]).toBe("built-in defaults");
  });

  test("a server config that sets only fleet.ca_bundle (whom the machine trusts for its fleet server) is ignored with the same warning", async () => {
    const fake = connectToNetwork(machine());
    publish(fake, { version: "1.0", fleetConfig: { "50-fleet.toml": '[fleet]\nca_bundle = "/tmp/their-ca.pem"\n' } });
    const { report, text } = await boot(fake);
    expect(text).toContain("the server's config sets fleet.*: ignored, where the machine reports comes from its own config");
    expect(report.config.values.fleet.ca_bundle).toBe("/etc/ssl/certs/ca-certificates.crt");
    expect(report.config.provenance["fleet.ca_bundle"]).toBe("built-in defaults");
  });
});

// --- who the machine is: the server's per-machine config -----------------------

/**
 * The fake's update server, served by a real HTTP server on 127.0.0.1 and
 * fetched with the controller's own HTTP client: what a machine gets is what
 * goes over a socket.
 */
let network: FakeSystem | undefined;
const loopback = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(request) {
    const resource = network?.http.get(request.url);
    return resource === undefined ? new Response("not found", { status: 404 }) : new Response(resource.body);
  },
});
afterAll(() => loopback.stop(true));
const LOOPBACK = `http://127.0.0.1:${loopback.port}/`;
const http = new LinuxSystem(memoryLogger().log, 30_000);

/** A machine running 1.0 whose lease names it lab-07, its update server on 127.0.0.1; `ownConfig` goes into its BOOTEXT config.d. */
function machineOnLoopback(ownConfig = ""): FakeSystem {
  const fake = connectToNetwork(
    labMachine({
      bootext: { "config.d/60-update.toml": `[update]\nservers = ["${LOOPBACK}"]\ntrusted_keys = ["${PUBLIC_KEY}"]\n${ownConfig}` },
      slots: { SYSFS: installedSlot({ version: "1.0" }), BACKUPFS: installedSlot({ version: "0.9" }) },
    }),
  );
  fake.httpGet = (url, options) => http.httpGet(url, options);
  network = fake;
  return fake;
}

const PER_MACHINE = [
  { match: { mac: "52:54:00:12:34:56" }, files: { "60-by-mac.toml": "[timeouts]\ndevices_seconds = 7\n" } },
  { match: { hostname: "lab-07" }, files: { "70-host.toml": '[tmpfs."/var/log"]\nsize = "7m"\n' } },
  { match: { hostname: "lab-08" }, files: { "70-host.toml": '[tmpfs."/var/log"]\nsize = "8m"\n' } },
] as const;

describe("the server's config for one machine", () => {
  test("the DHCP lease's hostname selects nothing: hostname entries match only a name the machine's own config gives", async () => {
    const fake = machineOnLoopback();
    publish(fake, { version: "1.0", machineConfig: PER_MACHINE }, LOOPBACK);
    const { report, text } = await boot(fake);
    // the lease says lab-07 ...
    expect(report.update.network).toMatchObject({ status: "up", hostname: "lab-07" });
    expect(report.update.check.decision).toBe("up-to-date");
    // ... but only the machine's own NIC picks its config
    expect(report.update.serverConfig).toEqual({
      status: "fetched",
      files: [{ name: "60-by-mac.toml", sha512: expect.any(String) }],
      matched: ["mac 52:54:00:12:34:56"],
      ignored: "hostname entries ignored: no machine name in the local config (update.machine_name); a hostname from DHCP is never used",
    });
    expect(report.config.values.tmpfs["/var/log"]?.size).toBe("64m");
    expect(report.config.provenance["timeouts.devices_seconds"]).toBe("server:60-by-mac.toml");
    expect(text).toContain("hostname entries ignored: no machine name in the local config");
    expect(fake.httpRequests).toEqual([]);
  });

  test("update.machine_name on BOOTEXT picks its hostname entry; the same key from the server's config is ignored, with a warning", async () => {
    const fake = machineOnLoopback('machine_name = "lab-08"\n');
    publish(fake, { version: "1.0", fleetConfig: { "50-name.toml": '[update]\nmachine_name = "lab-07"\n' }, machineConfig: PER_MACHINE }, LOOPBACK);
    const { report, text } = await boot(fake);
    expect(report.update.serverConfig).toMatchObject({ status: "fetched", matched: ["mac 52:54:00:12:34:56", "hostname lab-08"] });
    expect(report.config.values.tmpfs["/var/log"]?.size).toBe("8m");
    expect(report.config.provenance['tmpfs."/var/log".size']).toBe("server:70-host.toml");
    expect(text).toContain("the server's config sets update.machine_name: ignored");
  });
});

// --- the version floor and the longest validity --------------------------------

/** A slot whose system came up healthy but whose record is gone: the installed version is unknown. */
const SLOT_WITHOUT_RECORD: Tree = {
  "system.squashfs": { image: systemImage("system-without-record") },
  "controller/health.json": formatHealth({ attempts: 0, markedGood: true, cleanShutdown: true }),
};

describe("which versions a machine takes", () => {
  test("a SYSFS without a record does not let a replayed old manifest overwrite the newer BACKUPFS", async () => {
    const fake = connectToNetwork(machine({ SYSFS: SLOT_WITHOUT_RECORD, BACKUPFS: installedSlot({ version: "2.0" }) }));
    publish(fake, { version: "1.5" });
    const { report } = await boot(fake);
    expect(report.update.check.decision).toBe("refused");
    expect(report.update.check.attempts).toEqual([
      {
        server: SERVER,
        outcome: "refused",
        detail:
          "Cannot install version 1.5 from channel stable: it is lower than version 2.0, verified on BACKUPFS on /dev/vda2 " +
          "(the server replays an old manifest; to roll back, publish the old image under a new version)",
      },
    ]);
    expect(fake.httpRequests.some((url) => url.includes("/images/"))).toBe(false);
    expect(fake.labelChanges).toEqual([]);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-without-record");
  });

  test("at the floor's version or above, and when no slot has a record, a signed version installs, and the check says why", async () => {
    const atFloor = connectToNetwork(machine({ SYSFS: SLOT_WITHOUT_RECORD, BACKUPFS: installedSlot({ version: "2.0" }) }));
    publish(atFloor, { version: "2.0" });
    expect((await boot(atFloor)).report.update.check).toMatchObject({
      decision: "install",
      reason: `${SERVER} publishes version 2.0 (installed: unknown: the slot that boots has no verified record; nothing below version 2.0 (on BACKUPFS on /dev/vda2) may install): installing it`,
    });

    const noRecords = connectToNetwork(machine({ SYSFS: SLOT_WITHOUT_RECORD, BACKUPFS: { "system.squashfs": { image: systemImage("system-b") } } }));
    publish(noRecords, { version: "0.1" });
    const { report } = await boot(noRecords);
    expect(report.update.check).toMatchObject({
      decision: "install",
      reason: `${SERVER} publishes version 0.1 (installed: unknown: no slot has a verified record, so any signed version may install): installing it`,
    });
  });

  test("a manifest that expires in year 9999 is refused; update.max_manifest_validity_days tightens the cap", async () => {
    const forever = connectToNetwork(machine());
    publish(forever, { version: "2.0", expires: "9999-12-31T00:00:00.000Z" });
    const { report } = await boot(forever);
    expect(report.update.check.decision).toBe("refused");
    expect(report.update.check.attempts[0]?.detail).toStartWith("Cannot install version 2.0 from channel stable: it is valid for 2912473 days");
    expect(report.update.check.attempts[0]?.detail).toEndWith("longer than update.max_manifest_validity_days (3650) allows");
    expect(forever.labelChanges).toEqual([]);

    // the fake repository's manifests are valid for 182 days
    const capped = connectToNetwork(
      labMachine({
        bootext: { "config.d/60-update.toml": `${UPDATE_CONFIG["config.d/60-update.toml"]}max_manifest_validity_days = 90\n` },
        slots: { SYSFS: installedSlot({ version: "1.0" }), BACKUPFS: installedSlot({ version: "0.9" }) },
      }),
    );
    publish(capped, { version: "2.0" });
    const second = await boot(capped);
    expect(second.report.update.check.attempts[0]?.detail).toEndWith("longer than update.max_manifest_validity_days (90) allows");
    expect(capped.labelChanges).toEqual([]);
  });
});
