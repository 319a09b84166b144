// Where the bytes of a new image come from: the chunks this machine already
// holds in its slots' images, found by their chunk indexes (each slot keeps its
// image's index with its record), and the rest from the server. Anything that
// stands in the way of a delta (a manifest without an index, an index that does
// not match its signed hash, slots without one) means the whole image, as
// before delta installs: it is never a reason not to install.

import type { Config } from "../config/schema.ts";
import type { Logger } from "../system/log.ts";
import type { System } from "../system/system.ts";
import { type ChunkIndex, chunkIndexMaxBytes, parseChunkIndex } from "../update/chunk-index.ts";
import { planDelta } from "../update/delta-plan.ts";
import { resolveRepoUrl } from "../update/manifest.ts";
import { sha512Hex } from "../update/signing.ts";
import { fetchCapped } from "./http-fetch.ts";
import { formatMB, type ImageSource, wholeImage } from "./image-download.ts";
import { RECORD_INDEX } from "./slot-records.ts";
import type { AcceptedManifest } from "./update-check.ts";

/** An image on this machine that may hold chunks of the new one, and where its index is. */
export interface LocalImage {
  /** "SYSFS on /dev/sda2", for messages */
  readonly name: string;
  readonly image: string;
  readonly index: string;
}

/** The image of the slot mounted at `dir`, and its index as the slot's record keeps it. */
export function slotImage(name: string, dir: string, config: Config): LocalImage {
  return { name, image: `${dir}/${config.slot.image}`, index: `${dir}/${RECORD_INDEX}` };
}

/** What the report says of a delta install's plan. */
export interface DeltaSummary {
  /** the local images whose chunks the plan copies, by name */
  readonly localImages: readonly string[];
  readonly plannedCopyBytes: number;
  readonly plannedFetchBytes: number;
  readonly requests: number;
}

export interface ChosenSource {
  readonly source: ImageSource;
  /** the new image's index, verified against the manifest: the slot keeps it with its record */
  readonly indexBytes?: Uint8Array;
  /** absent when the whole image is fetched */
  readonly delta?: DeltaSummary;
}

/** The new image's index, fetched and checked against what the manifest signs; undefined, with why on the console, when it cannot be used. */
async function fetchIndex(system: System, log: Logger, config: Config, accepted: AcceptedManifest): Promise<{ bytes: Uint8Array; index: ChunkIndex } | undefined> {
  const { image } = accepted.manifest;
  if (image.index === undefined) {
    log.info("the manifest names no chunk index (published before delta updates): fetching the whole image");
    return undefined;
  }
  const url = resolveRepoUrl(accepted.server, image.index.url);
  let bytes: Uint8Array;
  try {
    bytes = await fetchCapped(system, config, url, image.index.size);
  } catch (error) {
    log.warn(`${(error as Error).message}: fetching the whole image`);
    return undefined;
  }
  const hash = sha512Hex(bytes);
  if (bytes.length !== image.index.size || hash !== image.index.sha512) {
    log.warn(`Cannot use the chunk index ${url}: it has ${bytes.length} bytes and sha512 ${hash.slice(0, 16)}…, the manifest signs ${image.index.size} bytes and ${image.index.sha512.slice(0, 16)}…: fetching the whole image`);
    return undefined;
  }
  const parsed = parseChunkIndex(bytes, image.size, url);
  if (!parsed.ok) {
    log.warn(`${parsed.problem}: fetching the whole image`);
    return undefined;
  }
  return { bytes, index: parsed.index };
}

/** A local image's index, or undefined (said on the console) when it has none that describes it. */
async function localIndex(system: System, log: Logger, local: LocalImage): Promise<ChunkIndex | undefined> {
  const image = await system.lstat(local.image);
  if (image?.type !== "file") return undefined;
  if ((await system.lstat(local.index)) === undefined) {
    log.info(`${local.name} keeps no chunk index (installed before delta updates): none of its chunks are used`);
    return undefined;
  }
  try {
    const parsed = parseChunkIndex(await system.readBytes(local.index, chunkIndexMaxBytes(image.size)), image.size, local.index);
    if (parsed.ok) return parsed.index;
    log.warn(`${parsed.problem}: none of the chunks of ${local.name} are used`);
  } catch (error) {
    log.warn(`Cannot read the chunk index ${local.index}: ${(error as Error).message}: none of the chunks of ${local.name} are used`);
  }
  return undefined;
}

/**
 * The source of the new image's bytes: a plan that copies what the `local`
 * images hold (the first listed is preferred for a chunk both hold) and
 * fetches the rest, or the whole image from `url`.
 */
export async function chooseImageSource(
  system: System,
  log: Logger,
  config: Config,
  accepted: AcceptedManifest,
  url: string,
  local: readonly LocalImage[],
): Promise<ChosenSource> {
  const whole = wholeImage(url, accepted.manifest.image);
  const fetched = await fetchIndex(system, log, config, accepted);
  if (fetched === undefined) return { source: whole };
  const usable: { local: LocalImage; index: ChunkIndex }[] = [];
  for (const candidate of local) {
    const index = await localIndex(system, log, candidate);
    if (index !== undefined) usable.push({ local: candidate, index });
  }
  const plan = planDelta(fetched.index, usable.map((found) => found.index));
  if (plan.bytesCopied === 0) {
    log.info(`no chunk of the new image is on this machine${usable.length === 0 ? " (no slot keeps a chunk index)" : ""}: fetching the whole image`);
    return { source: whole, indexBytes: fetched.bytes };
  }
  const copiedFrom = [...new Set(plan.steps.flatMap((step) => (step.kind === "copy" ? [step.source] : [])))].map((source) => usable[source]?.local.name ?? "");
  log.info(
    `delta: copying ${formatMB(plan.bytesCopied)} of the new image's ${formatMB(accepted.manifest.image.size)} from ${copiedFrom.join(" and ")}, ` +
      `fetching ${formatMB(plan.bytesFetched)} in ${plan.requests} ${plan.requests === 1 ? "request" : "requests"}`,
  );
  return {
    source: { url, steps: plan.steps, localImages: usable.map((found) => found.local.image), index: fetched.index },
    indexBytes: fetched.bytes,
    delta: { localImages: copiedFrom, plannedCopyBytes: plan.bytesCopied, plannedFetchBytes: plan.bytesFetched, requests: plan.requests },
  };
}
