// Stage "install": write the accepted image into the spare slot, never into the
// SYSFS that runs. The image is written straight into a file beside the
// slot's current image (an initramfs lives in RAM and images are GiBs): the
// chunks this machine's slots already hold are copied from them, the rest
// streams from the server (delta-sources.ts, image-download.ts); each piece the
// manifest signs a hash for (chunks.ts) is hashed back from the file as soon as
// it is written, on every CPU, while the rest still comes; a dropped
// connection is resumed with a Range request. Only then does the slot
// change: its record goes, the new image replaces the old one by rename, and
// the signed manifest and config are written next to it, the manifest last.
// So the spare holds a whole image at every instant, and a server that sends
// junk costs the machine nothing, not even its backup.
//
// A slot too small for both images is first relabelled DEPRIVED and emptied:
// a half-written slot never carries a label that says it boots. An install cut
// short by a power cut leaves install.json and the partial file, and the next
// boot resumes it.

import type { Config } from "../config/schema.ts";
import type { InspectedSlot } from "../plans/slot.ts";
import { type CutPoints, NO_CUTS } from "../system/cut-points.ts";
import type { HashAlgorithm } from "../system/hash-worker.ts";
import type { Logger } from "../system/log.ts";
import { INSTALL_MOUNT } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import { type Piece, piecesWithin } from "../update/chunks.ts";
import { firstBadPiece, piecesToVerify, verifyImageFile } from "../update/image-verify.ts";
import { type Manifest, resolveRepoUrl } from "../update/manifest.ts";
import { chooseImageSource, type DeltaSummary, type LocalImage, slotImage } from "./delta-sources.ts";
import { type DownloadCounters, downloadVerifiedImage, formatMB, newCounters } from "./image-download.ts";
import { HEALTH_FILE } from "./slot-health.ts";
import {
  PARTIAL_SUFFIX,
  RECORD_CONFIG_DIR,
  RECORD_DIR,
  RECORD_INDEX,
  RECORD_INSTALL_STATE,
  RECORD_MANIFEST,
  RECORD_SIGNATURE,
  readSlotRecord,
} from "./slot-records.ts";
import type { AcceptedManifest } from "./update-check.ts";
import type { FetchedConfigFile } from "./update-config.ts";

const MB = 1_000_000;

export interface InstallResult {
  readonly status: "installed" | "failed";
  readonly detail: string;
  readonly version: string;
  /** the slot written to, and its label when the install ended */
  readonly device?: string;
  readonly label?: string;
  /** bytes of image that came over the network on this boot */
  readonly bytesFetched: number;
  /** bytes of image copied from this machine's own slots on this boot (a delta install) */
  readonly bytesCopied: number;
  /** chunks of a local image that did not have the sha256 the new index lists, fetched instead */
  readonly chunksRefetched: number;
  /** the delta install's plan; absent when the whole image was fetched */
  readonly delta?: DeltaSummary;
  /** where the download started: above 0 when an install cut short on an earlier boot was resumed */
  readonly resumedFromByte: number;
  /** dropped connections resumed with a Range request */
  readonly resumes: number;
  readonly durationMs: number;
  /** MB/s of the download, when there was one */
  readonly throughputMBps?: number;
  /** what the image was verified in: the manifest's chunks, or 1 piece when it signs only the whole image; absent when the stage itself failed */
  readonly pieces?: number;
  /** the hash the pieces were checked by: sha256 where the CPU has the SHA extensions and the manifest signs it (chunks.ts) */
  readonly pieceHash?: HashAlgorithm;
}

/** What the slot says about an install into it that has not finished. */
interface InstallState {
  readonly version: string;
  readonly sha512: string;
  readonly size: number;
}

