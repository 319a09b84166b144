// Stage "install": write the accepted image into the spare slot, never into the
// SYSFS that runs. The image streams from the server straight into a file
// beside the slot's current image (an initramfs lives in RAM and images are
// GiBs); each piece the manifest signs a hash for (chunks.ts) is hashed back
// from the file as soon as it is written, on every CPU, while the download
// goes on; a dropped connection is resumed with a Range request. Only then does the slot
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
import { HttpRefusal, type System } from "../system/system.ts";
import { describeVerification, type Piece, piecesWithin, type SignedImage } from "../update/chunks.ts";
import { type BadPiece, firstBadPiece, type ImageCheck, PieceVerifier, piecesToVerify, verifyImageFile } from "../update/image-verify.ts";
import { type Manifest, resolveRepoUrl } from "../update/manifest.ts";
import { imageRequestOptions } from "./http-fetch.ts";
import { HEALTH_FILE } from "./slot-health.ts";
import { PARTIAL_SUFFIX, RECORD_CONFIG_DIR, RECORD_DIR, RECORD_INSTALL_STATE, RECORD_MANIFEST, RECORD_SIGNATURE, readSlotRecord } from "./slot-records.ts";
import type { AcceptedManifest } from "./update-check.ts";
import type { FetchedConfigFile } from "./update-config.ts";

const PROGRESS_INTERVAL_MS = 2000;
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

/** A download that cannot succeed on this boot, whatever a retry would do. */
class DownloadFailure extends Error {}

/** A piece written did not verify: the download stops, and the verifier says why. */
class PieceFailure extends DownloadFailure {}

