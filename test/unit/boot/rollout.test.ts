// Rollouts in waves and the download window in a whole boot over the fake
// (issue 17): a version rolled out to a share of the machines installs only on
// those whose place (by the machine-id kept on BOOTEXT) is below it; outside
// update.download_window no download starts; either way the machine boots its
// local system and the check says why, on the console and in the report.

import { describe, expect, test } from "bun:test";
import { formatStatus } from "../../../controller/boot/report-text.ts";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { describeShare } from "../../../controller/plans/rollout.ts";
import { rolloutPlace } from "../../../controller/update/rollout-place.ts";
import { connectToNetwork, labMachine } from "../../fake-machine.ts";
import { installedSlot, PUBLIC_KEY, publish, SERVER } from "../../fake-repo.ts";
import { bytesToText, type FakeSystem, type Tree } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

const ID_A = "0123456789abcdef0123456789abcdef";
const ID_B = "fedcba9876543210fedcba9876543210";

/** A machine running 1.0 with 0.9 as its backup; its BOOTEXT names the server, keeps `machineId` and adds `update`'s lines to [update]. */
function machine(options: { machineId?: string; update?: string; deprived?: Tree } = {}): FakeSystem {
  const bootext: Tree = {
    "config.d/60-update.toml": `[update]\nservers = ["${SERVER}"]\ntrusted_keys = ["${PUBLIC_KEY}"]\n${options.update ?? ""}`,
    ...(options.machineId === undefined ? {} : { "machine-id": `${options.machineId}\n` }),
  };
  const slots = { SYSFS: installedSlot({ version: "1.0" }), BACKUPFS: installedSlot({ version: "0.9" }), ...(options.deprived === undefined ? {} : { DEPRIVED: options.deprived }) };
  const labels = options.deprived === undefined ? undefined : ["SYSFS", "BACKUPFS", "DEPRIVED", "BOOTEXT"];
  return connectToNetwork(labMachine({ bootext, slots, ...(labels === undefined ? {} : { labels }) }));
}

async function boot(fake: FakeSystem) {
  const { log, sink } = memoryLogger();
  const result = await runBoot(fake, log);
  return { ...result, text: sink.text() };
}