async function readInstallState(system: System, path: string): Promise<InstallState | undefined> {
  try {
    const state = JSON.parse(await system.readText(path)) as Partial<InstallState>;
    if (typeof state.version === "string" && typeof state.sha512 === "string" && typeof state.size === "number") {
      return { version: state.version, sha512: state.sha512, size: state.size };
    }
  } catch {
    // missing or unreadable: no install to resume
  }
  return undefined;
}

async function writeRecords(
  system: System,
  slotDir: string,
  accepted: AcceptedManifest,
  configFiles: readonly FetchedConfigFile[],
  indexBytes: Uint8Array | undefined,
  cuts: CutPoints,
): Promise<void> {
  const configDir = `${slotDir}/${RECORD_CONFIG_DIR}`;
  await system.remove(configDir);
  await system.mkdir(configDir);
  for (const file of configFiles) await system.writeBytes(`${configDir}/${file.name}`, file.content);
  await cuts.reach("config-written");
  // the next update's delta finds this image's chunks by it
  if (indexBytes !== undefined) {
    await system.writeBytes(`${slotDir}/${RECORD_INDEX}`, indexBytes);
    await cuts.reach("index-written");
  }
  await system.writeBytes(`${slotDir}/${RECORD_SIGNATURE}`, new TextEncoder().encode(accepted.signature));
  await cuts.reach("signature-written");
  // last: from here on the slot claims this version
  await system.writeBytes(`${slotDir}/${RECORD_MANIFEST}`, accepted.manifestBytes);
  await cuts.reach("manifest-written");
  await system.remove(`${slotDir}/${RECORD_INSTALL_STATE}`);
  await cuts.reach("install-state-removed");
}

/**
 * Where the download starts: an earlier install of the same image into this
 * slot is resumed after the pieces it wrote that still verify (a power cut
 * can leave anything in what was not synced); anything else partial is
 * thrown away. Every piece that ends by the offset returned is verified.
 */
async function startDownload(
  system: System,
  log: Logger,
  partial: string,
  accepted: AcceptedManifest,
  pieces: readonly Piece[],
  cuts: CutPoints,
): Promise<number> {
  const { manifest } = accepted;
  const statePath = `${INSTALL_MOUNT}/${RECORD_INSTALL_STATE}`;
  const state = await readInstallState(system, statePath);
  const partialInfo = await system.lstat(partial);
  if (state?.sha512 === manifest.image.sha512 && partialInfo?.type === "file" && partialInfo.size <= manifest.image.size) {
    const offset = await verifiedPrefix(system, partial, pieces, partialInfo.size);
    const dropped = offset < partialInfo.size ? ` (bytes ${offset}–${partialInfo.size - 1} did not verify and are fetched again)` : "";
    log.info(`resuming the install of version ${manifest.version} cut short on an earlier boot, at byte ${offset}${dropped}`);
    return offset;
  }
  await system.remove(partial);
  await system.mkdir(`${INSTALL_MOUNT}/${RECORD_DIR}`);
  await system.mkdir(partial.slice(0, partial.lastIndexOf("/")));
  const newState: InstallState = { version: manifest.version, sha512: manifest.image.sha512, size: manifest.image.size };
  await system.writeText(statePath, `${JSON.stringify(newState)}\n`);
  await cuts.reach("install-state-written");
  return 0;
}

/** How much of a partial file to keep: up to the first complete piece that does not verify, else all of it. */
async function verifiedPrefix(system: System, partial: string, pieces: readonly Piece[], size: number): Promise<number> {
  const complete = pieces.slice(0, piecesWithin(pieces, size));
  const bad = await firstBadPiece(system, partial, complete, pieces);
  return bad === undefined ? size : bad.piece.offset;
}

/** One install as it goes: what its result reports, and the spare it writes into. */
interface InstallRun {
  readonly manifest: Manifest;
  /** what the image is verified in on this machine */
  readonly pieces: readonly Piece[];
  readonly began: number;
  readonly counters: DownloadCounters;
  resumedFromByte: number;
  delta?: DeltaSummary;
  /** the slot written to, with the label it has now */
  device: InspectedSlot["device"];
  /** whether the spare is mounted read-write at INSTALL_MOUNT */
  mounted: boolean;
}

