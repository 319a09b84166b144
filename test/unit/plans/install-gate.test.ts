import { expect, test } from "bun:test";
import { whyInstallWaits } from "../../../controller/plans/install-gate.ts";

const device = { device: "/dev/vda1", label: "SYSFS", fsType: "ext4" };

test("the spare is overwritten only for a running system that passed its health check and was marked good", () => {
  expect(whyInstallWaits(undefined)).toBe("no slot boots to vouch for the spare");
  expect(whyInstallWaits({ device, failedHealthCheck: true, markedGood: true })).toBe("the running system (SYSFS on /dev/vda1) failed its health check");
  expect(whyInstallWaits({ device, failedHealthCheck: false, markedGood: false })).toBe("the running system (SYSFS on /dev/vda1) has not been marked good yet");
  expect(whyInstallWaits({ device, failedHealthCheck: false, markedGood: true })).toBeUndefined();
});
