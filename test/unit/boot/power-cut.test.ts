// A power cut at every cut point of an update, over the fake: the disks as the
// cut leaves them (everything written so far, through mounts still active
// too) boot again without a network, then with the server back. The next boot
// must reach a verified system, the one after must finish the update. The
// QEMU test (test/qemu/power-cut.test.ts) does the same with real kills.

import { describe, expect, test } from "bun:test";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { CUT_POINTS, type CutPoint } from "../../../controller/system/cut-points.ts";
import { connectToNetwork, labMachine } from "../../fake-machine.ts";
import { installedSlot, PUBLIC_KEY, publish, SERVER } from "../../fake-repo.ts";
import { concatBytes, noiseBytes } from "../../bytes.ts";
import { type FakeSystem, type Tree } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

const UPDATE_CONFIG: Tree = {
  "config.d/60-update.toml": `[update]\nservers = ["${SERVER}"]\ntrusted_keys = ["${PUBLIC_KEY}"]\n`,
};

/** 1.0's image and 2.0's, which shares all but 5 kB of it: the update is a delta install, copying from SYSFS. */
const V1 = noiseBytes(60_000, 11);
const V2 = concatBytes(V1.subarray(0, 30_000), noiseBytes(5000, 12), V1.subarray(35_000));

/** A machine with these disks, as labMachine builds the rest. */
function machineWith(devices: ReturnType<FakeSystem["snapshotDevices"]>, online: boolean): FakeSystem {
  const fake = labMachine({ labels: [] });
  for (const { device, tree } of devices) fake.addDevice(device, tree);
  if (online) {
    connectToNetwork(fake);
    publish(fake, { version: "2.0", image: V2, index: true, fleetConfig: { "50-fleet.toml": "[timeouts]\ndevices_seconds = 25\n" } });
  }
  return fake;
}

function runningMachine(): FakeSystem {
  return machineWith(
    [
      { device: { device: "/dev/vda1", label: "SYSFS", fsType: "ext4" }, tree: installedSlot({ version: "1.0", image: V1, index: true }) },
      { device: { device: "/dev/vda2", label: "BACKUPFS", fsType: "ext4" }, tree: installedSlot({ version: "0.9" }) },
      { device: { device: "/dev/vda3", label: "BOOTEXT", fsType: "ext4" }, tree: UPDATE_CONFIG },
    ],
    true,
  );
}

/** Boots and returns what the booted system would show, and the disks as it leaves them. */
async function boot(fake: FakeSystem, cut?: CutPoint) {
  let atCut: ReturnType<FakeSystem["snapshotDevices"]> | undefined;
  const cuts = { reach: async (point: CutPoint) => void (point === cut && atCut === undefined ? (atCut = fake.snapshotDevices()) : undefined) };
  const { log } = memoryLogger();
  const { report } = await runBoot(fake, log, { cuts });
  return { report, image: fake.peek("/sysroot/etc/test-image-id"), disks: atCut ?? fake.snapshotDevices(), reachedCut: atCut !== undefined };
}

describe("a power cut at every point of an update leaves a machine that boots a verified system", () => {
  for (const point of CUT_POINTS) {
    test(point, async () => {
      const first = await boot(runningMachine(), point);
      expect(first.reachedCut).toBe(true);

      const next = await boot(machineWith(first.disks, false));
      expect(["system-1.0", "system-2.0"]).toContain(next.image ?? "nothing");
      const booted = next.report.update.slots.find((slot) => slot.device === next.report.boot.booted?.device);
      expect(booted?.version).toBe(next.image === "system-2.0" ? "2.0" : "1.0");
      expect(booted?.conditions?.find((c) => c.condition === "image-hash")?.result).toBe("pass");

      const after = await boot(machineWith(next.disks, true));
      expect(after.image).toBe("system-2.0");
      const labels = after.report.partitions.map((p) => p.label).sort();
      expect(labels).toEqual(["BACKUPFS", "BOOTEXT", "SYSFS"]);

      // the machine-id kept on BOOTEXT: once it is written, no cut takes it away and every later boot uses it
      const keptBeforeCut = CUT_POINTS.indexOf(point) >= CUT_POINTS.indexOf("machine-id-written");
      expect(next.report.machineId?.source).toBe(keptBeforeCut ? "bootext" : "generated");
      if (keptBeforeCut) expect(next.report.machineId?.id).toBe(first.report.machineId?.id ?? "none");
      expect(after.report.machineId).toMatchObject({ source: "bootext", id: next.report.machineId?.id ?? "none" });
    });
  }
});
