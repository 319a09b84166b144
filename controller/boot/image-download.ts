// Writing a signed image into a file and verifying it as it is written, for
// the install stage (into the spare slot) and diskless boots (into RAM). The
// bytes come from an ImageSource: the whole image from the server, or a delta
// plan (update/delta-plan.ts) that copies the chunks this machine already
// holds from its own slots and fetches the rest by Range. Either way the file
// is written from its start to its end, so a resume after a power cut or a
// dropped connection only needs to know how far the verified bytes reach;
// each piece the manifest signs a hash for (chunks.ts) is hashed back from
// the file as soon as it is written, on every CPU, while the rest still comes.
// A copied chunk is checked against the new index's sha256 before it is
// written, and one that does not match is fetched instead: a local image is
// only ever a hint of where bytes might be.

import { createHash } from "node:crypto";
import type { Config } from "../config/schema.ts";
import { type CutPoints, NO_CUTS } from "../system/cut-points.ts";
import type { Logger } from "../system/log.ts";
import { type FileReader, HttpRefusal, type System } from "../system/system.ts";
import { type ChunkIndex, chunkHash } from "../update/chunk-index.ts";
import { describeVerification, type SignedImage } from "../update/chunks.ts";
import type { DeltaStep } from "../update/delta-plan.ts";
import { type BadPiece, type ImageCheck, PieceVerifier, piecesToVerify } from "../update/image-verify.ts";
import { imageRequestOptions } from "./http-fetch.ts";

const PROGRESS_INTERVAL_MS = 2000;
const MB = 1_000_000;
/** Local chunks that do not verify, said one by one on the console up to this many. */
const SHOWN_REFETCHES = 3;
/**
 * Reads of one local image that fail in a row before it is given up: one bad
 * sector costs a chunk, a disk going bad stops costing a Range request and a
 * failing read per chunk; the rest of what it would have given is fetched in
 * as few requests as the plan allows.
 */
const FAILED_READS_TO_GIVE_UP = 3;

