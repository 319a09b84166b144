// Stage "bootext": mount AnthillaOS's BootExt volume, the persistent partition
// that holds DIRS/ (overmounts) and a site config.d, and read that config.d.

import { type ConfigLayer, loadBootextConfig } from "../config/layers.ts";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../system/log.ts";
import { BOOTEXT_MOUNT, INITRD_MOUNT_OPTION } from "../system/paths.ts";
import type { BlockDevice, System } from "../system/system.ts";

export interface BootextResult {
  /** where BOOTEXT is mounted; undefined without one */
  readonly mountPoint?: string;
  readonly device?: string;
  readonly readOnly: boolean;
  /** the BOOTEXT config.d, one layer per file */
  readonly layers: readonly ConfigLayer[];
}

export async function runBootextStage(system: System, log: Logger, devices: readonly BlockDevice[], config: Config): Promise<BootextResult> {
  const label = config.labels.bootext;
  const readOnly = config.bootext.read_only;
  const labelled = devices.filter((d) => d.label === label);
  const device = labelled[0];
  if (device === undefined) {
    log.info(`no partition labelled ${label}: no site config.d and no overmounts`);
    return { readOnly, layers: [] };
  }
  if (labelled.length > 1) log.warn(`${labelled.length} partitions are labelled ${label} (${labelled.map((d) => d.device).join(", ")}): using ${device.device}`);
  if (device.fsType === undefined) {
    log.warn(`Cannot mount ${label} on ${device.device}: udev recorded no filesystem type for it`);
    return { readOnly, layers: [] };
  }
  try {
    await system.mkdir(BOOTEXT_MOUNT);
    await system.mount({ kind: "filesystem", source: device.device, target: BOOTEXT_MOUNT, fsType: device.fsType, options: [readOnly ? "ro" : "rw", INITRD_MOUNT_OPTION] });
  } catch (error) {
    log.warn(`Cannot mount ${label} on ${device.device}: ${(error as Error).message}; going on without its config.d and overmounts`);
    return { readOnly, layers: [] };
  }
  const layers = await loadBootextConfig(system, config);
  const files = layers.filter((layer) => layer.status !== "missing" && layer.status !== "ignored").length;
  log.info(`mounted ${label} (${device.device}, ${readOnly ? "read-only" : "read-write"}) at ${BOOTEXT_MOUNT}; ${files} config ${files === 1 ? "file" : "files"} in ${config.bootext.config_dir}`);
  return { mountPoint: BOOTEXT_MOUNT, device: device.device, readOnly, layers };
}
