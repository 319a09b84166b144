// What a slot partition records about the system it holds, next to the image:
// the signed manifest it was installed from (exact bytes and signature, so any
// later boot can verify it again), and the config.d files that came with it.
//
//   SLOT/system.squashfs                  the image (slot.image)
//   SLOT/controller/manifest.json         exact bytes as signed
//   SLOT/controller/manifest.sig          the detached signature
//   SLOT/controller/config.d/NAME.toml    this machine's config files from that manifest
//   SLOT/controller/image.index           the image's chunk index, as the manifest signs it, when it names one
//   SLOT/controller/install.json          only while an install into this slot is under way
//   SLOT/system.squashfs.partial          only while an install into this slot is under way
//
// manifest.json is written last and removed first, so a slot never claims a
// version whose image and config are not all there.

import { type ConfigLayer, loadConfigDir } from "../config/layers.ts";
import type { SlotRecord } from "../plans/slot.ts";
import type { System } from "../system/system.ts";
import { CONFIG_FILE_MAX_BYTES, type Manifest, MANIFEST_MAX_BYTES, parseManifest, SIGNATURE_MAX_BYTES } from "../update/manifest.ts";
import { sha512Hex, verifySignature } from "../update/signing.ts";

export const RECORD_DIR = "controller";
export const RECORD_MANIFEST = `${RECORD_DIR}/manifest.json`;
export const RECORD_SIGNATURE = `${RECORD_DIR}/manifest.sig`;
export const RECORD_CONFIG_DIR = `${RECORD_DIR}/config.d`;
export const RECORD_INSTALL_STATE = `${RECORD_DIR}/install.json`;
/** Where a delta install finds which chunks the slot's image holds (delta-sources.ts). */
export const RECORD_INDEX = `${RECORD_DIR}/image.index`;
export const PARTIAL_SUFFIX = ".partial";

/** Reads and verifies the record of a slot mounted at `slotDir`; `name` says which slot in messages. */
export async function readSlotRecord(system: System, slotDir: string, name: string, trustedKeys: readonly string[]): Promise<SlotRecord> {
  const manifestFile = `${slotDir}/${RECORD_MANIFEST}`;
  if ((await system.lstat(manifestFile)) === undefined) return { status: "none" };
  try {
    const manifestBytes = await system.readBytes(manifestFile, MANIFEST_MAX_BYTES);
    const signature = new TextDecoder().decode(await system.readBytes(`${slotDir}/${RECORD_SIGNATURE}`, SIGNATURE_MAX_BYTES));
    const parsed = parseManifest(manifestBytes, `${name}/${RECORD_MANIFEST}`);
    if (!parsed.ok) return { status: "invalid", problem: parsed.problems.join("; ") };
    // verified long after the install (no expiry), and a record written before signatures named their purpose still counts
    const expected = { purpose: "manifest", target: parsed.manifest.channel, now: undefined, acceptOldFormat: true } as const;
    const signed = verifySignature(manifestBytes, signature, trustedKeys, expected);
    if (!signed.ok) return { status: "invalid", problem: `${name}/${RECORD_MANIFEST}: ${signed.problem}` };
    return { status: "valid", manifest: parsed.manifest, manifestBytes, signature, key: signed.key };
  } catch (error) {
    return { status: "invalid", problem: `Cannot read the record of ${name}: ${(error as Error).message}` };
  }
}

/**
 * The config.d a slot keeps, as "server" layers. Each file must be one the
 * slot's signed manifest names with that exact content; any other is rejected.
 */
export async function loadSlotConfig(system: System, slotDir: string, name: string, manifest: Manifest): Promise<ConfigLayer[]> {
  const dir = `${slotDir}/${RECORD_CONFIG_DIR}`;
  const layers = await loadConfigDir(system, "server", dir, `server:${name}/${RECORD_CONFIG_DIR}`);
  const signed = [...manifest.config.fleet, ...manifest.config.machines.flatMap((entry) => entry.files)];
  const checked: ConfigLayer[] = [];
  for (const layer of layers) {
    if (layer.status !== "parsed") {
      checked.push(layer);
      continue;
    }
    const fileName = layer.source.slice(layer.source.lastIndexOf("/") + 1);
    const hash = sha512Hex(await system.readBytes(`${dir}/${fileName}`, CONFIG_FILE_MAX_BYTES));
    if (signed.some((file) => file.name === fileName && file.sha512 === hash)) checked.push(layer);
    else
      checked.push({
        kind: "server",
        source: layer.source,
        status: "rejected",
        problems: [`${layer.source}: Cannot use it: the slot's signed manifest names no file ${fileName} with this content`],
      });
  }
  return checked;
}
