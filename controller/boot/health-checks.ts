// The health conditions of one slot, checked before it may boot (config.d
// [health]). The cheap ones come from what the slots stage read
// (plans/health-conditions.ts); the image's hash and the files it must contain
// need the slot and its image mounted, read-only, for a moment, and are only
// looked at when the cheap ones pass.

import type { Config } from "../config/schema.ts";
import { cheapConditions } from "../plans/health-conditions.ts";
import type { ConditionResult, InspectedSlot } from "../plans/slot.ts";
import { resolveInRoot } from "../system/new-root-paths.ts";
import { INSPECT_MOUNT } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import { verifyImageFile } from "../update/image-verify.ts";
import type { KeptSlotMount } from "./kept-slot-mount.ts";

/** `image` is only read when there is a signed record to check it against. */
async function imageHash(system: System, image: string, slot: InspectedSlot, config: Config): Promise<ConditionResult> {
  if (!config.health.verify_image) return { condition: "image-hash", result: "skipped", detail: "health.verify_image is off" };
  if (slot.record.status !== "valid") {
    const why = slot.record.status === "none" ? "the slot has no signed record" : `the slot's record does not verify: ${slot.record.problem}`;
    return { condition: "image-hash", result: "skipped", detail: `nothing to verify against: ${why}` };
  }
  const { manifest } = slot.record;
  const check = await verifyImageFile(system, image, manifest.image);
  return check.ok
    ? { condition: "image-hash", result: "pass", detail: `${config.slot.image} matches version ${manifest.version}'s signed sha512` }
    : { condition: "image-hash", result: "fail", detail: `${config.slot.image} is not version ${manifest.version}'s signed image: ${check.problem}` };
}

async function requiredFiles(system: System, root: string, config: Config): Promise<ConditionResult> {
  const missing: string[] = [];
  for (const path of config.health.required_files) {
    const found = await resolveInRoot(system, root, path);
    if (found.status !== "exists") missing.push(path);
  }
  if (missing.length > 0) return { condition: "required-files", result: "fail", detail: `missing from the image: ${missing.join(", ")} (health.required_files)` };
  return { condition: "required-files", result: "pass", detail: `all ${config.health.required_files.length} present` };
}

function skipped(condition: ConditionResult["condition"], detail: string): ConditionResult {
  return { condition, result: "skipped", detail };
}

/** Every condition of one slot; the slot is either the one kept mounted or not mounted at all. */
export async function checkSlot(system: System, kept: KeptSlotMount, slot: InspectedSlot, config: Config, countedEarly = false): Promise<ConditionResult[]> {
  const cheap = cheapConditions(slot, config, countedEarly);
  if (cheap.some((result) => result.result === "fail")) {
    const why = "not checked: the slot is unhealthy already";
    return [...cheap, skipped("image-hash", why), skipped("required-files", why)];
  }
  const hashNeeded = config.health.verify_image && slot.record.status === "valid";
  const filesNeeded = config.health.required_files.length > 0;
  const noFiles = skipped("required-files", "none configured (health.required_files)");
  if (!hashNeeded && !filesNeeded) return [...cheap, await imageHash(system, "", slot, config), noFiles];

  const keptDir = kept.dirOf(slot.device.device);
  const slotDir = keptDir ?? `${INSPECT_MOUNT}/health`;
  const imageRoot = `${INSPECT_MOUNT}/health-image`;
  const image = `${slotDir}/${config.slot.image}`;
  await system.mkdir(imageRoot);
  if (keptDir === undefined) {
    await system.mkdir(slotDir);
    await system.mount({ kind: "filesystem", source: slot.device.device, target: slotDir, fsType: config.slot.fs_type, options: ["ro"] });
  }
  try {
    const hash = await imageHash(system, image, slot, config);
    if (hash.result === "fail") return [...cheap, hash, skipped("required-files", "not checked: the image does not verify")];
    if (!filesNeeded) return [...cheap, hash, noFiles];
    try {
      await system.mount({ kind: "filesystem", source: image, target: imageRoot, fsType: "squashfs", options: ["ro", "loop"] });
    } catch (error) {
      return [...cheap, hash, { condition: "required-files", result: "fail", detail: `Cannot mount the image: ${(error as Error).message}` }];
    }
    try {
      return [...cheap, hash, await requiredFiles(system, imageRoot, config)];
    } finally {
      await system.unmount(imageRoot);
    }
  } finally {
    if (keptDir === undefined) await system.unmount(slotDir);
  }
}