export function formatMB(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

/** Where an image's bytes come from. */
export interface ImageSource {
  readonly url: string;
  /** in the image's order, covering it whole */
  readonly steps: readonly DeltaStep[];
  /** the files copy steps name by number */
  readonly localImages: readonly string[];
  /** the new image's chunk index, when there are copy steps: the sha256 each copied chunk must have */
  readonly index?: ChunkIndex;
}

/** The whole image from the server, in one request (resumed where it breaks). */
export function wholeImage(url: string, image: SignedImage): ImageSource {
  return { url, steps: [{ kind: "fetch", offset: 0, length: image.size }], localImages: [] };
}

/** Bytes of image that came over the network or from this machine's own slots, and what went wrong on the way. */
export interface DownloadCounters {
  bytesFetched: number;
  bytesCopied: number;
  /** dropped connections resumed with a Range request */
  resumes: number;
  /** local chunks that did not have the sha256 the new index lists, fetched instead */
  chunksRefetched: number;
}

export function newCounters(): DownloadCounters {
  return { bytesFetched: 0, bytesCopied: 0, resumes: 0, chunksRefetched: 0 };
}

/** A download that cannot succeed on this boot, whatever a retry would do. */
class DownloadFailure extends Error {}

/** A piece written did not verify: the download stops, and the verifier says why. */
class PieceFailure extends DownloadFailure {}

/** One pass over the source's steps into `partial`, from byte `offset` on. */
class ImageWriter {
  private written: number;
  /** the local images copy steps have read so far, by their number in the source */
  private readonly readers = new Map<number, FileReader>();
  /** reads that failed in a row, by local image: FAILED_READS_TO_GIVE_UP, or an open that failed, gives it up */
  private readonly failedReads = new Map<number, number>();
  private readonly began: number;
  private lastProgress: number;

  constructor(
    private readonly system: System,
    private readonly log: Logger,
    private readonly config: Config,
    private readonly source: ImageSource,
    private readonly partial: string,
    private readonly size: number,
    offset: number,
    private readonly verifier: PieceVerifier,
    private readonly counters: DownloadCounters,
    private readonly cuts: CutPoints,
    private writer: Awaited<ReturnType<System["openForWrite"]>>,
  ) {
    this.written = offset;
    this.began = system.monotonicMs();
    this.lastProgress = this.began;
  }

  static async open(
    system: System,
    log: Logger,
    config: Config,
    source: ImageSource,
    partial: string,
    size: number,
    offset: number,
    verifier: PieceVerifier,
    counters: DownloadCounters,
    cuts: CutPoints,
  ): Promise<ImageWriter> {
    return new ImageWriter(system, log, config, source, partial, size, offset, verifier, counters, cuts, await system.openForWrite(partial, offset));
  }

  async writeAll(): Promise<void> {
    try {
      const { steps } = this.source;
      for (const [at, step] of steps.entries()) {
        const end = step.offset + step.length;
        if (end <= this.written) continue;
        if (step.kind === "fetch") await this.fetchUpTo(end);
        else if (this.givenUp(step.source)) await this.fetchGivenUp(steps, at);
        else await this.copy(step);
      }
      this.progress(true);
      await this.cuts.reach("download-written");
      await this.writer.sync();
      await this.cuts.reach("download-synced");
    } finally {
      await this.writer.close();
      for (const reader of this.readers.values()) await reader.close();
    }
  }

  private async readerOf(source: number): Promise<FileReader> {
    const open = this.readers.get(source);
    if (open !== undefined) return open;
    try {
      const reader = await this.system.openForRead(this.source.localImages[source] ?? "");
      this.readers.set(source, reader);
      return reader;
    } catch (error) {
      // an image that does not open will not open for the next chunk either
      this.failedReads.set(source, FAILED_READS_TO_GIVE_UP);
      throw error;
    }
  }

  private givenUp(source: number): boolean {
    return (this.failedReads.get(source) ?? 0) >= FAILED_READS_TO_GIVE_UP;
  }

  /**
   * From `steps[at]`, a copy from an image given up, up to the next copy from
   * an image still read: those copies are fetched with the fetches between
   * them, in one request, and each is counted as refetched.
   */
  private async fetchGivenUp(steps: readonly DeltaStep[], at: number): Promise<void> {
    let end = this.written;
    for (const step of steps.slice(at)) {
      if (step.kind === "copy" && !this.givenUp(step.source)) break;
      if (step.kind === "copy") this.counters.chunksRefetched++;
      end = step.offset + step.length;
    }
    await this.fetchUpTo(end);
  }

  private progress(force: boolean): void {
    const now = this.system.monotonicMs();
    if (!force && now - this.lastProgress < PROGRESS_INTERVAL_MS) return;
    this.lastProgress = now;
    const { bytesFetched, bytesCopied } = this.counters;
    const seconds = Math.max((now - this.began) / 1000, 0.001);
    const rate = (bytesFetched + bytesCopied) / MB / seconds;
    const eta = rate > 0 ? Math.ceil((this.size - this.written) / MB / rate) : undefined;
    const percent = Math.floor((this.written / this.size) * 100);
    const copied = bytesCopied > 0 ? ` (${formatMB(bytesCopied)} copied from this machine, ${formatMB(bytesFetched)} fetched)` : "";
    this.log.info(`${percent}% of ${formatMB(this.size)}${copied}, ${rate.toFixed(1)} MB/s${eta === undefined || this.written === this.size ? "" : `, ETA ${eta} s`}`);
  }

  /** The next bytes of the file; stops the download at the first piece that does not verify. */
  private async put(bytes: Uint8Array): Promise<void> {
    await this.writer.write(bytes);
    const half = this.size / 2;
    if (this.written < half && this.written + bytes.length >= half) await this.cuts.reach("download-half");
    this.written += bytes.length;
    // each byte is hashed once, as read back from the file, never as it came: that one pass checks
    // what the server sent and what the file holds (a short or misplaced write fails it as a bad
    // download would); the pages read are the ones the fsync at the end writes
    this.verifier.advance(this.written);
    if (this.verifier.problem !== undefined) throw new PieceFailure();
    this.progress(false);
  }

  /** A chunk this machine holds, if it still has the sha256 the new index lists; else it is fetched. */
  private async copy(step: Extract<DeltaStep, { kind: "copy" }>): Promise<void> {
    const from = this.source.localImages[step.source] ?? "";
    const expected = this.source.index === undefined ? undefined : chunkHash(this.source.index, step.chunk);
    let bytes: Uint8Array | undefined;
    let unreadable: string | undefined;
    try {
      bytes = await (await this.readerOf(step.source)).read(step.sourceOffset, step.length);
      this.failedReads.delete(step.source);
    } catch (error) {
      unreadable = (error as Error).message;
      this.failedReads.set(step.source, (this.failedReads.get(step.source) ?? 0) + 1);
    }
    if (bytes !== undefined && expected !== undefined && bytes.length === step.length && createHash("sha256").update(bytes).digest().equals(expected)) {
      // a resumed install may have the chunk's start in the file already
      const missing = bytes.subarray(this.written - step.offset);
      await this.put(missing);
      this.counters.bytesCopied += missing.length;
      return;
    }
    this.counters.chunksRefetched++;
    // a damaged or unreadable local image could have thousands of such chunks: the first few say it, the report counts them all
    if (this.counters.chunksRefetched <= SHOWN_REFETCHES) {
      const more = this.counters.chunksRefetched === SHOWN_REFETCHES ? " (any more are fetched without a word; the report counts them)" : "";
      const why = unreadable === undefined ? "does not have the sha256 the new image's index lists" : `cannot be read: ${unreadable}`;
      this.log.warn(`chunk ${step.chunk} at byte ${step.sourceOffset} of ${from} ${why}: fetching it instead${more}`);
    }
    if (unreadable !== undefined && this.givenUp(step.source)) {
      this.log.warn(`${from} cannot be read (${unreadable}): nothing more is copied from it; what it would have given is fetched, neighbouring chunks in one request`);
    }
    await this.fetchUpTo(step.offset + step.length);
  }

  /** The image's bytes from where the file ends up to `end`, from the server, resuming dropped connections. */
  private async fetchUpTo(end: number): Promise<void> {
    const { url } = this.source;
    while (this.written < end) {
      try {
        const options = imageRequestOptions(this.config, this.written, end < this.size ? end - 1 : undefined);
        const response = await this.system.httpGet(url, options);
        try {
          if (this.written > 0 && response.status === 200) {
            // the server ignored the Range header: what comes is the whole image again, taken whole
            this.log.warn(`${url} does not resume downloads or send parts (it answered 200 to a Range request): starting over with the whole image`);
            await this.restart();
            end = this.size;
          } else if (response.status !== 200 && response.status !== 206) {
            throw new Error(`the server answered HTTP ${response.status}`);
          } else if (response.status === 206 && !(response.headers["content-range"] ?? "").startsWith(`bytes ${this.written}-`)) {
            throw new Error(`the server answered a Range request for byte ${this.written} with ${response.headers["content-range"] ?? "no Content-Range"}`);
          } else if (response.status === 200) {
            // asked for part of the image from its start, sent all of it: take it all
            end = this.size;
          }
          for await (const chunk of response.body) {
            if (this.written + chunk.length > end) {
              throw new DownloadFailure(
                end === this.size
                  ? `the server sent more than the ${this.size} bytes the manifest signs for ${url}`
                  : `the server sent more than the bytes up to ${end - 1} asked of ${url}`,
              );
            }
            await this.put(chunk);
            this.counters.bytesFetched += chunk.length;
          }
        } finally {
          await response.discard();
        }
        if (this.written < end) throw new Error(`the connection ended after ${this.written} of ${this.size} bytes`);
      } catch (error) {
        if (error instanceof DownloadFailure) throw error;
        if (error instanceof HttpRefusal) throw new DownloadFailure(`the download of ${url} was refused: ${error.message}`);
        this.counters.resumes++;
        const attempts = this.config.update.resume_attempts;
        if (this.counters.resumes > attempts) {
          throw new DownloadFailure(`the download of ${url} broke: ${(error as Error).message}; gave up after ${attempts} resumes (update.resume_attempts)`);
        }
        this.log.warn(`download of ${url} broke at byte ${this.written}: ${(error as Error).message}; resuming (${this.counters.resumes} of ${attempts})`);
        await this.system.sleep(Math.min(this.counters.resumes, 5) * 1000);
      }
    }
  }

  /** The file from byte 0 again: the server sends only whole images. */
  private async restart(): Promise<void> {
    await this.writer.close();
    await this.verifier.restart();
    this.writer = await this.system.openForWrite(this.partial, 0);
    this.written = 0;
  }
}

/**
 * Writes a signed image into `partial` from byte `offset` on and verifies it
 * as the manifest signs it: every piece (chunks.ts) is read back from where it
 * was written (`where` names that place in messages) and hashed, while the
 * rest still comes. Every piece that ends by `offset` must have been
 * verified already; the piece that straddles `offset` began on an earlier
 * boot, and a power cut may have lost its bytes before they reached the disk,
 * so when it does not verify it is written again, whole, once. A file with a
 * piece that does not verify otherwise is removed. Installs and diskless
 * boots both write images with it.
 */
export async function downloadVerifiedImage(
  system: System,
  log: Logger,
  config: Config,
  source: ImageSource,
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
      const writer = await ImageWriter.open(system, log, config, source, partial, image.size, from, verifier, counters, cuts);
      await writer.writeAll();
    } catch (error) {
      if (!(error instanceof DownloadFailure)) throw error;
      if (!(error instanceof PieceFailure)) problem = error.message;
    } finally {
      // no hash may still be reading the file when it is removed or renamed
      bad = await verifier.settle();
    }
    if (bad === undefined) return problem === undefined ? { ok: true } : { ok: false, problem };
    if (problem === undefined && bad.piece.offset < from) {
      log.warn(`${bad.problem}; it holds bytes written before this boot, which a power cut can leave unwritten: writing it again from byte ${bad.piece.offset}`);
      from = bad.piece.offset;
      continue;
    }
    await system.remove(partial);
    // a download refused for another reason (more bytes than signed) says that first
    return { ok: false, problem: problem ?? `the image from ${source.url}, read back from ${where}: ${bad.problem}` };
  }
}