/** The stage's result, said on the console as well. */
function installResult(system: System, log: Logger, run: InstallRun, status: InstallResult["status"], detail: string): InstallResult {
  const { counters, device } = run;
  const durationMs = Math.round(system.monotonicMs() - run.began);
  const written = counters.bytesFetched + counters.bytesCopied;
  const throughput = written > 0 && durationMs > 0 ? written / MB / (durationMs / 1000) : undefined;
  (status === "installed" ? log.info : log.error).call(log, detail);
  return {
    status,
    detail,
    version: run.manifest.version,
    device: device.device,
    ...(device.label === undefined ? {} : { label: device.label }),
    bytesFetched: counters.bytesFetched,
    bytesCopied: counters.bytesCopied,
    chunksRefetched: counters.chunksRefetched,
    ...(run.delta === undefined ? {} : { delta: run.delta }),
    resumedFromByte: run.resumedFromByte,
    resumes: counters.resumes,
    durationMs,
    ...(throughput === undefined ? {} : { throughputMBps: Math.round(throughput * 10) / 10 }),
    pieces: run.pieces.length,
    ...(run.pieces[0] === undefined ? {} : { pieceHash: run.pieces[0].algorithm }),
  };
}

async function mountSpare(system: System, config: Config, run: InstallRun): Promise<void> {
  await system.mkdir(INSTALL_MOUNT);
  await system.mount({ kind: "filesystem", source: run.device.device, target: INSTALL_MOUNT, fsType: config.slot.fs_type, options: [] });
  run.mounted = true;
}

async function unmountSpare(system: System, run: InstallRun): Promise<void> {
  run.mounted = false;
  await system.unmount(INSTALL_MOUNT);
}

/** Whether the spare holds this very manifest already, with an image that verifies. */
async function alreadyInstalled(system: System, accepted: AcceptedManifest, image: string, device: InspectedSlot["device"]): Promise<boolean> {
  const existing = await readSlotRecord(system, INSTALL_MOUNT, `${device.label} on ${device.device}`, [accepted.key]);
  if (existing.status !== "valid" || !Buffer.from(existing.manifestBytes).equals(Buffer.from(accepted.manifestBytes))) return false;
  // an earlier boot installed this very manifest and was cut off before the switch
  return (await verifyImageFile(system, image, accepted.manifest.image)).ok;
}

/**
 * Room on the spare for `needed` more bytes of image: a slot without it is
 * first relabelled DEPRIVED, then emptied. Undefined when there is room, else
 * why the install cannot go on.
 */
async function makeRoom(system: System, log: Logger, config: Config, run: InstallRun, image: string, needed: number): Promise<string | undefined> {
  const { manifest } = run;
  if ((await system.freeBytes(INSTALL_MOUNT)) >= needed) return undefined;
  if (run.device.label !== config.labels.deprived) {
    log.warn(`${run.device.device} has no room for version ${manifest.version} beside the system it holds: it becomes ${config.labels.deprived} and is emptied first`);
    await unmountSpare(system, run);
    await system.setLabel(run.device, config.labels.deprived);
    run.device = { ...run.device, label: config.labels.deprived };
    await mountSpare(system, config, run);
  }
  await system.remove(`${INSTALL_MOUNT}/${RECORD_MANIFEST}`);
  await system.remove(image);
  const free = await system.freeBytes(INSTALL_MOUNT);
  if (free < needed) {
    return `Cannot install version ${manifest.version} to ${run.device.device}: it has ${formatMB(free)} free, the image needs ${formatMB(needed)} more`;
  }
  return undefined;
}

