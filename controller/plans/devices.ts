// The filesystems seen, as messages name them.

import type { BlockDevice } from "../system/system.ts";

/** Pure: every block device with its filesystem and label, or "none". */
export function describeDevices(devices: readonly BlockDevice[]): string {
  if (devices.length === 0) return "none";
  return devices.map((d) => `${d.device} (${d.fsType ?? "no filesystem"}, ${d.label === undefined ? "no label" : `label ${d.label}`})`).join(", ");
}
