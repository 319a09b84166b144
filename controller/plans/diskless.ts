// Diskless boots, the pure decisions: whether this boot runs from RAM, whether
// the image fits in it, and the mounts that hold it (boot/diskless.ts carries
// them out).

import type { Config } from "../config/schema.ts";
import { NEWROOT, PROC_MEMINFO } from "../system/paths.ts";
import type { BlockDevice } from "../system/system.ts";
import { planBoot } from "./boot-order.ts";
import { describeDevices } from "./devices.ts";
import type { MountStep } from "./mounts.ts";

const MiB = 1024 * 1024;

export interface RamNeed {
  /** the image, in MiB rounded up */
  readonly imageMiB: number;
  readonly marginMiB: number;
  /** MemAvailable, in MiB rounded down */
  readonly availableMiB: number;
  /** the size of the tmpfs that holds the image */
  readonly tmpfsMiB: number;
}

/**
 * Pure: why this boot runs from RAM, or undefined when it boots from the disks.
 * `devices` undefined: the disks have not been listed yet, so only mode
 * "always" can decide; "when-no-slots" decides once they are.
 */
export function disklessReason(config: Config, provenance: Readonly<Record<string, string>>, devices: readonly BlockDevice[] | undefined): string | undefined {
  const { mode } = config.diskless;
  const from = provenance["diskless.mode"] ?? "config";
  if (mode === "always") return `diskless.mode is "always" (from ${from})`;
  if (mode !== "when-no-slots" || devices === undefined) return undefined;
  if (planBoot(devices, config).candidates.length > 0) return undefined;
  return `diskless.mode is "when-no-slots" (from ${from}) and there is no usable ${config.labels.system} or ${config.labels.backup} partition; filesystems seen: ${describeDevices(devices)}`;
}

export type MemAvailable = { readonly ok: true; readonly bytes: number } | { readonly ok: false; readonly problem: string };

/** Pure: MemAvailable from the text of /proc/meminfo ("MemAvailable:   123456 kB"). */
export function parseMemAvailable(meminfo: string): MemAvailable {
  const line = meminfo.split("\n").find((candidate) => candidate.startsWith("MemAvailable:"));
  if (line === undefined) return { ok: false, problem: `${PROC_MEMINFO} has no MemAvailable line` };
  const match = /^MemAvailable:\s+(\d{1,15}) kB\s*$/.exec(line);
  if (match === null) return { ok: false, problem: `${PROC_MEMINFO}: expected "MemAvailable: NUMBER kB", got ${JSON.stringify(line)}` };
  return { ok: true, bytes: Number(match[1]) * 1024 };
}

export type RamPlan = ({ readonly ok: true } | { readonly ok: false; readonly problem: string }) & RamNeed;

/** Pure: whether an image of `imageBytes` fits in RAM and leaves `marginMiB` free. Exactly the margin left is enough. */
export function planRam(version: string, imageBytes: number, marginMiB: number, availableBytes: number): RamPlan {
  const imageMiB = Math.ceil(imageBytes / MiB);
  // one MiB more than the image: the tmpfs's own bookkeeping must not make a full image fail to fit
  const need: RamNeed = { imageMiB, marginMiB, availableMiB: Math.floor(availableBytes / MiB), tmpfsMiB: imageMiB + 1 };
  if (availableBytes >= imageBytes + marginMiB * MiB) return { ok: true, ...need };
  return {
    ok: false,
    ...need,
    problem:
      `Cannot run version ${version} from RAM: the image needs ${imageMiB} MiB plus a margin of ${marginMiB} MiB (diskless.ram_margin_mib), ` +
      `but only ${need.availableMiB} MiB is available (MemAvailable in ${PROC_MEMINFO})`,
  };
}

/** Pure: the tmpfs that holds the image, sized for it. */
export function planRamDisk(dir: string, tmpfsMiB: number): MountStep[] {
  return [
    { kind: "mkdir", path: dir },
    {
      kind: "mount",
      request: { kind: "filesystem", source: "tmpfs", target: dir, fsType: "tmpfs", options: ["nosuid", "nodev", "noexec", "mode=0700", `size=${tmpfsMiB}m`] },
      purpose: "tmpfs for the diskless image",
    },
  ];
}

/** Pure: the verified image in RAM, read-only at the new root. */
export function planRootFromRam(image: string): MountStep[] {
  return [
    { kind: "require-file", path: image, missing: `the diskless image ${image} is gone` },
    { kind: "mount", request: { kind: "filesystem", source: image, target: NEWROOT, fsType: "squashfs", options: ["ro", "loop"] }, purpose: "system image from RAM" },
  ];
}
