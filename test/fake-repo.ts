// An update repository on the fake's network: signed manifests, images the
// fake can mount, config files; and slot records as an install leaves them.

import { createHash } from "node:crypto";
import { type Config, DEFAULT_CONFIG } from "../controller/config/schema.ts";
import { formatHealth, type HealthRecord } from "../controller/plans/slot-health.ts";
import { encodeChunkIndex } from "../controller/update/chunk-index.ts";
import { chunkRanges, type SignedChunks } from "../controller/update/chunks.ts";
import type { ChunkSizes } from "../controller/update/content-chunker.ts";
import { ImageIndexer } from "../controller/update/image-index.ts";
import { MANIFEST_FORMAT, MANIFEST_FORMAT_KERNEL, MANIFEST_FORMAT_ROLLOUT, type Manifest, manifestPath, signaturePath } from "../controller/update/manifest.ts";
import { encodePublicKey, generateKeyPair, type KeyPair, sha512Hex, signContent } from "../controller/update/signing.ts";
import { systemImage } from "./fake-machine.ts";
import { FakeSystem, type Tree, bytesToText } from "./fake-system.ts";

export const SERVER = "http://10.0.2.100:8080/";
export const MIRROR = "http://10.0.2.101:8080/";

export const KEYS: KeyPair = generateKeyPair();
export const OTHER_KEYS: KeyPair = generateKeyPair();
export const PUBLIC_KEY = encodePublicKey(KEYS.publicKey);

/** The built-in config with SERVER as the update server and KEYS trusted, plus `overrides` of [update]. */
export function updateConfig(overrides: Partial<Config["update"]> = {}): Config {
  return { ...DEFAULT_CONFIG, update: { ...DEFAULT_CONFIG.update, servers: [SERVER], trusted_keys: [PUBLIC_KEY], ...overrides } };
}

/** The fake's clock starts at 2026-01-01: these make a manifest current or expired there. */
export const CREATED = "2025-12-01T00:00:00.000Z";
export const EXPIRES = "2026-06-01T00:00:00.000Z";

export interface Release {
  readonly version: string;
  /** the channel the manifest names; it is always served where channel "stable" looks, to test mix and match */
  readonly channel?: string;
  readonly expires?: string;
  /** name → TOML text, for every machine */
  readonly fleetConfig?: Readonly<Record<string, string>>;
  readonly machineConfig?: readonly { readonly match: { mac: string } | { hostname: string }; readonly files: Readonly<Record<string, string>> }[];
  readonly signWith?: KeyPair;
  /** image size in bytes; the default is a few kB */
  readonly imageSize?: number;
  /** the image's bytes, instead of ones made from the version: images that share chunks */
  readonly image?: Uint8Array;
  /** publish a chunk index of the image (cut at TEST_CHUNK_SIZES), as publish does; installedSlot keeps it in the record */
  readonly index?: boolean;
  /** sign a sha512 and a sha256 per chunk of this many bytes besides the whole image's, as publish does; none when absent, as manifests had before chunks */
  readonly chunkSize?: number;
  /** sign only the chunks' sha512s, as publish did before the sha256s */
  readonly chunkSha512Only?: boolean;
  /** the image carries this kernel (manifest format 2): /boot/vmlinuz-RELEASE, /boot/initrd.img-RELEASE, /lib/modules/RELEASE */
  readonly kernel?: ImageKernel;
  /** roll the version out to this share of machines (manifest format 3) */
  readonly rolloutPercent?: number;
}

export interface ImageKernel {
  readonly release: string;
  readonly build?: string;
  /** the kernel file's content in the image, when it is not the one the manifest signs (a tampered image) */
  readonly tamperedVmlinuz?: string;
}

/** The kernel, initrd and modules of an image carrying `kernel`, and what its manifest signs about them. */
export function imageKernelFiles(kernel: ImageKernel): { tree: Tree; signed: NonNullable<Manifest["kernel"]> } {
  const vmlinuz = `bzImage ${kernel.release} ${kernel.build ?? ""}`;
  const initrd = `initrd for ${kernel.release}, with the controller`;
  const file = (path: string, text: string) => ({ path, size: new TextEncoder().encode(text).length, sha512: sha512Hex(new TextEncoder().encode(text)) });
  return {
    tree: {
      [`boot/vmlinuz-${kernel.release}`]: kernel.tamperedVmlinuz ?? vmlinuz,
      [`boot/initrd.img-${kernel.release}`]: initrd,
      [`lib/modules/${kernel.release}/modules.dep`]: "",
    },
    signed: {
      release: kernel.release,
      ...(kernel.build === undefined ? {} : { build: kernel.build }),
      vmlinuz: file(`/boot/vmlinuz-${kernel.release}`, vmlinuz),
      initrd: file(`/boot/initrd.img-${kernel.release}`, initrd),
    },
  };
}

export interface Published {
  readonly manifestBytes: Uint8Array;
  readonly signature: string;
  readonly imageBytes: Uint8Array;
  readonly imageUrl: string;
  /** the chunk index file and its URL, when the release has one */
  readonly indexBytes?: Uint8Array;
  readonly indexUrl?: string;
}

/** Chunks as small as an index allows, so images of a few hundred kB have a dozen. */
export const TEST_CHUNK_SIZES: ChunkSizes = { min: 4096, avg: 16384, max: 65536 };

