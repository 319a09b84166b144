// Which slot an update is written into: never the SYSFS that boots.

import type { Config } from "../config/schema.ts";
import type { InspectedSlot } from "./slot.ts";

export type SparePlan = { readonly ok: true; readonly spare: InspectedSlot } | { readonly ok: false; readonly reason: string };

/** Pure: the slot an update goes to. A DEPRIVED slot first (it holds nothing worth keeping), else BACKUPFS; never the SYSFS that boots. */
export function planSpare(slots: readonly InspectedSlot[], bootingDevice: string | undefined, config: Config): SparePlan {
  const usable = slots.filter((slot) => slot.device.device !== bootingDevice);
  const spare = usable.find((slot) => slot.role === "deprived") ?? usable.find((slot) => slot.role === "backup");
  if (spare !== undefined) return { ok: true, spare };
  return {
    ok: false,
    reason: `Cannot install: there is no spare slot (a ${config.labels.deprived} or ${config.labels.backup} partition with a ${config.slot.fs_type} filesystem) besides the running ${config.labels.system}`,
  };
}
