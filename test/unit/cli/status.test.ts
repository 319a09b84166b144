// `controller status`: without a report, and right after a boot that installed
// an update and switched to it, where it must describe the slots as they are
// on the disks now.

import { describe, expect, test } from "bun:test";
import { formatStatus } from "../../../controller/boot/report-text.ts";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { connectToNetwork, labMachine } from "../../fake-machine.ts";
import { installedSlot, PUBLIC_KEY, publish, SERVER } from "../../fake-repo.ts";
import { memoryLogger } from "../../memory-log.ts";
import { controller } from "../../run-controller.ts";

const UPDATE_CONFIG = {
  "config.d/60-update.toml": `[update]\nservers = ["${SERVER}"]\ntrusted_keys = ["${PUBLIC_KEY}"]\n`,
};

/** the status lines of one slot: "  DEVICE  LABEL  what it holds" */
function slotLine(status: string, device: string): string | undefined {
  return status.split("\n").find((line) => line.startsWith(`  ${device}  `));
}

test("status without a report says so", async () => {
  expect(await controller("status")).toMatchObject({ code: 1, stderr: expect.stringContaining("No boot report at /run/controller/report.json") });
});

describe("controller status after a boot that installed an update", () => {
  test("shows the new system as SYSFS with its version, booted, and the old one as BACKUPFS", async () => {
    const fake = connectToNetwork(
      labMachine({ bootext: UPDATE_CONFIG, slots: { SYSFS: installedSlot({ version: "1.0" }), BACKUPFS: installedSlot({ version: "0.9" }) } }),
    );
    publish(fake, { version: "2.0" });
    const { report } = await runBoot(fake, memoryLogger().log);
    expect(report.update.switched).toEqual(["/dev/vda2 BACKUPFS -> SYSFS", "/dev/vda1 SYSFS -> BACKUPFS"]);

    const status = formatStatus(report);
    expect(slotLine(status, "/dev/vda2")).toBe("  /dev/vda2  SYSFS  version 2.0  (booted)");
    expect(slotLine(status, "/dev/vda1")).toBe("  /dev/vda1  BACKUPFS  version 1.0");
    expect(report.update.slots.map((slot) => [slot.device, slot.label, slot.role, slot.record, slot.version])).toEqual([
      ["/dev/vda1", "BACKUPFS", "backup", "valid", "1.0"],
      ["/dev/vda2", "SYSFS", "system", "valid", "2.0"],
    ]);
    // the install started the new system's life cycle anew: no health.json from 0.9's
    expect(report.update.slots.find((slot) => slot.device === "/dev/vda2")?.health).toBeUndefined();
  });

  test("an install that failed after emptying the spare shows the spare as it is: no record", async () => {
    const fake = connectToNetwork(
      labMachine({ bootext: UPDATE_CONFIG, slots: { SYSFS: installedSlot({ version: "1.0" }), BACKUPFS: installedSlot({ version: "0.9" }) } }),
    );
    const published = publish(fake, { version: "2.0" });
    // no room beside 0.9: the spare becomes DEPRIVED and is emptied, then the download fails for good
    fake.freeBytesAnswer = 100;
    fake.http.delete(published.imageUrl);
    const { report } = await runBoot(fake, memoryLogger().log);
    expect(report.update.install?.status).toBe("failed");
    expect(fake.device("/dev/vda2")?.label).toBe("DEPRIVED");

    expect(slotLine(formatStatus(report), "/dev/vda2")).toBe("  /dev/vda2  DEPRIVED  (no signed record)");
    expect(report.partitions.find((partition) => partition.device === "/dev/vda2")?.label).toBe("DEPRIVED");
  });
});
