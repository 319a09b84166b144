// Stage "disks": load the kernel modules the controller needs, wait for udev
// to show the slot partitions, and list every filesystem with its label.

import type { Config } from "../config/schema.ts";
import { describeDevices } from "../plans/devices.ts";
import type { Logger } from "../system/log.ts";
import { KERNEL_MODULES } from "../system/paths.ts";
import type { BlockDevice, System } from "../system/system.ts";

/** How often to look again while waiting for the system partition. */
const POLL_MS = 250;
const SETTLE_SLICE_MS = 2000;

export async function runDisksStage(system: System, log: Logger, config: Config): Promise<BlockDevice[]> {
  try {
    await system.loadKernelModules(KERNEL_MODULES);
  } catch (error) {
    // a module may be built into the kernel or already loaded; mounting will say if one is really missing
    log.warn(`Cannot load kernel modules ${KERNEL_MODULES.join(", ")}: ${(error as Error).message}`);
  }

  const wanted = config.labels.system;
  const timeoutMs = config.timeouts.devices_seconds * 1000;
  const start = system.monotonicMs();
  let devices = await system.listBlockDevices();
  if (!devices.some((d) => d.label === wanted)) {
    log.info(`waiting up to ${config.timeouts.devices_seconds} s for a partition labelled ${wanted}`);
    for (;;) {
      const remaining = timeoutMs - (system.monotonicMs() - start);
      if (remaining <= 0) break;
      await system.settleDevices(Math.min(remaining, SETTLE_SLICE_MS));
      devices = await system.listBlockDevices();
      if (devices.some((d) => d.label === wanted)) break;
      await system.sleep(Math.min(POLL_MS, Math.max(0, timeoutMs - (system.monotonicMs() - start))));
    }
  }
  const waited = Math.round(system.monotonicMs() - start);
  const found = devices.some((d) => d.label === wanted);
  const line = `filesystems seen after ${waited} ms: ${describeDevices(devices)}`;
  if (found) log.info(line);
  else log.warn(`no partition labelled ${wanted} appeared within ${config.timeouts.devices_seconds} s (timeouts.devices_seconds); ${line}`);
  return devices;
}