/** Bytes of image that came over the network, and dropped connections resumed with a Range request. */
export interface DownloadCounters {
  bytesFetched: number;
  resumes: number;
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

function formatMB(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

/**
 * Streams the image into `partial` from `offset` on, resuming dropped
 * connections, and has `verifier` hash each piece once it is written; stops
 * at the first piece that does not verify.
 */
async function download(
  system: System,
  log: Logger,
  config: Config,
  url: string,
  partial: string,
  expected: { size: number },
  offset: number,
  verifier: PieceVerifier,
  counters: DownloadCounters,
  cuts: CutPoints,
): Promise<void> {
  let written = offset;
  let writer = await system.openForWrite(partial, written);
  const began = system.monotonicMs();
  let lastProgress = began;
  const progress = (force: boolean) => {
    const now = system.monotonicMs();
    if (!force && now - lastProgress < PROGRESS_INTERVAL_MS) return;
    lastProgress = now;
    const seconds = Math.max((now - began) / 1000, 0.001);
    const rate = counters.bytesFetched / MB / seconds;
    const eta = rate > 0 ? Math.ceil((expected.size - written) / MB / rate) : undefined;
    const percent = Math.floor((written / expected.size) * 100);
    log.info(`${percent}% of ${formatMB(expected.size)}, ${rate.toFixed(1)} MB/s${eta === undefined || written === expected.size ? "" : `, ETA ${eta} s`}`);
  };
  try {
    while (written < expected.size) {
      try {
        const response = await system.httpGet(url, imageRequestOptions(config, written));
        try {
          if (written > 0 && response.status === 200) {
            // the server ignored the Range header: what comes is the whole image again
            log.warn(`${url} does not resume downloads (it answered 200 to a Range request): starting over`);
            await writer.close();
            await verifier.restart();
            writer = await system.openForWrite(partial, 0);
            written = 0;
          } else if (response.status !== 200 && response.status !== 206) {
            throw new Error(`the server answered HTTP ${response.status}`);
          } else if (response.status === 206 && !(response.headers["content-range"] ?? "").startsWith(`bytes ${written}-`)) {
            throw new Error(`the server answered a Range request for byte ${written} with ${response.headers["content-range"] ?? "no Content-Range"}`);
          }
          for await (const chunk of response.body) {
            if (written + chunk.length > expected.size) {
              throw new DownloadFailure(`the server sent more than the ${expected.size} bytes the manifest signs for ${url}`);
            }
            await writer.write(chunk);
            const half = expected.size / 2;
            if (written < half && written + chunk.length >= half) await cuts.reach("download-half");
            written += chunk.length;
            counters.bytesFetched += chunk.length;
            // each byte is hashed once, as read back from the file, never as it came from the network:
            // that one pass checks what the server sent and what the file holds (a short or misplaced
            // write fails it as a bad download would); the pages read are the ones the fsync below writes
            verifier.advance(written);
            if (verifier.problem !== undefined) throw new PieceFailure();
            progress(false);
          }
        } finally {
          await response.discard();
        }
        if (written < expected.size) throw new Error(`the connection ended after ${written} of ${expected.size} bytes`);
      } catch (error) {
        if (error instanceof DownloadFailure) throw error;
        if (error instanceof HttpRefusal) throw new DownloadFailure(`the download of ${url} was refused: ${error.message}`);
        counters.resumes++;
        if (counters.resumes > config.update.resume_attempts) {
          throw new DownloadFailure(
            `the download of ${url} broke: ${(error as Error).message}; gave up after ${config.update.resume_attempts} resumes (update.resume_attempts)`,
          );
        }
        log.warn(`download of ${url} broke at byte ${written}: ${(error as Error).message}; resuming (${counters.resumes} of ${config.update.resume_attempts})`);
        await system.sleep(Math.min(counters.resumes, 5) * 1000);
      }
    }
    progress(true);
    await cuts.reach("download-written");
    await writer.sync();
    await cuts.reach("download-synced");
  } finally {
    await writer.close();
  }
}

/**
 * Streams a signed image into `partial` from byte `offset` on and verifies it
 * as the manifest signs it: every piece (chunks.ts) is read back from where it
 * was written (`where` names that place in messages) and hashed, while the
 * rest still downloads. Every piece that ends by `offset` must have been
 * verified already; the piece that straddles `offset` began on an earlier
 * boot, and a power cut may have lost its bytes before they reached the disk,
 * so when it does not verify it is fetched again, whole, once. A file with a
 * piece that does not verify otherwise is removed. Installs and diskless
 * boots both fetch images with it.
 */
export async function downloadVerifiedImage(
  system: System,
  log: Logger,
  config: Config,
  url: string,
  partial: string,
  image: SignedImage,
  where: string,
  offset: number,
  counters: DownloadCounters,
  cuts: CutPoints = NO_CUTS,
): Promise<ImageCheck> {
  const pieces = await piecesToVerify(system, image);
  log.info(`verifying ${describeVerification(pieces, image)} as it is written`);
  for (let from = offset; ; ) {
    const verifier = new PieceVerifier(system, partial, pieces, from);
    let problem: string | undefined;
    let bad: BadPiece | undefined;
    try {
      await download(system, log, config, url, partial, { size: image.size }, from, verifier, counters, cuts);
    } catch (error) {
      if (!(error instanceof DownloadFailure)) throw error;
      if (!(error instanceof PieceFailure)) problem = error.message;
    } finally {
      // no hash may still be reading the file when it is removed or renamed
      bad = await verifier.settle();
    }
    if (bad === undefined) return problem === undefined ? { ok: true } : { ok: false, problem };
    if (problem === undefined && bad.piece.offset < from) {
      log.warn(`${bad.problem}; it holds bytes written before this boot, which a power cut can leave unwritten: fetching it again from byte ${bad.piece.offset}`);
      from = bad.piece.offset;
      continue;
    }
    await system.remove(partial);
    // a download refused for another reason (more bytes than signed) says that first
    return { ok: false, problem: problem ?? `the image from ${url}, read back from ${where}: ${bad.problem}` };
  }
}

async function writeRecords(
  system: System,
  slotDir: string,
  accepted: AcceptedManifest,
  configFiles: readonly FetchedConfigFile[],
  cuts: CutPoints,
): Promise<void> {
  const configDir = `${slotDir}/${RECORD_CONFIG_DIR}`;
  await system.remove(configDir);
  await system.mkdir(configDir);
  for (const file of configFiles) await system.writeBytes(`${configDir}/${file.name}`, file.content);
  await cuts.reach("config-written");
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
  /** the slot written to, with the label it has now */
  device: InspectedSlot["device"];
  /** whether the spare is mounted read-write at INSTALL_MOUNT */
  mounted: boolean;
}

/** The stage's result, said on the console as well. */
function installResult(system: System, log: Logger, run: InstallRun, status: InstallResult["status"], detail: string): InstallResult {
  const { counters, device } = run;
  const durationMs = Math.round(system.monotonicMs() - run.began);
  const throughput = counters.bytesFetched > 0 && durationMs > 0 ? counters.bytesFetched / MB / (durationMs / 1000) : undefined;
  (status === "installed" ? log.info : log.error).call(log, detail);
  return {
    status,
    detail,
    version: run.manifest.version,
    device: device.device,
    ...(device.label === undefined ? {} : { label: device.label }),
    bytesFetched: counters.bytesFetched,
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
  partial: string,
  image: string,
  cuts: CutPoints,
): Promise<void> {
  // the slot stops claiming its old version before its image changes; its life cycle starts anew
  await system.remove(`${INSTALL_MOUNT}/${RECORD_MANIFEST}`);
  await system.remove(`${INSTALL_MOUNT}/${HEALTH_FILE}`);
  await cuts.reach("old-record-removed");
  await system.rename(partial, image);
  await cuts.reach("image-renamed");
  await writeRecords(system, INSTALL_MOUNT, accepted, configFiles, cuts);
}

export async function runInstallStage(
  system: System,
  log: Logger,
  config: Config,
  accepted: AcceptedManifest,
  configFiles: readonly FetchedConfigFile[],
  spare: InspectedSlot,
  cuts: CutPoints = NO_CUTS,
): Promise<InstallResult> {
  const { manifest } = accepted;
  const run: InstallRun = {
    manifest,
    pieces: await piecesToVerify(system, manifest.image),
    began: system.monotonicMs(),
    counters: { bytesFetched: 0, resumes: 0 },
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
    log.info(`writing version ${manifest.version} (${formatMB(manifest.image.size)}) from ${url} to ${run.device.device}`);
    const verified = await downloadVerifiedImage(system, log, config, url, partial, manifest.image, run.device.device, start, run.counters, cuts);
    if (!verified.ok) return result("failed", `Cannot install version ${manifest.version}: ${verified.problem}; nothing was switched`);
    await cuts.reach("image-verified");
    await replaceImage(system, accepted, configFiles, partial, image, cuts);
    const fetched = run.counters.bytesFetched > 0 ? `, ${formatMB(run.counters.bytesFetched)} fetched` : "";
    return result("installed", `version ${manifest.version} written to ${run.device.device} and verified from the disk${fetched}`);
  } catch (error) {
    return result("failed", `Cannot install version ${manifest.version} to ${run.device.device}: ${(error as Error).message}`);
  } finally {
    if (run.mounted) await unmountSpare(system, run);
  }
}
