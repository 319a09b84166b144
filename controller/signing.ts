// ed25519 keys and manifest signatures as the text that travels in config.d,
// key files and the repository: base64 of tweetnacl's raw bytes. Decoding is
// strict (canonical base64 of exactly the right length), so one key or
// signature has one spelling and a damaged one is told, not half-read.

import { createHash } from "node:crypto";
import nacl from "tweetnacl";
import { SIGNATURE_MAX_BYTES } from "./manifest.ts";

const PUBLIC_KEY_BYTES = nacl.sign.publicKeyLength;
const SECRET_KEY_BYTES = nacl.sign.secretKeyLength;
const SIGNATURE_BYTES = nacl.sign.signatureLength;
const SEED_BYTES = nacl.sign.seedLength;

export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

export function generateKeyPair(): KeyPair {
  return nacl.sign.keyPair();
}

/** The bytes of canonical base64 text, or undefined: Buffer.from(text, "base64") would skip bad characters silently. */
function decodeBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  // refuses non-zero padding bits, the one way left to spell the same bytes twice
  return bytes.toString("base64") === text ? new Uint8Array(bytes) : undefined;
}

function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

function base64Length(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

/** A short, safe rendering of text a person gave, for an error message. */
function describeText(text: string): string {
  const json = JSON.stringify(text);
  return json.length > 60 ? `${json.slice(0, 57)}..." (${text.length} characters)` : json;
}

/** The public key as config.d's update.trusted_keys and `verify --key` take it. */
export function encodePublicKey(publicKey: Uint8Array): string {
  if (publicKey.length !== PUBLIC_KEY_BYTES) {
    throw new Error(`Cannot encode a public key: it is ${publicKey.length} bytes, expected ${PUBLIC_KEY_BYTES}`);
  }
  return encodeBase64(publicKey);
}

/** Surrounding whitespace is tolerated: keys get pasted. */
export function decodePublicKey(text: string): Uint8Array {
  const bytes = decodeBase64(text.trim());
  if (bytes === undefined || bytes.length !== PUBLIC_KEY_BYTES) {
    throw new Error(
      `Cannot read the public key ${describeText(text)}: expected base64 of ${PUBLIC_KEY_BYTES} bytes (${base64Length(PUBLIC_KEY_BYTES)} characters)`,
    );
  }
  return bytes;
}

/** The secret key file's content. */
export function encodeSecretKey(secretKey: Uint8Array): string {
  if (secretKey.length !== SECRET_KEY_BYTES) {
    throw new Error(`Cannot encode a secret key: it is ${secretKey.length} bytes, expected ${SECRET_KEY_BYTES}`);
  }
  return `${encodeBase64(secretKey)}\n`;
}

/** `source` names the file; the key itself never goes into a message. */
export function decodeSecretKey(text: string, source: string): Uint8Array {
  const bytes = decodeBase64(text.trim());
  if (bytes === undefined || bytes.length !== SECRET_KEY_BYTES) {
    throw new Error(
      `Cannot read the secret key in ${source}: expected base64 of ${SECRET_KEY_BYTES} bytes (${base64Length(SECRET_KEY_BYTES)} characters), as \`controller keygen\` writes`,
    );
  }
  // tweetnacl's secret key is the seed then the public key; a damaged half would sign with a key nobody trusts
  const derived = nacl.sign.keyPair.fromSeed(bytes.slice(0, SEED_BYTES)).publicKey;
  if (!nacl.verify(derived, bytes.slice(SEED_BYTES))) {
    throw new Error(`Cannot read the secret key in ${source}: its public half does not belong to its seed (the file is damaged)`);
  }
  return bytes;
}

export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  return nacl.sign.keyPair.fromSecretKey(secretKey).publicKey;
}

/** A detached signature file's content for these exact bytes (a manifest, a script, a list of checksums). */
export function signBytes(bytes: Uint8Array, secretKey: Uint8Array): string {
  return `${encodeBase64(nacl.sign.detached(bytes, secretKey))}\n`;
}

export type SignatureCheck = { ok: true; key: string } | { ok: false; problem: string };

/**
 * Whether one of the trusted keys signed these exact bytes; `key` is the
 * trusted key text that did. A malformed trusted key is skipped but told when
 * no other key verifies, so one typo in config.d does not stop every update.
 */
export function verifySignature(bytes: Uint8Array, signatureText: string, trustedKeys: readonly string[]): SignatureCheck {
  if (trustedKeys.length === 0) return { ok: false, problem: "there are no trusted keys to check the signature with" };
  const size = Buffer.byteLength(signatureText);
  if (size > SIGNATURE_MAX_BYTES) {
    return { ok: false, problem: `the signature is ${size} bytes, expected at most ${SIGNATURE_MAX_BYTES}` };
  }
  const signature = decodeBase64(signatureText.trim());
  if (signature === undefined || signature.length !== SIGNATURE_BYTES) {
    return { ok: false, problem: `the signature is not base64 of ${SIGNATURE_BYTES} bytes` };
  }
  const malformed: string[] = [];
  for (const [index, key] of trustedKeys.entries()) {
    let publicKey: Uint8Array;
    try {
      publicKey = decodePublicKey(key);
    } catch {
      malformed.push(`trusted key ${index + 1} ${describeText(key)} is not base64 of ${PUBLIC_KEY_BYTES} bytes`);
      continue;
    }
    if (nacl.sign.detached.verify(bytes, signature, publicKey)) return { ok: true, key };
  }
  const count = trustedKeys.length === 1 ? "the trusted key" : `any of the ${trustedKeys.length} trusted keys`;
  const also = malformed.length === 0 ? "" : ` (${malformed.join("; ")})`;
  return { ok: false, problem: `the signature is not valid for ${count}${also}` };
}

/** Lowercase hex, as the repository names content-addressed files and manifests. */
export function sha512Hex(bytes: Uint8Array): string {
  return createHash("sha512").update(bytes).digest("hex");
}
