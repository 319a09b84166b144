import { describe, expect, test } from "bun:test";
import { planLabelRepair } from "../../../controller/plans/labels.ts";
import type { InspectedSlot } from "../../../controller/plans/slot.ts";
import { updateConfig } from "../../fake-repo.ts";

describe("switch and repair", () => {
  test("planLabelRepair: a verified version beats none; with a BACKUPFS already there the loser becomes DEPRIVED", () => {
    const slot = (device: string, label: string, role: InspectedSlot["role"], version?: string): InspectedSlot => ({
      device: { device, label, fsType: "ext4" },
      role,
      record: version === undefined ? { status: "none" } : ({ status: "valid", manifest: { version } } as unknown as InspectedSlot["record"]),
      health: { status: "none" },
      fsck: { condition: "fsck", result: "pass", detail: "clean" },
    });
    const changes = planLabelRepair([slot("/dev/a", "SYSFS", "system"), slot("/dev/b", "SYSFS", "system", "1.0"), slot("/dev/c", "BACKUPFS", "backup", "0.5")], updateConfig());
    expect(changes.map((change) => [change.device.device, change.to])).toEqual([["/dev/a", "DEPRIVED"]]);
    expect(planLabelRepair([slot("/dev/a", "SYSFS", "system", "1.0"), slot("/dev/c", "BACKUPFS", "backup")], updateConfig())).toEqual([]);
  });
});
