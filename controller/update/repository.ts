// An update repository on a workstation: make a signing key, publish a signed
// update into a folder any HTTP server can serve, sign what machines fetch
// elsewhere, and check what is there the way a controller would (the same
// signature checks, the same caps on what is read). Never runs in the initramfs. Every file lands by
// temp name, fsync and rename; manifest.json comes last, so whatever a client
// sees at any moment names files (and a signature) that are already complete.

import { createHash, randomUUID } from "node:crypto";
import { constants, createReadStream, type Stats } from "node:fs";
import { type FileHandle, lstat, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { UPDATE_NAME } from "../config/cmdline.ts";
import { machineOnlyKeysIn, parseConfigLayer } from "../config/layers.ts";
import { isHostname, MAX_MANIFEST_VALIDITY_DAYS } from "../config/schema.ts";
import { HEDDLE_UPDATE_FILES } from "../system/paths.ts";
import { hashPool } from "../system/hash-pool.ts";
import { type ChunkIndex, chunkIndexMaxBytes, chunkOffsets, encodeChunkIndex, type ParsedChunkIndex, parseChunkIndex } from "./chunk-index.ts";
import { CHUNK_HASHES, chunkRanges, publishChunkSize, type SignedChunks, type SignedImage } from "./chunks.ts";
import { PUBLISH_CHUNK_SIZES } from "./content-chunker.ts";
import { describeShared, planDelta } from "./delta-plan.ts";
import { chunksNotMatching, ImageIndexer } from "./image-index.ts";
import { checkSignedKernel, type ImageKernel, readImageKernel } from "./image-kernel-files.ts";
import { COMMAND_SCRIPT_MAX_BYTES, SSH_KEYS_MAX_BYTES, SUMS_MAX_BYTES } from "./limits.ts";
import {
  CONFIG_FILE_MAX_BYTES,
  compareVersions,
  isChannel,
  isConfigFileName,
  isMac,
  isVersion,
  MANIFEST_FORMAT,
  MANIFEST_MAX_BYTES,
  manifestFormatFor,
  type Manifest,
  type ManifestFile,
  manifestPath,
  parseManifest,
  SIGNATURE_MAX_BYTES,
  signaturePath,
} from "./manifest.ts";
import {
  decodeSecretKey,
  encodePublicKey,
  encodeSecretKey,
  generateKeyPair,
  publicKeyOf,
  type SignatureClaims,
  type SignaturePurpose,
  sha512Hex,
  signContent,
  verifySignature,
} from "./signing.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

/** A verify that finds chunks of an image not matching its index names this many. */
const MAX_CHUNKS_SHOWN = 5;
/**
 * A manifest that lives for years would make a frozen or replayed server
 * unnoticeable for as long; no controller takes one valid for longer than this.
 */
const MAX_EXPIRES_DAYS = MAX_MANIFEST_VALIDITY_DAYS;
/** "hsqs", little-endian: what every squashfs image starts with. */
const SQUASHFS_MAGIC = "hsqs";

// --- files ---------------------------------------------------------------------

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
}

function describeType(info: Stats): string {
  if (info.isDirectory()) return "folder";
  if (info.isFIFO()) return "FIFO";
  if (info.isCharacterDevice() || info.isBlockDevice()) return "device";
  if (info.isSocket()) return "socket";
  return "special file";
}

export type CappedRead =
  | { readonly status: "read"; readonly bytes: Uint8Array }
  | { readonly status: "missing" }
  /** not a regular file, or more than the cap: `problem` names the file and why */
  | { readonly status: "refused"; readonly problem: string };

/**
 * A regular file, read as a controller reads what it fetches: at most `cap`
 * bytes (`capName` says whose cap, for the message), and only cap + 1 of an
 * endless or huge file; a FIFO, device or folder is refused without waiting
 * on it (O_NONBLOCK, then fstat, in case it changed after the stat).
 */
export async function readRegularFile(path: string, cap: number, capName: string): Promise<CappedRead> {
  const notRegular = (info: Stats): CappedRead => ({ status: "refused", problem: `${path}: Cannot read it: it is a ${describeType(info)}, expected a regular file` });
  let handle: FileHandle;
  try {
    const info = await stat(path);
    if (!info.isFile()) return notRegular(info);
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    if (isMissing(error)) return { status: "missing" };
    return { status: "refused", problem: `${path}: Cannot read it: ${(error as Error).message}` };
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) return notRegular(info);
    const buffer = Buffer.alloc(cap + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > cap) return { status: "refused", problem: `${path}: Cannot read it: it is larger than ${cap} bytes (${capName}), the most a controller reads of it` };
    return { status: "read", bytes: new Uint8Array(buffer.subarray(0, length)) };
  } finally {
    await handle.close();
  }
}

async function isRegularFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