/** The verified image in `partial` becomes the slot's, and the signed records are written beside it. */
async function replaceImage(
  system: System,
  accepted: AcceptedManifest,
  configFiles: readonly FetchedConfigFile[],
  indexBytes: Uint8Array | undefined,
  partial: string,
  image: string,
  cuts: CutPoints,
): Promise<void> {
  // the slot stops claiming its old version before its image changes; its life cycle starts anew
  await system.remove(`${INSTALL_MOUNT}/${RECORD_MANIFEST}`);
  await system.remove(`${INSTALL_MOUNT}/${HEALTH_FILE}`);
  await system.remove(`${INSTALL_MOUNT}/${RECORD_INDEX}`);
  await cuts.reach("old-record-removed");
  await system.rename(partial, image);
  await cuts.reach("image-renamed");
  await writeRecords(system, INSTALL_MOUNT, accepted, configFiles, indexBytes, cuts);
}

/**
 * Writes the accepted image into `spare`. `running` is the image of the
 * SYSFS that runs, where it is mounted (undefined in the install benchmark):
 * it and the image the spare holds lend the chunks they share with the new
 * one to a delta install.
 */
export async function runInstallStage(
  system: System,
  log: Logger,
  config: Config,
  accepted: AcceptedManifest,
  configFiles: readonly FetchedConfigFile[],
  spare: InspectedSlot,
  running: LocalImage | undefined,
  cuts: CutPoints = NO_CUTS,
): Promise<InstallResult> {
  const { manifest } = accepted;
  const run: InstallRun = {
    manifest,
    pieces: await piecesToVerify(system, manifest.image),
    began: system.monotonicMs(),
    counters: newCounters(),
    resumedFromByte: 0,
    device: spare.device,
    mounted: false,
  };
  const image = `${INSTALL_MOUNT}/${config.slot.image}`;
  const partial = `${image}${PARTIAL_SUFFIX}`;
  const url = resolveRepoUrl(accepted.server, manifest.image.url);
  const result = (status: InstallResult["status"], detail: string) => installResult(system, log, run, status, detail);

  await mountSpare(system, config, run);
  try {
    if (await alreadyInstalled(system, accepted, image, run.device)) {
      return result("installed", `version ${manifest.version} is already on ${run.device.device} and verifies: no download needed`);
    }
    const start = await startDownload(system, log, partial, accepted, run.pieces, cuts);
    run.resumedFromByte = start;
    const noRoom = await makeRoom(system, log, config, run, image, manifest.image.size - start);
    if (noRoom !== undefined) return result("failed", noRoom);
    // the spare's own image too, unless it had to go to make room
    const spareImage = slotImage(`${run.device.label} on ${run.device.device}`, INSTALL_MOUNT, config);
    const chosen = await chooseImageSource(system, log, config, accepted, url, [...(running === undefined ? [] : [running]), spareImage]);
    if (chosen.delta !== undefined) run.delta = chosen.delta;
    log.info(`writing version ${manifest.version} (${formatMB(manifest.image.size)}) from ${url} to ${run.device.device}`);
    const verified = await downloadVerifiedImage(system, log, config, chosen.source, partial, manifest.image, run.device.device, start, run.counters, cuts);
    if (!verified.ok) return result("failed", `Cannot install version ${manifest.version}: ${verified.problem}; nothing was switched`);
    await cuts.reach("image-verified");
    await replaceImage(system, accepted, configFiles, chosen.indexBytes, partial, image, cuts);
    const { bytesFetched, bytesCopied } = run.counters;
    const fetched = bytesFetched > 0 ? `, ${formatMB(bytesFetched)} fetched` : "";
    const copied = bytesCopied > 0 ? `, ${formatMB(bytesCopied)} copied from this machine` : "";
    return result("installed", `version ${manifest.version} written to ${run.device.device} and verified from the disk${fetched}${copied}`);
  } catch (error) {
    return result("failed", `Cannot install version ${manifest.version} to ${run.device.device}: ${(error as Error).message}`);
  } finally {
    if (run.mounted) await unmountSpare(system, run);
  }
}