describe("a rollout to a share of the machines", () => {
  test("0 %: no machine takes it; the local system boots, the check and the console say why, nothing is fetched", async () => {
    const fake = machine({ machineId: ID_A });
    publish(fake, { version: "2.0", rolloutPercent: 0 });
    const { report, text } = await boot(fake);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-1.0");
    expect(fake.labelChanges).toEqual([]);
    const place = describeShare(rolloutPlace(ID_A, "2.0"));
    const reason = `${SERVER} publishes version 2.0 (installed: 1.0), but version 2.0 is rolled out to 0 % of machines; this machine's place is ${place}: booting the local system`;
    expect(report.update.check).toMatchObject({ decision: "not-in-rollout", reason, rollout: { percent: 0, place: rolloutPlace(ID_A, "2.0") }, manifest: { version: "2.0" } });
    expect(text).toContain(`controller: check: ${reason}`);
    expect(formatStatus(report)).toContain(`update: not-in-rollout: ${reason}`);
    expect(report.stages.map((stage) => stage.stage)).not.toContain("server-config");
    expect(report.stages.map((stage) => stage.stage)).not.toContain("install");
    expect(fake.httpRequests.some((url) => url.includes("/images/") || url.includes("/config/"))).toBe(false);
  });

  test("100 %: every machine takes it", async () => {
    const fake = machine({ machineId: ID_A });
    publish(fake, { version: "2.0", rolloutPercent: 100 });
    const { report } = await boot(fake);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
    expect(report.update.check.decision).toBe("install");
  });

  test("between: a machine whose place is below the share takes it, one above waits", async () => {
    const [low, high] = [ID_A, ID_B].sort((a, b) => rolloutPlace(a, "2.0") - rolloutPlace(b, "2.0")) as [string, string];
    const percent = (rolloutPlace(low, "2.0") + rolloutPlace(high, "2.0")) / 2;
    const inRollout = machine({ machineId: low });
    publish(inRollout, { version: "2.0", rolloutPercent: percent });
    const taken = await boot(inRollout);
    expect(inRollout.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
    expect(taken.report.update.check).toMatchObject({ decision: "install", rollout: { percent, place: rolloutPlace(low, "2.0") } });
    expect(taken.text).toContain(`this machine's place is ${describeShare(rolloutPlace(low, "2.0"))}: it is in`);

    const waiting = machine({ machineId: high });
    publish(waiting, { version: "2.0", rolloutPercent: percent });
    const waited = await boot(waiting);
    expect(waiting.peek("/sysroot/etc/test-image-id")).toBe("system-1.0");
    expect(waited.report.update.check.decision).toBe("not-in-rollout");
  });

  test("a machine without a kept machine-id (its first boot) waits for 100 %, says why, and keeps the id it makes for the next boot", async () => {
    const fake = machine();
    publish(fake, { version: "2.0", rolloutPercent: 99 });
    const { report, text } = await boot(fake);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-1.0");
    expect(report.update.check).toMatchObject({ decision: "not-in-rollout", rollout: { percent: 99 } });
    expect(text).toContain(
      "version 2.0 is rolled out to 99 % of machines; this machine has no machine-id to place itself by " +
        "(BOOTEXT/machine-id has none yet: a first boot makes it after the check), so it waits for 100 %: booting the local system",
    );
    expect(report.machineId?.source).toBe("generated");
  });

  test("the installed version in a rollout is up to date, whatever the machine's place", async () => {
    const fake = machine({ machineId: ID_A });
    publish(fake, { version: "1.0", rolloutPercent: 0 });
    const { report } = await boot(fake);
    expect(report.update.check.decision).toBe("up-to-date");
  });
});

describe("the download window", () => {
  // the fake's clock starts at 2026-01-01T00:00:00Z: 01:00 in Berlin
  test("outside it no download starts: the local system boots, and the check names the window, the zone and the local time", async () => {
    const fake = machine({ machineId: ID_A, update: 'download_window = "08:00-18:00"\ntimezone = "Europe/Berlin"\n' });
    publish(fake, { version: "2.0" });
    const { report, text } = await boot(fake);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-1.0");
    const reason = `${SERVER} publishes version 2.0 (installed: 1.0), but outside the download window 08:00-18:00 Europe/Berlin (it is 01:00 there): booting the local system`;
    expect(report.update.check).toMatchObject({ decision: "outside-window", reason });
    expect(text).toContain(`controller: check: ${reason}`);
    expect(report.stages.map((stage) => stage.stage)).not.toContain("install");
  });

  test("inside it, across midnight on the zone's clocks, the update installs", async () => {
    const fake = machine({ machineId: ID_A, update: 'download_window = "22:00-06:00"\ntimezone = "Europe/Berlin"\n' });
    publish(fake, { version: "2.0" });
    const { report } = await boot(fake);
    expect(fake.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
    expect(report.update.check.decision).toBe("install");
  });

  test("an install cut short on an earlier boot waits for the window too, its bytes kept; inside the window it resumes", async () => {
    const window = 'download_window = "08:00-18:00"\n';
    const published = publish(machine(), { version: "2.0", imageSize: 50_000 });
    const image = JSON.parse(bytesToText(published.manifestBytes)).image;
    const cutShort: Tree = {
      "controller/install.json": `${JSON.stringify({ version: "2.0", sha512: image.sha512, size: image.size })}\n`,
      "system.squashfs.partial": bytesToText(published.imageBytes.subarray(0, 30_000)),
    };
    const outside = machine({ machineId: ID_A, update: window, deprived: cutShort });
    publish(outside, { version: "2.0", imageSize: 50_000 });
    const waited = await boot(outside);
    expect(waited.report.update.check.decision).toBe("outside-window");
    expect(outside.peek("/sysroot/etc/test-image-id")).toBe("system-1.0");
    expect(outside.deviceTree("/dev/vda3")?.["system.squashfs.partial"]).toMatchObject({ text: cutShort["system.squashfs.partial"] });

    const inside = machine({ machineId: ID_A, deprived: outside.deviceTree("/dev/vda3") ?? {} });
    publish(inside, { version: "2.0", imageSize: 50_000 });
    const resumed = await boot(inside);
    expect(resumed.report.update.install).toMatchObject({ status: "installed", device: "/dev/vda3", resumedFromByte: 30_000 });
    expect(inside.peek("/sysroot/etc/test-image-id")).toBe("system-2.0");
  });

  test("a machine that is not in the rollout says so, not the window", async () => {
    const fake = machine({ machineId: ID_A, update: 'download_window = "08:00-18:00"\n' });
    publish(fake, { version: "2.0", rolloutPercent: 0 });
    const { report } = await boot(fake);
    expect(report.update.check.decision).toBe("not-in-rollout");
  });
});