function indexOf(image: Uint8Array): Uint8Array {
  const indexer = new ImageIndexer(TEST_CHUNK_SIZES);
  indexer.push(image);
  return encodeChunkIndex(indexer.finish());
}

/** Bytes that stand for an image: unique per version, and mountable in the fake as a system image saying `system-VERSION`. */
export function imageBytes(version: string, size = 5000): Uint8Array {
  const seed = new TextEncoder().encode(`image ${version};`);
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (seed[i % seed.length] ?? 0) ^ (i & 0xff);
  return bytes;
}

export function imageTree(version: string): Tree {
  return systemImage(`system-${version}`);
}

function configEntry(server: string, name: string, text: string, fake: FakeSystem) {
  const content = new TextEncoder().encode(text);
  const hash = sha512Hex(content);
  const url = `config/${hash}.toml`;
  fake.http.set(`${server}${url}`, { body: content });
  return { name, url, size: content.length, sha512: hash };
}

function chunksOf(image: Uint8Array, chunkSize: number, sha512Only: boolean): SignedChunks {
  const chunks = chunkRanges(image.length, chunkSize).map(({ offset, length }) => image.subarray(offset, offset + length));
  const sha512 = chunks.map(sha512Hex);
  return sha512Only ? { size: chunkSize, sha512 } : { size: chunkSize, sha512, sha256: chunks.map((chunk) => createHash("sha256").update(chunk).digest("hex")) };
}

/** Signs a release and puts it on the fake's network at `server`. */
export function publish(fake: FakeSystem, release: Release, server = SERVER): Published {
  const image = release.image ?? imageBytes(release.version, release.imageSize);
  const imageHash = sha512Hex(image);
  const imageUrl = `images/${imageHash}.squashfs`;
  fake.http.set(`${server}${imageUrl}`, { body: image });
  const indexBytes = release.index === true ? indexOf(image) : undefined;
  const index = indexBytes === undefined ? undefined : { bytes: indexBytes, url: `images/${sha512Hex(indexBytes)}.index`, size: indexBytes.length, sha512: sha512Hex(indexBytes) };
  if (index !== undefined) fake.http.set(`${server}${index.url}`, { body: index.bytes });
  const kernel = release.kernel === undefined ? undefined : imageKernelFiles(release.kernel);
  FakeSystem.registerImage(image, { ...imageTree(release.version), ...kernel?.tree });
  const channel = release.channel ?? "stable";
  const manifest = {
    format: release.rolloutPercent !== undefined ? MANIFEST_FORMAT_ROLLOUT : kernel === undefined ? MANIFEST_FORMAT : MANIFEST_FORMAT_KERNEL,
    channel,
    version: release.version,
    ...(release.rolloutPercent === undefined ? {} : { rollout: { percent: release.rolloutPercent } }),
    created: CREATED,
    expires: release.expires ?? EXPIRES,
    image: {
      url: imageUrl,
      size: image.length,
      sha512: imageHash,
      format: "squashfs",
      ...(release.chunkSize === undefined ? {} : { chunks: chunksOf(image, release.chunkSize, release.chunkSha512Only === true) }),
      ...(index === undefined ? {} : { index: { url: index.url, size: index.size, sha512: index.sha512 } }),
    },
    config: {
      fleet: Object.entries(release.fleetConfig ?? {}).map(([name, text]) => configEntry(server, name, text, fake)),
      machines: (release.machineConfig ?? []).map(({ match, files }) => ({
        ...match,
        files: Object.entries(files).map(([name, text]) => configEntry(server, name, text, fake)),
      })),
    },
    ...(kernel === undefined ? {} : { kernel: kernel.signed }),
  };
  const manifestBytes = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
  const signature = signContent(manifestBytes, (release.signWith ?? KEYS).secretKey, { purpose: "manifest", target: manifest.channel, expires: manifest.expires });
  fake.http.set(`${server}${manifestPath("stable")}`, { body: manifestBytes });
  fake.http.set(`${server}${signaturePath("stable", sha512Hex(manifestBytes))}`, { body: new TextEncoder().encode(signature) });
  return {
    manifestBytes,
    signature,
    imageBytes: image,
    imageUrl: `${server}${imageUrl}`,
    ...(index === undefined ? {} : { indexBytes: index.bytes, indexUrl: `${server}${index.url}` }),
  };
}

/**
 * A slot's files after an install of `release`: image, manifest, signature,
 * config, and a health record of a system that came up healthy (unless told).
 */
export function installedSlot(release: Release, health: HealthRecord | undefined = { attempts: 0, markedGood: true, cleanShutdown: true }): Tree {
  const published = publish(new FakeSystem(), release, "http://scratch.invalid/");
  const tree: Record<string, Tree[string]> = {
    "system.squashfs": { text: bytesToText(published.imageBytes), mode: 0o644 },
    "controller/manifest.json": bytesToText(published.manifestBytes),
    "controller/manifest.sig": published.signature,
    ...(published.indexBytes === undefined ? {} : { "controller/image.index": bytesToText(published.indexBytes) }),
    ...(health === undefined ? {} : { "controller/health.json": formatHealth(health) }),
  };
  for (const [name, text] of Object.entries(release.fleetConfig ?? {})) tree[`controller/config.d/${name}`] = text;
  return tree;
}