/** fsync a folder, so a rename in it survives a crash. */
async function syncFolder(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Write every chunk to a new file in `folder` that nobody reads yet, fsync it; the caller renames it into place. */
async function writeTemp(folder: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, onChunk?: (chunk: Uint8Array) => void): Promise<string> {
  await mkdir(folder, { recursive: true });
  const temp = join(folder, `.tmp-${process.pid}-${randomUUID()}`);
  const handle = await open(temp, "wx", 0o644);
  try {
    for await (const chunk of chunks) {
      onChunk?.(chunk);
      for (let written = 0; written < chunk.length; ) {
        written += (await handle.write(chunk, written)).bytesWritten;
      }
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  return temp;
}

/** Replace `path` whole: a reader sees the old file or the new one, never a part. */
async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const temp = await writeTemp(dirname(path), [bytes]);
  await rename(temp, path);
  await syncFolder(dirname(path));
}

/** Store content under its sha512 in REPO/FOLDER; returns the manifest's url, size and sha512 for it. */
async function storeContentAddressed(
  repo: string,
  folder: string,
  extension: string,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<Omit<ManifestFile, "name">> {
  const hash = createHash("sha512");
  let size = 0;
  const temp = await writeTemp(join(repo, folder), chunks, (chunk) => {
    hash.update(chunk);
    size += chunk.length;
  });
  const sha512 = hash.digest("hex");
  const url = `${folder}/${sha512}.${extension}`;
  // the same content may be there already; replacing it with itself is harmless and keeps one code path
  await rename(temp, join(repo, url));
  await syncFolder(join(repo, folder));
  return { url, size, sha512 };
}

interface StoredImage extends Omit<ManifestFile, "name"> {
  readonly chunks: Required<SignedChunks>;
  /** the chunk index file, as the manifest names it */
  readonly index: Omit<ManifestFile, "name">;
  readonly chunkIndex: ChunkIndex;
}

/**
 * Store the image under its sha512 in REPO/images, with the sha512 and the
 * sha256 of every chunk (chunks.ts) for controllers to verify it in pieces on
 * every CPU, each with the hash its CPU computes faster; the whole hash and
 * the chunks' are computed at once, each chunk read once for both. Beside it,
 * under its own sha512, the image's chunk index for delta installs, cut from
 * the bytes as they are copied in.
 */
async function storeImage(repo: string, imagePath: string): Promise<StoredImage> {
  const folder = join(repo, "images");
  const indexer = new ImageIndexer(PUBLISH_CHUNK_SIZES);
  const temp = await writeTemp(folder, createReadStream(imagePath, { highWaterMark: 1 << 20 }), (bytes) => indexer.push(bytes));
  const chunkIndex = indexer.finish();
  const { size } = await stat(temp);
  const chunkSize = publishChunkSize(size);
  const pool = hashPool();
  const [sha512, chunkHashes] = await Promise.all([
    pool.hashRange(temp, 0, size, "sha512"),
    Promise.all(chunkRanges(size, chunkSize).map((chunk) => pool.hashesOfRange(temp, chunk.offset, chunk.length, CHUNK_HASHES))),
  ]);
  const url = `images/${sha512}.squashfs`;
  await rename(temp, join(repo, url));
  await syncFolder(folder);
  const index = await storeContentAddressed(repo, "images", "index", [encodeChunkIndex(chunkIndex)]);
  const chunks = { size: chunkSize, sha512: chunkHashes.map(([hash]) => hash as string), sha256: chunkHashes.map(([, hash]) => hash as string) };
  return { url, size, sha512, chunks, index, chunkIndex };
}

function hashFile(path: string, size: number): Promise<string> {
  return hashPool().hashRange(path, 0, size, "sha512");
}

/** A new file that must not replace an existing one; `wx` refuses even a dangling symlink in the way. */
async function writeNewFile(path: string, text: string, mode: number): Promise<void> {
  const handle = await open(path, "wx", mode);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// --- keygen --------------------------------------------------------------------

/**
 * Write PREFIX.secret (mode 0600) and PREFIX.pub; returns the public key text
 * for update.trusted_keys. A missing folder for them is made with mode 0700,
 * as it is to hold a secret key, and `onFolderCreated` is told which.
 */
export async function keygen(outPrefix: string, onFolderCreated: (folder: string) => void = () => {}): Promise<string> {
  const secretFile = `${outPrefix}.secret`;
  const publicFile = `${outPrefix}.pub`;
  const folder = dirname(secretFile);
  let created: string | undefined;
  try {
    created = await mkdir(folder, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new Error(`Cannot write the key pair ${secretFile}: cannot make the folder ${folder}/ for it: ${(error as Error).message}`);
  }
  if (created !== undefined) onFolderCreated(created);
  for (const file of [secretFile, publicFile]) {
    if (await exists(file)) {
      throw new Error(
        `Cannot write a new key pair: ${file} already exists (a new key would not match what machines trust; move the old files away first)`,
      );
    }
  }
  const { publicKey, secretKey } = generateKeyPair();
  await writeNewFile(secretFile, encodeSecretKey(secretKey), 0o600);
  const publicText = encodePublicKey(publicKey);
  await writeNewFile(publicFile, `${publicText}\n`, 0o644);
  return publicText;
}

// --- publish -------------------------------------------------------------------

export type MachineConfig =
  | { readonly mac: string; readonly files: readonly string[] }
  | { readonly hostname: string; readonly files: readonly string[] };

export interface PublishOptions {
  readonly repo: string;
  readonly channel: string;
  readonly version: string;
  /** The squashfs image file. */
  readonly image: string;
  /** Config files for every machine; each keeps its file name in config.d. */
  readonly fleetConfig: readonly string[];
  readonly machineConfig: readonly MachineConfig[];
  readonly expiresInDays: number;
  /** the share of the channel's machines that take this version (--rollout); undefined: every machine */
  readonly rolloutPercent?: number;
  readonly secretKeyFile: string;
  readonly now: Date;
}

export type Published =
  | {
      readonly ok: true;
      readonly manifest: Manifest;
      /** REPO/channels/CHANNEL/manifest.json */
      readonly manifestFile: string;
      /** The public key of the key that signed, to compare with update.trusted_keys. */
      readonly publicKey: string;
      /** what was found of the image's kernel and signed, for stdout */
      readonly notes: readonly string[];
      readonly warnings: readonly string[];
    }
  | { readonly ok: false; readonly problems: readonly string[]; readonly warnings: readonly string[] };

interface ConfigSource {
  readonly path: string;
  readonly name: string;
  readonly bytes: Uint8Array;
}

/**
 * Publish an update: the image and config files under their sha512, the
 * signature, then manifest.json. Everything is checked before anything is
 * written; problems are sentences naming the file or option.
 */
export async function publish(options: PublishOptions): Promise<Published> {
  const { repo, channel, version, now } = options;
  const problems: string[] = [];
  const warnings: string[] = [];
  const refused = (): Published => ({ ok: false, problems, warnings });

  if (!isChannel(channel)) {
    problems.push(`Cannot publish to channel ${JSON.stringify(channel)}: expected a lowercase letter or digit, then up to 63 of them or ".", "_", "-"`);
  }
  if (!isVersion(version)) {
    problems.push(
      `Cannot publish version ${JSON.stringify(version)}: expected a version such as "1.2.0" (1 to 4 dot-separated numbers of at most 9 digits, no leading zeros)`,
    );
  }
  const days = options.expiresInDays;
  if (!Number.isInteger(days) || days < 1 || days > MAX_EXPIRES_DAYS) {
    problems.push(`Cannot publish with --expires-days ${days}: expected an integer from 1 to ${MAX_EXPIRES_DAYS}`);
  }
  const rolloutProblem = checkRolloutPercent(options.rolloutPercent);
  if (rolloutProblem !== undefined) problems.push(`Cannot publish with --rollout ${options.rolloutPercent}: ${rolloutProblem}`);
  if (problems.length > 0) return refused();

  const secretKey = await readSecretKey(options.secretKeyFile, problems, warnings);
  const previous = await currentManifestBelow(repo, channel, version, problems);
  const imageProblems = problems.length;
  await checkImage(options.image, problems);
  const imageKernel = problems.length === imageProblems ? await readImageKernel(options.image) : undefined;
  const rollout = partialRollout(options.rolloutPercent);
  const notes = imageKernel === undefined ? [] : describeImageKernel(options.image, imageKernel, rollout?.percent, problems, warnings);
  const fleet = await readConfigFiles(options.fleetConfig, "the fleet config", problems, warnings);
  const machines: { selector: { mac: string } | { hostname: string }; files: ConfigSource[] }[] = [];
  for (const entry of options.machineConfig) {
    const selector = "mac" in entry ? { mac: entry.mac.toLowerCase() } : { hostname: entry.hostname };
    const label = "mac" in selector ? `the config of mac ${selector.mac}` : `the config of hostname ${selector.hostname}`;
    if ("mac" in selector && !isMac(selector.mac)) {
      problems.push(`Cannot publish ${label}: expected a MAC address such as 52:54:00:12:34:56`);
    }
    if ("hostname" in selector && !isHostname(selector.hostname)) {
      problems.push(`Cannot publish ${label}: expected a hostname such as "lab-07" or "lab-07.example.org"`);
    }
    machines.push({ selector, files: await readConfigFiles(entry.files, label, problems, warnings) });
  }
  if (secretKey === undefined || problems.length > 0) return refused();

  const image = await storeImage(repo, options.image);
  const store = async (file: ConfigSource): Promise<ManifestFile> => ({
    name: file.name,
    ...(await storeContentAddressed(repo, "config", "toml", [file.bytes])),
  });
  const kernel = imageKernel?.kind === "kernel" ? imageKernel.kernel : undefined;
  const manifest = {
    // an image without a kernel or a partial rollout gets format 1, byte for byte as before, which every controller reads
    format: manifestFormatFor({ kernel: kernel !== undefined, rolloutPercent: rollout?.percent }),
    channel,
    version,
    ...(rollout === undefined ? {} : { rollout }),
    created: now.toISOString(),
    expires: new Date(now.getTime() + days * DAY_MS).toISOString(),
    image: { url: image.url, size: image.size, sha512: image.sha512, format: "squashfs", chunks: image.chunks, index: image.index },
    ...(kernel === undefined ? {} : { kernel }),
    config: {
      fleet: await Promise.all(fleet.map(store)),
      machines: await Promise.all(machines.map(async ({ selector, files }) => ({ ...selector, files: await Promise.all(files.map(store)) }))),
    },
  };
  const bytes = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
  const manifestFile = join(repo, manifestPath(channel));
  // what a controller would make of it: e.g. too many machine entries for MANIFEST_MAX_BYTES
  const parsed = parseManifest(bytes, manifestFile);
  if (!parsed.ok) {
    problems.push(...parsed.problems.map((problem) => `Cannot publish: the new manifest would be refused: ${problem}`));
    return refused();
  }
  await writeManifestSignature(repo, channel, bytes, parsed.manifest, secretKey);
  await writeAtomically(manifestFile, bytes);
  if (rollout !== undefined) notes.push(describeRollout(parsed.manifest));
  if (previous !== undefined) notes.push(await describeShareWithPrevious(repo, previous, image.chunkIndex, warnings));
  return { ok: true, manifest: parsed.manifest, manifestFile, publicKey: encodePublicKey(publicKeyOf(secretKey)), notes, warnings };
}

/**
 * What publish says of the image's kernel: lines for stdout once published; refusals and warnings go to their lists.
 * With a partial rollout the manifest is format 3 whatever the kernel, and the rollout's note says so.
 */
function describeImageKernel(image: string, found: ImageKernel, rolloutPercent: number | undefined, problems: string[], warnings: string[]): string[] {
  const format = (kernel: boolean): number => manifestFormatFor({ kernel, rolloutPercent });
  switch (found.kind) {
    case "kernel": {
      const { release, build, vmlinuz, initrd } = found.kernel;
      return [
        `Signed the image's kernel ${release}${build === undefined ? "" : ` (${build})`}: ${vmlinuz.path}, ${vmlinuz.size} bytes, ` +
          `and its initrd ${initrd.path}, ${initrd.size} bytes; manifest format ${format(true)} (controllers older than it refuse it and keep booting what they have)`,
        ...found.notes.map((note) => `Note: ${note}`),
      ];
    }
    case "none":
      if (found.moduleReleases.length === 0) {
        warnings.push(
          `WARNING: ${image}: ${found.why} and no /lib/modules at all: it boots on whatever kernel the machine runs; ` +
            "its modules will be missing, so every module the system asks for after the handoff fails to load. Put the kernel, its initrd " +
            "and /lib/modules/RELEASE into the image (docs/issue-14/kernel-convention.md)",
        );
      }
      return [
        `No kernel signed: ${found.why}; manifest format ${format(false)}${format(false) === MANIFEST_FORMAT ? ", as before" : ""}: it boots on the kernel each machine runs` +
          (found.moduleReleases.length === 0 ? "" : `, which must be one it has modules for: ${found.moduleReleases.join(", ")}`),
      ];
    case "unreadable":
      warnings.push(
        `WARNING: Cannot look inside the image ${image}, so its kernel was not checked or signed: ${found.problem}; ` +
          `it is published as manifest format ${format(false)}: machines boot it on the kernel they run, never on one it carries`,
      );
      return [];
    case "refused":
      problems.push(...found.problems);
      return [];
  }
}

/** The signature file of a manifest: for its channel, until the manifest itself expires. */
async function writeManifestSignature(repo: string, channel: string, bytes: Uint8Array, manifest: Manifest, secretKey: Uint8Array): Promise<string> {
  const file = join(repo, signaturePath(channel, sha512Hex(bytes)));
  const text = signContent(bytes, secretKey, { purpose: "manifest", target: channel, expires: manifest.expires });
  await writeAtomically(file, new TextEncoder().encode(text));
  return file;
}

/** What the signatures `controller sign` writes are for; each FILE gets FILE.sig. */
export type SignFor =
  /** command_url= or ssh_keys_url= content at this URL path (one file) */
  | { readonly purpose: "command" | "ssh-keys"; readonly urlPath: string }
  /** ... or at the path of each file under the folder a server serves as its root */
  | { readonly purpose: "command" | "ssh-keys"; readonly servedRoot: string }
  /** a Heddle update's SHA512SUMS; the update's name is its folder's unless `name` is given (one file) */
  | { readonly purpose: "heddle"; readonly version: string; readonly name?: string };

export interface SignOptions {
  readonly secretKeyFile: string;
  readonly files: readonly string[];
  readonly signFor: SignFor;
  readonly expiresInDays: number;
  readonly now: Date;
}

export interface SignedFile {
  readonly file: string;
  readonly signatureFile: string;
  readonly claims: SignatureClaims;
}

/** The most a machine reads of what it checks a signature of, per purpose. */
const CONTENT_CAPS: Record<Exclude<SignaturePurpose, "manifest">, { bytes: number; name: string }> = {
  command: { bytes: COMMAND_SCRIPT_MAX_BYTES, name: "COMMAND_SCRIPT_MAX_BYTES" },
  "ssh-keys": { bytes: SSH_KEYS_MAX_BYTES, name: "SSH_KEYS_MAX_BYTES" },
  heddle: { bytes: SUMS_MAX_BYTES, name: "SUMS_MAX_BYTES" },
};

/** A URL path as a machine's URL parser spells it; "%", "?" and "#" in a file name are taken literally. */
function urlPathOf(path: string): string {
  return new URL(path.replace(/%/g, "%25").replace(/\?/g, "%3F").replace(/#/g, "%23"), "http://localhost/").pathname;
}

/** What FILE's signature names as its target (relative paths from the current folder), or the problem. */
export function signatureTarget(file: string, signFor: SignFor, fileCount: number): { target: string } | { problem: string } {
  if (signFor.purpose === "heddle") {
    if (basename(file) !== HEDDLE_UPDATE_FILES.sums) {
      return { problem: `Cannot sign ${file} for a Heddle update: expected its ${HEDDLE_UPDATE_FILES.sums} file (updates/NAME/${HEDDLE_UPDATE_FILES.sums})` };
    }
    if (signFor.name !== undefined && fileCount > 1) return { problem: `Cannot sign ${fileCount} files with --name ${signFor.name}: the name is one update's` };
    const name = signFor.name ?? basename(dirname(resolve(file)));
    if (!UPDATE_NAME.test(name)) {
      return { problem: `Cannot sign ${file} for update ${JSON.stringify(name)}: expected an update name (letters, digits, ".", "_", "+" or "-", not starting with a punctuation mark)` };
    }
    return { target: name };
  }
  if ("urlPath" in signFor) {
    if (fileCount > 1) return { problem: `Cannot sign ${fileCount} files with --url-path ${signFor.urlPath}: a URL path names one file (give --served-root DIR for several)` };
    if (!signFor.urlPath.startsWith("/") || /[?#\s]/.test(signFor.urlPath)) {
      return { problem: `Cannot sign ${file} for --url-path ${JSON.stringify(signFor.urlPath)}: expected the path of the URL machines fetch, such as /lab/burn-in.sh (no host, query or spaces)` };
    }
    return { target: new URL(signFor.urlPath, "http://localhost/").pathname };
  }
  const inside = relative(resolve(signFor.servedRoot), resolve(file));
  if (inside === "" || inside.startsWith("..") || isAbsolute(inside)) {
    return { problem: `Cannot sign ${file}: it is not inside the served root ${signFor.servedRoot} (--served-root), so its URL path is unknown` };
  }
  return { target: urlPathOf(inside.split(sep).join("/")) };
}

/**
 * Writes FILE.sig beside each file: a signature over its exact bytes for one
 * purpose and target until an expiry (signing.ts), for content a machine
 * fetches or finds and must trust: a command_url script, ssh keys, a Heddle
 * update's SHA512SUMS. An existing FILE.sig is replaced: that is how what was
 * signed in the old format is signed again.
 */
export async function signFiles(options: SignOptions): Promise<{ signed: SignedFile[]; problems: string[]; warnings: string[] }> {
  const { files, signFor, now } = options;
  const problems: string[] = [];
  const warnings: string[] = [];
  const days = options.expiresInDays;
  if (!Number.isInteger(days) || days < 1 || days > MAX_EXPIRES_DAYS) {
    return { signed: [], problems: [`Cannot sign with --expires-days ${days}: expected an integer from 1 to ${MAX_EXPIRES_DAYS}`], warnings };
  }
  const secretKey = await readSecretKey(options.secretKeyFile, problems, warnings);
  if (secretKey === undefined) return { signed: [], problems, warnings };
  const expires = new Date(now.getTime() + days * DAY_MS).toISOString();
  const cap = CONTENT_CAPS[signFor.purpose];
  const signed: SignedFile[] = [];
  for (const file of files) {
    const target = signatureTarget(file, signFor, files.length);
    if ("problem" in target) {
      problems.push(target.problem);
      continue;
    }
    const read = await readRegularFile(file, cap.bytes, cap.name);
    if (read.status !== "read") {
      problems.push(read.status === "missing" ? `Cannot sign ${file}: there is no such file` : `Cannot sign ${read.problem}`);
      continue;
    }
    const claims: SignatureClaims = {
      purpose: signFor.purpose,
      target: target.target,
      ...(signFor.purpose === "heddle" ? { version: signFor.version } : {}),
      expires,
    };
    try {
      await writeAtomically(`${file}.sig`, new TextEncoder().encode(signContent(read.bytes, secretKey, claims)));
    } catch (error) {
      problems.push(`Cannot sign ${file}: ${(error as Error).message}`);
      continue;
    }
    signed.push({ file, signatureFile: `${file}.sig`, claims });
  }
  return { signed, problems, warnings };
}

/**
 * Sign a channel's current manifest again without changing its bytes (so
 * machines that have it keep it): channels/C/signatures/SHA512.sig is
 * replaced, valid until the manifest itself expires.
 */
export async function resignManifest(options: {
  readonly repo: string;
  readonly channel: string;
  readonly secretKeyFile: string;
  readonly now: Date;
}): Promise<{ ok: true; signatureFile: string; manifest: Manifest; warnings: string[] } | { ok: false; problems: string[]; warnings: string[] }> {
  const { repo, channel, now } = options;
  const problems: string[] = [];
  const warnings: string[] = [];
  if (!isChannel(channel)) {
    return { ok: false, problems: [`Cannot sign channel ${JSON.stringify(channel)}: expected a lowercase letter or digit, then up to 63 of them or ".", "_", "-"`], warnings };
  }
  const manifestFile = join(repo, manifestPath(channel));
  const read = await readRegularFile(manifestFile, MANIFEST_MAX_BYTES, "MANIFEST_MAX_BYTES");
  if (read.status !== "read") {
    const why = read.status === "missing" ? `${manifestFile}: Cannot sign channel ${channel}: there is no manifest (nothing was published to it)` : read.problem;
    return { ok: false, problems: [why], warnings };
  }
  const parsed = parseManifest(read.bytes, manifestFile);
  if (!parsed.ok) return { ok: false, problems: parsed.problems.map((problem) => `Cannot sign channel ${channel}: ${problem}`), warnings };
  const { manifest } = parsed;
  if (manifest.channel !== channel) {
    problems.push(`${manifestFile}: Cannot sign it for channel ${channel}: it is the manifest of channel ${JSON.stringify(manifest.channel)}`);
  }
  if (now.getTime() >= Date.parse(manifest.expires)) {
    problems.push(`${manifestFile}: Cannot sign it again: it expired at ${manifest.expires}; publish a new version instead`);
  }
  const secretKey = await readSecretKey(options.secretKeyFile, problems, warnings);
  if (secretKey === undefined || problems.length > 0) return { ok: false, problems, warnings };
  const signatureFile = await writeManifestSignature(repo, channel, read.bytes, manifest, secretKey);
  return { ok: true, signatureFile, manifest, warnings };
}

// --- rollouts ------------------------------------------------------------------

/** Why a --rollout or --percent value cannot be a share of machines, or undefined when it can (undefined: every machine). */
function checkRolloutPercent(percent: number | undefined): string | undefined {
  if (percent === undefined || (Number.isFinite(percent) && percent >= 0 && percent <= 100)) return undefined;
  return "expected a number from 0 to 100 (the share of the channel's machines that take this version)";
}

/** The manifest's rollout section: none at 100 %, so the manifest keeps the format every controller reads. */
function partialRollout(percent: number | undefined): { percent: number } | undefined {
  return percent === undefined || percent >= 100 ? undefined : { percent };
}

/** What publish and rollout say of a manifest's share. */
function describeRollout(manifest: Manifest): string {
  if (manifest.rollout === undefined) return `Version ${manifest.version} goes to every machine of channel ${manifest.channel}: manifest format ${manifest.format}, which every controller since it reads`;
  return (
    `Version ${manifest.version} is rolled out to ${manifest.rollout.percent} % of channel ${manifest.channel}'s machines (each placed by its machine-id): ` +
    `manifest format ${manifest.format}; controllers older than it refuse it and boot what they have until the rollout reaches 100 %`
  );
}

export type RolloutChanged =
  | { readonly ok: true; readonly manifest: Manifest; readonly manifestFile: string; readonly notes: readonly string[]; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly problems: readonly string[]; readonly warnings: readonly string[] };

/**
 * `controller rollout`: the channel's current manifest with a new share of
 * machines, signed again. Only `rollout` and `format` change (format 3 below
 * 100 %, else what the manifest needs without it); the version, times, image
 * and config stay as they are, so machines that took the version are up to
 * date with it, and the signature lasts until the manifest's own expiry.
 * Lowering the share stops the rollout for machines that have not taken it.
 */
export async function setRollout(options: {
  readonly repo: string;
  readonly channel: string;
  readonly percent: number;
  readonly secretKeyFile: string;
  readonly now: Date;
}): Promise<RolloutChanged> {
  const { repo, channel, percent, now } = options;
  const problems: string[] = [];
  const warnings: string[] = [];
  const refused = (): RolloutChanged => ({ ok: false, problems, warnings });
  if (!isChannel(channel)) {
    problems.push(`Cannot change the rollout of channel ${JSON.stringify(channel)}: expected a lowercase letter or digit, then up to 63 of them or ".", "_", "-"`);
  }
  const percentProblem = checkRolloutPercent(percent);
  if (percentProblem !== undefined) problems.push(`Cannot change the rollout to --percent ${percent}: ${percentProblem}`);
  if (problems.length > 0) return refused();
  const manifestFile = join(repo, manifestPath(channel));
  const read = await readRegularFile(manifestFile, MANIFEST_MAX_BYTES, "MANIFEST_MAX_BYTES");
  if (read.status !== "read") {
    problems.push(read.status === "missing" ? `${manifestFile}: Cannot change the rollout of channel ${channel}: there is no manifest (publish a version first)` : read.problem);
    return refused();
  }
  const parsed = parseManifest(read.bytes, manifestFile);
  if (!parsed.ok) {
    problems.push(...parsed.problems.map((problem) => `Cannot change the rollout of channel ${channel}: ${problem}`));
    return refused();
  }
  const current = parsed.manifest;
  if (now.getTime() >= Date.parse(current.expires)) {
    problems.push(`${manifestFile}: Cannot change its rollout: it expired at ${current.expires}; publish a new version (with --rollout) instead`);
  }
  const secretKey = await readSecretKey(options.secretKeyFile, problems, warnings);
  if (secretKey === undefined || problems.length > 0) return refused();

  // the JSON as it is, in its order, keys this controller does not know included; only format and rollout change
  const json = JSON.parse(new TextDecoder().decode(read.bytes)) as Record<string, unknown>;
  const rollout = partialRollout(percent);
  json["format"] = manifestFormatFor({ kernel: current.kernel !== undefined, rolloutPercent: rollout?.percent });
  // a kernel key that the manifest's format dropped must not become a signed kernel under a new format
  if (current.kernel === undefined) delete json["kernel"];
  // the rollout goes where publish puts it, after the version
  const entries = Object.entries(json).flatMap(([key, value]): [string, unknown][] =>
    key === "rollout" ? [] : key === "version" && rollout !== undefined ? [[key, value], ["rollout", rollout]] : [[key, value]],
  );
  const bytes = new TextEncoder().encode(`${JSON.stringify(Object.fromEntries(entries), null, 2)}\n`);
  const reparsed = parseManifest(bytes, manifestFile);
  if (!reparsed.ok) {
    problems.push(...reparsed.problems.map((problem) => `Cannot change the rollout: the new manifest would be refused: ${problem}`));
    return refused();
  }
  await writeManifestSignature(repo, channel, bytes, reparsed.manifest, secretKey);
  await writeAtomically(manifestFile, bytes);
  const was = current.rollout === undefined ? "every machine" : `${current.rollout.percent} %`;
  return { ok: true, manifest: reparsed.manifest, manifestFile, notes: [`It was rolled out to ${was}.`, describeRollout(reparsed.manifest)], warnings };
}

async function readSecretKey(file: string, problems: string[], warnings: string[]): Promise<Uint8Array | undefined> {
  try {
    const { mode } = await stat(file);
    if ((mode & 0o077) !== 0) {
      warnings.push(
        `Warning: the secret key ${file} has mode ${(mode & 0o777).toString(8).padStart(4, "0")}: others on this machine may read it ` +
          `and sign updates every machine would install; run chmod 600 ${file}`,
      );
    }
    return decodeSecretKey(await readFile(file, "utf8"), file);
  } catch (error) {
    // decodeSecretKey's errors already say what is wrong with the file; fs errors carry a code
    const reason = (error as NodeJS.ErrnoException).code === undefined ? (error as Error).message : `Cannot read the secret key: ${(error as Error).message}`;
    problems.push(isMissing(error) ? `Cannot read the secret key: there is no ${file}` : reason);
    return undefined;
  }
}

/** The channel's current manifest, if it has one, checked to be of a version below `version`. */
async function currentManifestBelow(repo: string, channel: string, version: string, problems: string[]): Promise<Manifest | undefined> {
  const file = join(repo, manifestPath(channel));
  const read = await readRegularFile(file, MANIFEST_MAX_BYTES, "MANIFEST_MAX_BYTES");
  if (read.status === "missing") return undefined;
  if (read.status === "refused") {
    problems.push(`Cannot publish version ${version} to channel ${channel}: a downgrade cannot be ruled out: ${read.problem}`);
    return undefined;
  }
  const current = parseManifest(read.bytes, file);
  if (!current.ok) {
    problems.push(
      `Cannot publish version ${version} to channel ${channel}: the channel's current manifest cannot be read, so a downgrade ` +
        `cannot be ruled out (fix or remove ${file}): ${current.problems.join("; ")}`,
    );
    return undefined;
  }
  const currentVersion = current.manifest.version;
  if (compareVersions(version, currentVersion) <= 0) {
    problems.push(
      `Cannot publish version ${version} to channel ${channel}: it is not greater than the channel's current version ${currentVersion} ` +
        "(machines refuse to go down and ignore the same version again; to roll back, publish the old image under a new version)",
    );
  }
  return current.manifest;
}

/**
 * How much of the new image the channel's previous version already holds, from
 * the two chunk indexes: what a delta install from it copies instead of
 * fetching, which an admin sees before any machine pays for the update. A
 * previous index that cannot be read is a warning, never a refusal: the
 * update is published all the same.
 */
async function describeShareWithPrevious(repo: string, previous: Manifest, index: ChunkIndex, warnings: string[]): Promise<string> {
  const version = `version ${previous.version} (the channel's previous version)`;
  const signed = previous.image.index;
  if (signed === undefined) return `Version ${previous.version} (the channel's previous version) was published without a chunk index: how much of this image it holds is not known.`;
  if (/^https?:/i.test(signed.url)) return `How much of this image ${version} holds is not known: its chunk index is on another server (${signed.url}).`;
  const parsed = await readChunkIndexFile(join(repo, signed.url), previous.image.size, signed.sha512);
  if (!parsed.ok) {
    warnings.push(`Cannot say how much of this image ${version} holds: ${parsed.problem}`);
    return `How much of this image ${version} holds is not known (see the warning).`;
  }
  return `Version ${previous.version} (the channel's previous version) ${describeShared(planDelta(index, [parsed.index]), index.imageSize)}.`;
}

async function checkImage(path: string, problems: string[]): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    problems.push(`Cannot publish the image ${path}: ${isMissing(error) ? "there is no such file" : (error as Error).message}`);
    return;
  }
  try {
    const isFile = (await handle.stat()).isFile();
    const magic = isFile ? (await handle.read(Buffer.alloc(SQUASHFS_MAGIC.length), 0, SQUASHFS_MAGIC.length, 0)).buffer : undefined;
    if (magic?.toString("latin1") !== SQUASHFS_MAGIC) {
      problems.push(`Cannot publish the image ${path}: expected a squashfs image (a file that starts with "${SQUASHFS_MAGIC}")`);
    }
  } finally {
    await handle.close();
  }
}

/** Each file read and checked as a config layer, as a machine would read it; the name is the file's own. */
async function readConfigFiles(paths: readonly string[], label: string, problems: string[], warnings: string[]): Promise<ConfigSource[]> {
  const files: ConfigSource[] = [];
  for (const path of paths) {
    const name = basename(path);
    if (!isConfigFileName(name)) {
      problems.push(
        `Cannot publish ${path} in ${label}: its name ${JSON.stringify(name)} is not a config.d file name ` +
          '(a letter or digit, then letters, digits, ".", "_" or "-", ending in .toml; at most 128 characters)',
      );
      continue;
    }
    const same = files.find((file) => file.name === name);
    if (same !== undefined) {
      problems.push(`Cannot publish ${path} in ${label}: ${same.path} has the same name ${name}, and config.d holds one file per name`);
      continue;
    }
    let bytes: Uint8Array;
    try {
      const { size } = await stat(path);
      if (size > CONFIG_FILE_MAX_BYTES) {
        problems.push(`Cannot publish ${path} in ${label}: it is ${size} bytes, expected at most ${CONFIG_FILE_MAX_BYTES}`);
        continue;
      }
      bytes = await readFile(path);
    } catch (error) {
      problems.push(`Cannot publish ${path} in ${label}: ${isMissing(error) ? "there is no such file" : (error as Error).message}`);
      continue;
    }
    const layer = parseConfigLayer("server", path, new TextDecoder().decode(bytes));
    if (layer.status === "rejected") problems.push(...layer.problems.map((problem) => `Cannot publish ${label}: ${problem}`));
    const ignored = layer.status === "parsed" ? machineOnlyKeysIn(layer.values) : [];
    if (ignored.length > 0) {
      warnings.push(
        `${path} in ${label} sets ${ignored.join(", ")}: machines ignore ${ignored.length === 1 ? "this key" : "these keys"} from an update server ` +
          "and keep their own config.d's values (set them in the initramfs's or BOOTEXT's config.d)",
      );
    }
    files.push({ path, name, bytes });
  }
  return files;
}

// --- verify --------------------------------------------------------------------

/** Like `check-config`: every problem, and one line on what was checked. */
export interface RepoCheck {
  readonly problems: readonly string[];
  readonly summary: string;
}

interface CheckedManifest {
  readonly problems: string[];
  readonly manifest?: Manifest;
  /** The trusted key that signed it. */
  readonly key?: string;
}

/**
 * What a controller checks before using a manifest: signature (for `channel`,
 * with the boot's own code), shape, expiry. `channel` undefined: the one the
 * manifest names, for a manifest checked without its repository.
 */
function checkManifest(
  bytes: Uint8Array,
  manifestFile: string,
  signature: string,
  signatureFile: string,
  channel: string | undefined,
  trustedKeys: readonly string[],
  now: Date,
): CheckedManifest {
  const problems: string[] = [];
  const parsed = parseManifest(bytes, manifestFile);
  const target = channel ?? (parsed.ok ? parsed.manifest.channel : undefined);
  const signed = target === undefined ? undefined : verifySignature(bytes, signature, trustedKeys, { purpose: "manifest", target, now });
  if (signed?.ok === false) problems.push(`${signatureFile}: Cannot trust ${manifestFile}: ${signed.problem}`);
  if (!parsed.ok) return { problems: [...problems, ...parsed.problems] };
  const { expires } = parsed.manifest;
  if (now.getTime() >= Date.parse(expires)) {
    problems.push(`${manifestFile}: key expires: it expired at ${expires} and it is now ${now.toISOString()}; controllers refuse it: publish a new version`);
  }
  return signed?.ok === true ? { problems, manifest: parsed.manifest, key: signed.key } : { problems, manifest: parsed.manifest };
}

function describeManifest(checked: CheckedManifest, manifestFile: string, checkedFiles: string): string {
  const { manifest, key } = checked;
  if (checked.problems.length > 0 || manifest === undefined || key === undefined) {
    const count = checked.problems.length;
    return `${manifestFile}: ${count} ${count === 1 ? "problem" : "problems"}`;
  }
  const share = manifest.rollout === undefined ? "" : `, rolled out to ${manifest.rollout.percent} % of machines`;
  return `${manifestFile}: version ${manifest.version} of channel ${manifest.channel}${share}, signed by ${key}, expires ${manifest.expires}; ${checkedFiles}`;
}

/** A manifest and signature given as files, without the repository (the files it names are not checked). */
export async function verifyManifestFiles(options: {
  readonly manifest: string;
  readonly signature: string;
  readonly trustedKeys: readonly string[];
  readonly now: Date;
}): Promise<RepoCheck> {
  const { manifest: manifestFile, signature: signatureFile } = options;
  const bytes = await readRegularFile(manifestFile, MANIFEST_MAX_BYTES, "MANIFEST_MAX_BYTES");
  const signature = await readRegularFile(signatureFile, SIGNATURE_MAX_BYTES, "SIGNATURE_MAX_BYTES");
  if (bytes.status !== "read" || signature.status !== "read") {
    const problems = [[manifestFile, bytes] as const, [signatureFile, signature] as const].flatMap(([file, read]) =>
      read.status === "missing" ? [`${file}: Cannot verify it: there is no such file`] : read.status === "refused" ? [read.problem] : [],
    );
    return { problems, summary: `${manifestFile}: not checked` };
  }
  const signatureText = new TextDecoder().decode(signature.bytes);
  const checked = checkManifest(bytes.bytes, manifestFile, signatureText, signatureFile, undefined, options.trustedKeys, options.now);
  return { problems: checked.problems, summary: describeManifest(checked, manifestFile, "the files it names were not checked (no --repo)") };
}

/** A channel of a repository as a controller would see it, and every file its manifest names. */
export async function verifyRepo(options: {
  readonly repo: string;
  readonly channel: string;
  readonly trustedKeys: readonly string[];
  readonly now: Date;
}): Promise<RepoCheck> {
  const { repo, channel } = options;
  if (!isChannel(channel)) {
    return {
      problems: [`Cannot verify channel ${JSON.stringify(channel)}: expected a lowercase letter or digit, then up to 63 of them or ".", "_", "-"`],
      summary: `${repo}: not checked`,
    };
  }
  const manifestFile = join(repo, manifestPath(channel));
  const manifestRead = await readRegularFile(manifestFile, MANIFEST_MAX_BYTES, "MANIFEST_MAX_BYTES");
  if (manifestRead.status === "missing") {
    return { problems: [`${manifestFile}: Cannot verify channel ${channel}: there is no manifest (nothing was published to it)`], summary: `${manifestFile}: not found` };
  }
  if (manifestRead.status === "refused") return { problems: [manifestRead.problem], summary: `${manifestFile}: 1 problem` };
  const bytes = manifestRead.bytes;
  const signatureFile = join(repo, signaturePath(channel, sha512Hex(bytes)));
  const signature = await readRegularFile(signatureFile, SIGNATURE_MAX_BYTES, "SIGNATURE_MAX_BYTES");
  if (signature.status !== "read") {
    const problem =
      signature.status === "missing" ? `${signatureFile}: Cannot trust ${manifestFile}: its signature is missing (publish writes it before the manifest)` : signature.problem;
    return { problems: [problem], summary: `${manifestFile}: 1 problem` };
  }
  const checked = checkManifest(bytes, manifestFile, new TextDecoder().decode(signature.bytes), signatureFile, channel, options.trustedKeys, options.now);
  const { manifest } = checked;
  if (manifest === undefined) return { problems: checked.problems, summary: describeManifest(checked, manifestFile, "") };
  if (manifest.channel !== channel) {
    // a manifest of another channel copied here: a controller of this channel refuses it
    checked.problems.push(`${manifestFile}: key channel: expected ${JSON.stringify(channel)} (the channel folder it is in), got ${JSON.stringify(manifest.channel)}`);
  }
  const references: { key: string; file: Omit<ManifestFile, "name"> }[] = [
    { key: "image", file: manifest.image },
    ...(manifest.image.index === undefined ? [] : [{ key: "image.index", file: manifest.image.index }]),
    ...manifest.config.fleet.map((file, index) => ({ key: `config.fleet[${index}]`, file })),
    ...manifest.config.machines.flatMap((entry, machine) =>
      entry.files.map((file, index) => ({ key: `config.machines[${machine}].files[${index}]`, file })),
    ),
  ];
  let elsewhere = 0;
  let kernelChecked = false;
  let imageMatches = false;
  const hashes = new Map<string, Promise<string>>();
  for (const { key, file } of references) {
    if (/^https?:/i.test(file.url)) {
      elsewhere++;
      continue;
    }
    const problems = await checkFile(join(repo, file.url), key, file, manifestFile, hashes);
    // the chunks of an image whose whole hash is already wrong would only repeat that
    if (key === "image" && problems.length === 0) problems.push(...(await checkChunks(join(repo, file.url), manifest.image, manifestFile)));
    if (key === "image") imageMatches = problems.length === 0;
    // an index is checked against an image known to be the signed one, else every chunk would be wrong
    if (key === "image.index" && problems.length === 0 && imageMatches) {
      problems.push(...(await checkIndex(join(repo, file.url), join(repo, manifest.image.url), manifest.image.size, manifestFile)));
    }
    // even in an image whose hash is wrong: a kernel that changed too is worth knowing
    if (key === "image" && manifest.kernel !== undefined && (await isRegularFile(join(repo, file.url)))) {
      problems.push(...(await checkSignedKernel(join(repo, file.url), manifest.kernel, manifestFile)));
      kernelChecked = true;
    }
    checked.problems.push(...problems);
  }
  const checkedFiles =
    `checked ${references.length - elsewhere} files` +
    (kernelChecked ? " and the kernel and initrd in the image" : "") +
    (elsewhere === 0 ? "" : `; ${elsewhere} on other servers not checked`);
  return { problems: checked.problems, summary: describeManifest(checked, manifestFile, checkedFiles) };
}

async function checkFile(
  path: string,
  key: string,
  file: Omit<ManifestFile, "name">,
  manifestFile: string,
  hashes: Map<string, Promise<string>>,
): Promise<string[]> {
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) return [`${path}: expected a regular file, named by ${key}.url in ${manifestFile}`];
    size = info.size;
  } catch (error) {
    if (!isMissing(error)) throw error;
    return [`${path}: missing, named by ${key}.url in ${manifestFile}`];
  }
  if (size !== file.size) return [`${path}: expected ${file.size} bytes (${key}.size in ${manifestFile}), got ${size}`];
  // a file named by several entries is read once
  const hash = hashes.get(path) ?? hashFile(path, size);
  hashes.set(path, hash);
  const actual = await hash;
  return actual === file.sha512 ? [] : [`${path}: expected sha512 ${file.sha512} (${key}.sha512 in ${manifestFile}), got ${actual}`];
}

/**
 * A chunk index file of the repository, read under its cap and parsed for an
 * image of `imageSize` bytes; with `sha512`, only when it has that hash.
 */
async function readChunkIndexFile(path: string, imageSize: number, sha512?: string): Promise<ParsedChunkIndex> {
  const read = await readRegularFile(path, chunkIndexMaxBytes(imageSize), "the largest index of its image");
  if (read.status === "missing") return { ok: false, problem: `there is no ${path}` };
  if (read.status === "refused") return { ok: false, problem: read.problem };
  if (sha512 !== undefined && sha512Hex(read.bytes) !== sha512) return { ok: false, problem: `${path} does not have the sha512 its manifest signs` };
  return parseChunkIndex(read.bytes, imageSize, path);
}

/** The image's chunk index (its size and sha512 checked already): a file a controller reads, whose chunks have the sha256s it lists in the image. */
async function checkIndex(indexPath: string, imagePath: string, imageSize: number, manifestFile: string): Promise<string[]> {
  const parsed = await readChunkIndexFile(indexPath, imageSize);
  if (!parsed.ok) return [parsed.problem];
  const wrong = await chunksNotMatching(parsed.index, createReadStream(imagePath, { highWaterMark: 1 << 20 }));
  if (wrong.length === 0) return [];
  const offsets = chunkOffsets(parsed.index);
  const shown = wrong.slice(0, MAX_CHUNKS_SHOWN).map((chunk) => {
    const offset = offsets[chunk] as number;
    return `chunk ${chunk} (bytes ${offset}–${offset + (parsed.index.lengths[chunk] as number) - 1})`;
  });
  const more = wrong.length > MAX_CHUNKS_SHOWN ? ` and ${wrong.length - MAX_CHUNKS_SHOWN} more` : "";
  return [`${imagePath}: ${wrong.length} of its chunks do not have the sha256 ${indexPath} lists (image.index in ${manifestFile}): ${shown.join(", ")}${more}`];
}

/**
 * The image's chunks, when the manifest signs them, by every hash list it
 * signs: a controller refuses the image at the first bad chunk of the list its
 * CPU checks (chunks.ts), and machines differ in which list that is.
 */
async function checkChunks(path: string, image: SignedImage, manifestFile: string): Promise<string[]> {
  const chunks = image.chunks;
  if (chunks === undefined) return [];
  const algorithms = CHUNK_HASHES.filter((algorithm) => chunks[algorithm] !== undefined);
  const ranges = chunkRanges(image.size, chunks.size);
  const actual = await Promise.all(ranges.map((range) => hashPool().hashesOfRange(path, range.offset, range.length, algorithms)));
  return ranges.flatMap((range, index) =>
    algorithms.flatMap((algorithm, which) => {
      const expected = chunks[algorithm]?.[index];
      const got = actual[index]?.[which];
      if (expected === got) return [];
      return [`${path}: expected ${algorithm} ${expected} for bytes ${range.offset}–${range.offset + range.length - 1} (image.chunks.${algorithm}[${index}] in ${manifestFile}), got ${got}`];
    }),
  );
}
