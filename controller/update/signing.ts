// ed25519 keys and signatures as the text that travels in config.d, key files,
// the repository and beside fetched content. Decoding is strict (canonical
// base64 of exactly the right length, a public key that is a point of the
// prime-order subgroup, a signature whose S is below the group order), so one
// key or signature has one spelling and a damaged or forged one is told, not
// half-read. docs/updates.md ("Signatures") tells the format and the threats.

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

// ---- public keys as points (RFC 8032 §5.1.3) ------------------------------------------
// tweetnacl checks neither that a key is a point of the prime-order subgroup nor
// that S < L: a small-order key (32 zero bytes, the identity) makes the forged
// signature R = identity, S = 0 valid for any bytes, and S + L is a second
// spelling of every honest signature. Both are refused here, before tweetnacl.

const P = 2n ** 255n - 19n;
/** The order of the prime-order subgroup that honest keys lie in. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function mod(value: bigint): bigint {
  const rest = value % P;
  return rest < 0n ? rest + P : rest;
}

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let square = mod(base);
  for (let rest = exponent; rest > 0n; rest >>= 1n) {
    if ((rest & 1n) === 1n) result = mod(result * square);
    square = mod(square * square);
  }
  return result;
}

const D = mod(-121665n * power(121666n, P - 2n));
const SQRT_MINUS_ONE = power(2n, (P - 1n) / 4n);

/** Extended homogeneous coordinates (RFC 8032 §5.1.4): x = X/Z, y = Y/Z, x·y = T/Z. */
interface Point {
  readonly x: bigint;
  readonly y: bigint;
  readonly z: bigint;
  readonly t: bigint;
}

const IDENTITY: Point = { x: 0n, y: 1n, z: 1n, t: 0n };

function add(a: Point, b: Point): Point {
  const e1 = mod((a.y - a.x) * (b.y - b.x));
  const e2 = mod((a.y + a.x) * (b.y + b.x));
  const c = mod(a.t * 2n * D * b.t);
  const d = mod(a.z * 2n * b.z);
  const e = e2 - e1;
  const f = d - c;
  const g = d + c;
  const h = e2 + e1;
  return { x: mod(e * f), y: mod(g * h), z: mod(f * g), t: mod(e * h) };
}

function multiply(point: Point, scalar: bigint): Point {
  let result = IDENTITY;
  let addend = point;
  for (let rest = scalar; rest > 0n; rest >>= 1n) {
    if ((rest & 1n) === 1n) result = add(result, addend);
    addend = add(addend, addend);
  }
  return result;
}

function isIdentity(point: Point): boolean {
  return mod(point.x) === 0n && mod(point.y - point.z) === 0n;
}

function littleEndian(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let index = bytes.length - 1; index >= 0; index--) value = (value << 8n) | BigInt(bytes[index] ?? 0);
  return value;
}

/** Why 32 bytes are not a public key to trust, or undefined for a point of the prime-order subgroup. */
function weaknessOf(bytes: Uint8Array): string | undefined {
  const encoded = littleEndian(bytes);
  const y = encoded & ((1n << 255n) - 1n);
  const sign = encoded >> 255n;
  if (y >= P) return "it is not canonical: its y coordinate is not below 2^255 - 19, so another spelling means the same point";
  // x² = (y² - 1) / (d·y² + 1); the square root as RFC 8032 §5.1.3 takes it
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = mod(u * power(v, 3n) * power(u * power(v, 7n), (P - 5n) / 8n));
  if (mod(v * x * x - u) !== 0n) {
    if (mod(v * x * x + u) !== 0n) return "it is not a point of the ed25519 curve";
    x = mod(x * SQRT_MINUS_ONE);
  }
  if (x === 0n && sign === 1n) return "it is not canonical: x is 0 but its sign bit is set, so another spelling means the same point";
  if ((x & 1n) !== sign) x = P - x;
  const point: Point = { x, y, z: 1n, t: mod(x * y) };
  for (const order of [1n, 2n, 4n, 8n]) {
    if (isIdentity(multiply(point, order))) return `it is a small-order point (order ${order}): a forged signature would verify for any bytes`;
  }
  if (!isIdentity(multiply(point, L))) {
    return "it is a point of mixed order, outside the prime-order subgroup that every real key (as `controller keygen` makes them) lies in";
  }
  return undefined;
}

