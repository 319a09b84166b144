// An update repository on a workstation: make a signing key, publish a signed
// update into a folder any HTTP server can serve, and check what is there the
// way a controller would. Never runs in the initramfs. Every file lands by
// temp name, fsync and rename; manifest.json comes last, so whatever a client
// sees at any moment names files (and a signature) that are already complete.

import { createHash, randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { type FileHandle, lstat, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { chunkRanges, end, publishChunkSize, type SignedImage, verificationPieces } from "./chunks.ts";
import { parseConfigLayer } from "./config.ts";
import {
  CONFIG_FILE_MAX_BYTES,
  compareVersions,
  isChannel,
  isConfigFileName,
  isHostname,
  isMac,
  isVersion,
  MANIFEST_FORMAT,
  type Manifest,
  type ManifestFile,
  manifestPath,
  parseManifest,
  signaturePath,
} from "./manifest.ts";
import {
  decodeSecretKey,
  encodePublicKey,
  encodeSecretKey,
  generateKeyPair,
  publicKeyOf,
  sha512Hex,
  signBytes,
  verifySignature,
} from "./signing.ts";
import { sha512Pool } from "./sha512-pool.ts";

const DAY_MS = 24 * 60 * 60 * 1000;
/** A manifest that lives for years would make a frozen or replayed server unnoticeable for as long. */
const MAX_EXPIRES_DAYS = 3650;
/** "hsqs", little-endian: what every squashfs image starts with. */
const SQUASHFS_MAGIC = "hsqs";

// --- files ---------------------------------------------------------------------

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === "ENOENT";
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

/**
 * Store the image under its sha512 in REPO/images, with the sha512 of every
 * chunk (chunks.ts) for controllers to verify it in pieces on every CPU;
 * the whole hash and the chunks' are computed at once.
 */
async function storeImage(repo: string, imagePath: string): Promise<Omit<ManifestFile, "name"> & { chunks: { size: number; sha512: string[] } }> {
  const folder = join(repo, "images");
  const temp = await writeTemp(folder, createReadStream(imagePath, { highWaterMark: 1 << 20 }));
  const { size } = await stat(temp);
  const chunkSize = publishChunkSize(size);
  const pool = sha512Pool();
  const [sha512, ...chunkHashes] = await Promise.all([
    pool.hashRange(temp, 0, size),
    ...chunkRanges(size, chunkSize).map((chunk) => pool.hashRange(temp, chunk.offset, chunk.length)),
  ]);
  const url = `images/${sha512}.squashfs`;
  await rename(temp, join(repo, url));
  await syncFolder(folder);
  return { url, size, sha512: sha512 as string, chunks: { size: chunkSize, sha512: chunkHashes } };
}

function hashFile(path: string, size: number): Promise<string> {
  return sha512Pool().hashRange(path, 0, size);
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

/** Write PREFIX.secret (mode 0600) and PREFIX.pub; returns the public key text for update.trusted_keys. */
export async function keygen(outPrefix: string): Promise<string> {
  const secretFile = `${outPrefix}.secret`;
  const publicFile = `${outPrefix}.pub`;
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
  if (problems.length > 0) return refused();

  const secretKey = await readSecretKey(options.secretKeyFile, problems, warnings);
  await checkVersionGoesUp(repo, channel, version, problems);
  await checkImage(options.image, problems);
  const fleet = await readConfigFiles(options.fleetConfig, "the fleet config", problems);
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
    machines.push({ selector, files: await readConfigFiles(entry.files, label, problems) });
  }
  if (secretKey === undefined || problems.length > 0) return refused();

  const image = await storeImage(repo, options.image);
  const store = async (file: ConfigSource): Promise<ManifestFile> => ({
    name: file.name,
    ...(await storeContentAddressed(repo, "config", "toml", [file.bytes])),
  });
  const manifest = {
    format: MANIFEST_FORMAT,
    channel,
    version,
    created: now.toISOString(),
    expires: new Date(now.getTime() + days * DAY_MS).toISOString(),
    image: { url: image.url, size: image.size, sha512: image.sha512, format: "squashfs", chunks: image.chunks },
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
  await writeAtomically(join(repo, signaturePath(channel, sha512Hex(bytes))), new TextEncoder().encode(signBytes(bytes, secretKey)));
  await writeAtomically(manifestFile, bytes);
  return { ok: true, manifest: parsed.manifest, manifestFile, publicKey: encodePublicKey(publicKeyOf(secretKey)), warnings };
}

/**
 * Writes FILE.sig beside each file: a detached signature over its exact bytes,
 * in the manifests' format, for content a machine fetches and must trust (a
 * command_url script, ssh keys, a Heddle update's SHA512SUMS).
 */
export async function signFiles(secretKeyFile: string, files: readonly string[]): Promise<{ signed: string[]; problems: string[]; warnings: string[] }> {
  const problems: string[] = [];
  const warnings: string[] = [];
  const secretKey = await readSecretKey(secretKeyFile, problems, warnings);
  if (secretKey === undefined) return { signed: [], problems, warnings };
  const signed: string[] = [];
  for (const file of files) {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (error) {
      problems.push(`Cannot sign ${file}: ${(error as Error).message}`);
      continue;
    }
    await writeAtomically(`${file}.sig`, new TextEncoder().encode(signBytes(bytes, secretKey)));
    signed.push(`${file}.sig`);
  }
  return { signed, problems, warnings };
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

async function checkVersionGoesUp(repo: string, channel: string, version: string, problems: string[]): Promise<void> {
  const file = join(repo, manifestPath(channel));
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if (isMissing(error)) return;
    throw error;
  }
  const current = parseManifest(bytes, file);
  if (!current.ok) {
    problems.push(
      `Cannot publish version ${version} to channel ${channel}: the channel's current manifest cannot be read, so a downgrade ` +
        `cannot be ruled out (fix or remove ${file}): ${current.problems.join("; ")}`,
    );
    return;
  }
  const currentVersion = current.manifest.version;
  if (compareVersions(version, currentVersion) <= 0) {
    problems.push(
      `Cannot publish version ${version} to channel ${channel}: it is not greater than the channel's current version ${currentVersion} ` +
        "(machines refuse to go down and ignore the same version again; to roll back, publish the old image under a new version)",
    );
  }
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
async function readConfigFiles(paths: readonly string[], label: string, problems: string[]): Promise<ConfigSource[]> {
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

/** What a controller checks before using a manifest: signature, shape, expiry. */
function checkManifest(bytes: Uint8Array, manifestFile: string, signature: string, signatureFile: string, trustedKeys: readonly string[], now: Date): CheckedManifest {
  const problems: string[] = [];
  const signed = verifySignature(bytes, signature, trustedKeys);
  if (!signed.ok) problems.push(`${signatureFile}: Cannot trust ${manifestFile}: ${signed.problem}`);
  const parsed = parseManifest(bytes, manifestFile);
  if (!parsed.ok) return { problems: [...problems, ...parsed.problems] };
  const { expires } = parsed.manifest;
  if (now.getTime() >= Date.parse(expires)) {
    problems.push(`${manifestFile}: key expires: it expired at ${expires} and it is now ${now.toISOString()}; controllers refuse it: publish a new version`);
  }
  return signed.ok ? { problems, manifest: parsed.manifest, key: signed.key } : { problems, manifest: parsed.manifest };
}

function describeManifest(checked: CheckedManifest, manifestFile: string, checkedFiles: string): string {
  const { manifest, key } = checked;
  if (checked.problems.length > 0 || manifest === undefined || key === undefined) {
    const count = checked.problems.length;
    return `${manifestFile}: ${count} ${count === 1 ? "problem" : "problems"}`;
  }
  return `${manifestFile}: version ${manifest.version} of channel ${manifest.channel}, signed by ${key}, expires ${manifest.expires}; ${checkedFiles}`;
}

async function readIfThere(path: string): Promise<Uint8Array | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** A manifest and signature given as files, without the repository (the files it names are not checked). */
export async function verifyManifestFiles(options: {
  readonly manifest: string;
  readonly signature: string;
  readonly trustedKeys: readonly string[];
  readonly now: Date;
}): Promise<RepoCheck> {
  const { manifest: manifestFile, signature: signatureFile } = options;
  const bytes = await readIfThere(manifestFile);
  const signature = await readIfThere(signatureFile);
  if (bytes === undefined || signature === undefined) {
    const missing = bytes === undefined ? manifestFile : signatureFile;
    return { problems: [`${missing}: Cannot verify it: there is no such file`], summary: `${manifestFile}: not checked` };
  }
  const checked = checkManifest(bytes, manifestFile, new TextDecoder().decode(signature), signatureFile, options.trustedKeys, options.now);
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
  const bytes = await readIfThere(manifestFile);
  if (bytes === undefined) {
    return { problems: [`${manifestFile}: Cannot verify channel ${channel}: there is no manifest (nothing was published to it)`], summary: `${manifestFile}: not found` };
  }
  const signatureFile = join(repo, signaturePath(channel, sha512Hex(bytes)));
  const signature = await readIfThere(signatureFile);
  if (signature === undefined) {
    return {
      problems: [`${signatureFile}: Cannot trust ${manifestFile}: its signature is missing (publish writes it before the manifest)`],
      summary: `${manifestFile}: 1 problem`,
    };
  }
  const checked = checkManifest(bytes, manifestFile, new TextDecoder().decode(signature), signatureFile, options.trustedKeys, options.now);
  const { manifest } = checked;
  if (manifest === undefined) return { problems: checked.problems, summary: describeManifest(checked, manifestFile, "") };
  if (manifest.channel !== channel) {
    // a manifest of another channel copied here: a controller of this channel refuses it
    checked.problems.push(`${manifestFile}: key channel: expected ${JSON.stringify(channel)} (the channel folder it is in), got ${JSON.stringify(manifest.channel)}`);
  }
  const references: { key: string; file: Omit<ManifestFile, "name"> }[] = [
    { key: "image", file: manifest.image },
    ...manifest.config.fleet.map((file, index) => ({ key: `config.fleet[${index}]`, file })),
    ...manifest.config.machines.flatMap((entry, machine) =>
      entry.files.map((file, index) => ({ key: `config.machines[${machine}].files[${index}]`, file })),
    ),
  ];
  let elsewhere = 0;
  const hashes = new Map<string, Promise<string>>();
  for (const { key, file } of references) {
    if (/^https?:/i.test(file.url)) {
      elsewhere++;
      continue;
    }
    const problems = await checkFile(join(repo, file.url), key, file, manifestFile, hashes);
    // the chunks of an image whose whole hash is already wrong would only repeat that
    if (key === "image" && problems.length === 0) problems.push(...(await checkChunks(join(repo, file.url), manifest.image, manifestFile)));
    checked.problems.push(...problems);
  }
  const checkedFiles = `checked ${references.length - elsewhere} files` + (elsewhere === 0 ? "" : `; ${elsewhere} on other servers not checked`);
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

/** The image's chunks, when the manifest signs them: a controller that reads them refuses the image at the first bad one. */
async function checkChunks(path: string, image: SignedImage, manifestFile: string): Promise<string[]> {
  if (image.chunks === undefined) return [];
  const pieces = verificationPieces(image);
  const hashes = await Promise.all(pieces.map((piece) => sha512Pool().hashRange(path, piece.offset, piece.length)));
  return pieces.flatMap((piece, index) =>
    hashes[index] === piece.sha512 ? [] : [`${path}: expected sha512 ${piece.sha512} for bytes ${piece.offset}–${end(piece) - 1} (image.chunks.sha512[${index}] in ${manifestFile}), got ${hashes[index]}`],
  );
}