/** The public key as config.d's update.trusted_keys and `verify --key` take it. */
export function encodePublicKey(publicKey: Uint8Array): string {
  if (publicKey.length !== PUBLIC_KEY_BYTES) {
    throw new Error(`Cannot encode a public key: it is ${publicKey.length} bytes, expected ${PUBLIC_KEY_BYTES}`);
  }
  return encodeBase64(publicKey);
}

/** Whether the text is spelled as a public key (base64 of 32 bytes), whatever point it names. */
export function isPublicKeyText(text: string): boolean {
  return decodeBase64(text.trim())?.length === PUBLIC_KEY_BYTES;
}

/**
 * weaknessOf's answer ("" for a sound key) per key: the point arithmetic takes
 * milliseconds, and the boot checks the same few trusted keys for every
 * signature it verifies.
 */
const weaknessChecked = new Map<string, string>();

/** Surrounding whitespace is tolerated: keys get pasted. Weak keys (small order, non-canonical) are refused. */
export function decodePublicKey(text: string): Uint8Array {
  const bytes = decodeBase64(text.trim());
  if (bytes === undefined || bytes.length !== PUBLIC_KEY_BYTES) {
    throw new Error(
      `Cannot read the public key ${describeText(text)}: expected base64 of ${PUBLIC_KEY_BYTES} bytes (${base64Length(PUBLIC_KEY_BYTES)} characters)`,
    );
  }
  const spelling = encodeBase64(bytes);
  let weakness = weaknessChecked.get(spelling);
  if (weakness === undefined) {
    weakness = weaknessOf(bytes) ?? "";
    weaknessChecked.set(spelling, weakness);
  }
  if (weakness !== "") throw new Error(`Cannot use the public key ${describeText(text.trim())}: ${weakness}`);
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

// ---- signature files ------------------------------------------------------------------
// A signature file says what it signs for, and the ed25519 signature covers
// that with the content's sha512:
//
//   controller-signature 2
//   purpose command
//   target /lab/burn-in.sh
//   version 1.4                      (optional)
//   expires 2027-01-03T00:00:00.000Z
//   signature BASE64
//
// The verifier rebuilds the signed message from what IT expects (purpose and
// target from what the machine is doing, the sha512 from the bytes it has), so
// a file signed for anything else does not verify in its place.

const SIGNATURE_FORMAT = "controller-signature 2";

/**
 * manifest: a channel's manifest.json (target: the channel). command and
 * ssh-keys: what command_url= and ssh_keys_url= fetch (target: the URL's path,
 * so every mirror serves the same signature). heddle: a Heddle update's
 * SHA512SUMS (target: the update's folder name).
 */
export const SIGNATURE_PURPOSES = ["manifest", "command", "ssh-keys", "heddle"] as const;
export type SignaturePurpose = (typeof SIGNATURE_PURPOSES)[number];

/** What a signature file says it signs for. */
export interface SignatureClaims {
  readonly purpose: SignaturePurpose;
  readonly target: string;
  readonly version?: string;
  /** an ISO 8601 UTC time as Date.toISOString() writes it */
  readonly expires: string;
}

/** Printable ASCII without spaces: one line of the file, one meaning. */
const TARGET = /^[\x21-\x7e]{1,2048}$/;
const VERSION_TEXT = /^[\x21-\x7e]{1,64}$/;

function isTimestamp(text: string): boolean {
  const time = Date.parse(text);
  return !Number.isNaN(time) && new Date(time).toISOString() === text;
}

/** What is wrong with claims before they are signed, or undefined. */
export function claimsProblem(claims: SignatureClaims): string | undefined {
  if (!(SIGNATURE_PURPOSES as readonly string[]).includes(claims.purpose)) return `purpose ${describeText(claims.purpose)}: expected one of ${SIGNATURE_PURPOSES.join(", ")}`;
  if (!TARGET.test(claims.target)) return `target ${describeText(claims.target)}: expected 1 to 2048 printable ASCII characters without spaces`;
  if (claims.version !== undefined && !VERSION_TEXT.test(claims.version)) {
    return `version ${describeText(claims.version)}: expected 1 to 64 printable ASCII characters without spaces`;
  }
  if (!isTimestamp(claims.expires)) return `expires ${describeText(claims.expires)}: expected a UTC time such as 2027-01-03T00:00:00.000Z`;
  return undefined;
}

/** The bytes the ed25519 signature covers. */
function signedMessage(claims: SignatureClaims, contentSha512: string): Uint8Array {
  const version = claims.version === undefined ? "" : `version ${claims.version}\n`;
  return new TextEncoder().encode(
    `${SIGNATURE_FORMAT}\npurpose ${claims.purpose}\ntarget ${claims.target}\n${version}expires ${claims.expires}\nsha512 ${contentSha512}\n`,
  );
}

/** A signature file's content for these exact bytes (a manifest, a script, a list of keys or checksums). */
export function signContent(bytes: Uint8Array, secretKey: Uint8Array, claims: SignatureClaims): string {
  const problem = claimsProblem(claims);
  if (problem !== undefined) throw new Error(`Cannot sign: ${problem}`);
  const signature = nacl.sign.detached(signedMessage(claims, sha512Hex(bytes)), secretKey);
  const version = claims.version === undefined ? "" : `version ${claims.version}\n`;
  return `${SIGNATURE_FORMAT}\npurpose ${claims.purpose}\ntarget ${claims.target}\n${version}expires ${claims.expires}\nsignature ${encodeBase64(signature)}\n`;
}

type ParsedSignatureFile =
  | { readonly kind: "envelope"; readonly claims: SignatureClaims; readonly signature: Uint8Array }
  /** bare base64 of 64 bytes, as every signature was before they named their purpose */
  | { readonly kind: "old"; readonly signature: Uint8Array }
  | { readonly kind: "bad"; readonly problem: string };

function parseSignatureFile(text: string): ParsedSignatureFile {
  const trimmed = text.trim();
  const bare = decodeBase64(trimmed);
  if (bare?.length === SIGNATURE_BYTES) return { kind: "old", signature: bare };
  const lines = trimmed.split("\n").map((line) => line.replace(/\r$/, ""));
  if (lines[0] !== SIGNATURE_FORMAT) {
    return { kind: "bad", problem: `the signature file does not start with "${SIGNATURE_FORMAT}" (nor is it base64 of ${SIGNATURE_BYTES} bytes)` };
  }
  const fields = new Map<string, string>();
  const order = ["purpose", "target", "version", "expires", "signature"];
  let last = -1;
  for (const [index, line] of lines.slice(1).entries()) {
    const match = /^([a-z]+) (\S+)$/.exec(line);
    const position = match === null ? -1 : order.indexOf(match[1] as string);
    if (match === null || position <= last) {
      return { kind: "bad", problem: `line ${index + 2} of the signature file is not one of ${order.join(", ")} (in that order, each once) and a value: ${describeText(line)}` };
    }
    last = position;
    fields.set(match[1] as string, match[2] as string);
  }
  const missing = order.filter((name) => name !== "version" && !fields.has(name));
  if (missing.length > 0) return { kind: "bad", problem: `the signature file has no ${missing.join(", ")} line` };
  const version = fields.get("version");
  const claims = {
    purpose: fields.get("purpose") as SignaturePurpose,
    target: fields.get("target") as string,
    ...(version === undefined ? {} : { version }),
    expires: fields.get("expires") as string,
  };
  const problem = claimsProblem(claims);
  if (problem !== undefined) return { kind: "bad", problem: `the signature file's ${problem}` };
  const signature = decodeBase64(fields.get("signature") as string);
  if (signature?.length !== SIGNATURE_BYTES) return { kind: "bad", problem: `the signature file's signature is not base64 of ${SIGNATURE_BYTES} bytes` };
  return { kind: "envelope", claims, signature };
}

/** The command that writes a signature for this purpose and target, for messages that ask for one. */
export function signCommandFor(purpose: SignaturePurpose, target: string): string {
  switch (purpose) {
    case "manifest":
      return `controller sign --key KEY --repo DIR --channel ${target}`;
    case "heddle":
      return `controller sign --key KEY --purpose heddle --version VERSION ${target}/SHA512SUMS`;
    default:
      return `controller sign --key KEY --purpose ${purpose} --url-path ${target} FILE`;
  }
}

function describeTarget(purpose: SignaturePurpose): string {
  return purpose === "manifest" ? "channel" : purpose === "heddle" ? "update" : "URL path";
}

/** What the verifier is doing: the signature must be for exactly this. */
export interface SignatureExpectation {
  readonly purpose: SignaturePurpose;
  readonly target: string;
  /** undefined: expiry is not checked (a slot's record, verified long after its install) */
  readonly now: Date | undefined;
  /**
   * Only for a slot's record, which this machine wrote after it verified the
   * manifest: records written before signatures named their purpose stay valid.
   */
  readonly acceptOldFormat?: boolean;
}

export type SignatureCheck =
  | {
      readonly ok: true;
      /** the trusted key text that signed */
      readonly key: string;
      /** what the signature file says; undefined for an old-format signature a slot record may keep */
      readonly claims?: SignatureClaims;
    }
  | { readonly ok: false; readonly problem: string };

/** tweetnacl takes S + L as well as S: only the canonical S < L is one signature with one spelling. */
function hasCanonicalS(signature: Uint8Array): boolean {
  return littleEndian(signature.subarray(32, 64)) < L;
}

/**
 * Whether one of the trusted keys signed these exact bytes for what is
 * expected; `key` is the trusted key text that did. A malformed or weak
 * trusted key is skipped but told when no other key verifies, so one typo in
 * config.d does not stop every update.
 */
export function verifySignature(bytes: Uint8Array, signatureText: string, trustedKeys: readonly string[], expected: SignatureExpectation): SignatureCheck {
  if (trustedKeys.length === 0) return { ok: false, problem: "there are no trusted keys to check the signature with" };
  const size = Buffer.byteLength(signatureText);
  if (size > SIGNATURE_MAX_BYTES) {
    return { ok: false, problem: `the signature is ${size} bytes, expected at most ${SIGNATURE_MAX_BYTES}` };
  }
  const resign = `re-sign it with \`${signCommandFor(expected.purpose, expected.target)}\``;
  const parsed = parseSignatureFile(signatureText);
  if (parsed.kind === "bad") return { ok: false, problem: parsed.problem };
  if (parsed.kind === "old" && expected.acceptOldFormat !== true) {
    return {
      ok: false,
      problem: `the signature is in the old format (bare base64, from before signatures named their purpose, target and expiry), which this controller refuses: ${resign}`,
    };
  }
  if (!hasCanonicalS(parsed.signature)) return { ok: false, problem: "the signature is not canonical (its S is not below the group order): refused as a forgery" };
  const message =
    parsed.kind === "old"
      ? bytes
      : signedMessage({ ...parsed.claims, purpose: expected.purpose, target: expected.target }, sha512Hex(bytes));
  const unusable: string[] = [];
  for (const [index, key] of trustedKeys.entries()) {
    let publicKey: Uint8Array;
    try {
      publicKey = decodePublicKey(key);
    } catch (error) {
      unusable.push(`trusted key ${index + 1}: ${(error as Error).message}`);
      continue;
    }
    if (!nacl.sign.detached.verify(message, parsed.signature, publicKey)) continue;
    if (parsed.kind === "old") return { ok: true, key };
    const { expires } = parsed.claims;
    if (expected.now !== undefined && expected.now.getTime() >= Date.parse(expires)) {
      // a manifest is signed until it expires itself: only a new version helps
      const remedy =
        expected.purpose === "manifest"
          ? "publish a new version (the server is frozen or replays an old manifest, or this machine's clock is wrong)"
          : resign;
      return { ok: false, problem: `the signature expired at ${expires} (it is now ${expected.now.toISOString()}): ${remedy}` };
    }
    return { ok: true, key, claims: parsed.claims };
  }
  const also = unusable.length === 0 ? "" : ` (${unusable.join("; ")})`;
  if (parsed.kind === "envelope" && (parsed.claims.purpose !== expected.purpose || parsed.claims.target !== expected.target)) {
    const { purpose, target } = parsed.claims;
    const differences = [
      ...(purpose === expected.purpose ? [] : [`purpose ${purpose}, not ${expected.purpose}`]),
      ...(target === expected.target ? [] : [`${describeTarget(purpose)} ${target}, not ${describeTarget(expected.purpose)} ${expected.target}`]),
    ];
    return {
      ok: false,
      problem: `the signature file is for ${differences.join(", and ")}: it signs another file or another place${also}; if this is the right content, ${resign}`,
    };
  }
  const count = trustedKeys.length === 1 ? "the trusted key" : `any of the ${trustedKeys.length} trusted keys`;
  return { ok: false, problem: `the signature is not valid for ${count}${also}` };
}

/** Lowercase hex, as the repository names content-addressed files and manifests. */
export function sha512Hex(bytes: Uint8Array): string {
  return createHash("sha512").update(bytes).digest("hex");
}
