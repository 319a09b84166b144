import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import nacl from "tweetnacl";
import { SIGNATURE_MAX_BYTES } from "../../../controller/update/manifest.ts";
import {
  decodePublicKey,
  decodeSecretKey,
  encodePublicKey,
  encodeSecretKey,
  generateKeyPair,
  isPublicKeyText,
  publicKeyOf,
  type SignatureClaims,
  type SignatureExpectation,
  sha512Hex,
  signContent,
  verifySignature,
} from "../../../controller/update/signing.ts";

const MANIFEST = new TextEncoder().encode('{\n  "format": 1,\n  "version": "1.2.0"\n}\n');
const signer = generateKeyPair();
const signerKey = encodePublicKey(signer.publicKey);
const other = encodePublicKey(generateKeyPair().publicKey);
const NOW = new Date("2026-11-23T10:00:00.000Z");
const CLAIMS: SignatureClaims = { purpose: "manifest", target: "stable", expires: "2026-12-23T10:00:00.000Z" };
const EXPECTED: SignatureExpectation = { purpose: "manifest", target: "stable", now: NOW };
const signature = signContent(MANIFEST, signer.secretKey, CLAIMS);

/** The base64 of the signature line of a signature file. */
function signatureLine(text: string): string {
  return /^signature (.+)$/m.exec(text)?.[1] ?? "";
}

/** A signature file with these raw 64 signature bytes in place of its own. */
function withSignatureBytes(text: string, raw: Uint8Array): string {
  return text.replace(signatureLine(text), Buffer.from(raw).toString("base64"));
}

function flipped(bytes: Uint8Array, index: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

describe("keys as text", () => {
  test("a public key is 44 characters of base64 and reads back", () => {
    expect(signerKey).toHaveLength(44);
    expect(decodePublicKey(signerKey)).toEqual(signer.publicKey);
    expect(decodePublicKey(` ${signerKey}\n`)).toEqual(signer.publicKey);
  });

  test("a public key of the wrong length or not base64 is refused, saying what was expected", () => {
    const shortKey = Buffer.alloc(31).toString("base64");
    for (const text of [shortKey, `${signerKey.slice(0, 43)}!`, "", "not a key", `${signerKey}AAAA`, signerKey.replace(/=$/, "")]) {
      expect(() => decodePublicKey(text)).toThrow(`Cannot read the public key ${JSON.stringify(text)}: expected base64 of 32 bytes (44 characters)`);
    }
  });

  test("only the canonical spelling: non-zero padding bits are refused", () => {
    // the last character before "=" carries 2 unused bits in a 32-byte key, always 0 in the canonical spelling
    const last = signerKey.at(-2) ?? "A";
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const sameBytes = `${signerKey.slice(0, 42)}${alphabet[alphabet.indexOf(last) | 1]}=`;
    expect(Buffer.from(sameBytes, "base64")).toEqual(Buffer.from(signer.publicKey));
    expect(sameBytes).not.toBe(signerKey);
    expect(() => decodePublicKey(sameBytes)).toThrow("Cannot read the public key");
  });

  test("a secret key file reads back; a damaged one is refused without showing it", () => {
    const text = encodeSecretKey(signer.secretKey);
    expect(text).toEndWith("\n");
    expect(decodeSecretKey(text, "k.secret")).toEqual(signer.secretKey);
    expect(publicKeyOf(signer.secretKey)).toEqual(signer.publicKey);
    expect(() => decodeSecretKey(signerKey, "k.secret")).toThrow(
      "Cannot read the secret key in k.secret: expected base64 of 64 bytes (88 characters), as `controller keygen` writes",
    );
    const damaged = Buffer.from(signer.secretKey);
    damaged[40] = (damaged[40] ?? 0) ^ 0xff;
    const error = (() => {
      try {
        decodeSecretKey(damaged.toString("base64"), "k.secret");
      } catch (caught) {
        return (caught as Error).message;
      }
      return "";
    })();
    expect(error).toBe("Cannot read the secret key in k.secret: its public half does not belong to its seed (the file is damaged)");
    expect(error).not.toContain(damaged.toString("base64").slice(0, 10));
  });

  test("encoding refuses keys of the wrong length", () => {
    expect(() => encodePublicKey(new Uint8Array(31))).toThrow("Cannot encode a public key: it is 31 bytes, expected 32");
    expect(() => encodeSecretKey(new Uint8Array(32))).toThrow("Cannot encode a secret key: it is 32 bytes, expected 64");
  });
});

describe("signature files", () => {
  test("say what they sign for; a good one names the key that made it and what it claims", () => {
    expect(signature).toMatch(
      /^controller-signature 2\npurpose manifest\ntarget stable\nexpires 2026-12-23T10:00:00\.000Z\nsignature [A-Za-z0-9+/]{86}==\n$/,
    );
    expect(verifySignature(MANIFEST, signature, [other, signerKey], EXPECTED)).toEqual({ ok: true, key: signerKey, claims: CLAIMS });
    expect(verifySignature(MANIFEST, `  ${signature.trim().replaceAll("\n", "\r\n")}  \r\n`, [signerKey], EXPECTED).ok).toBe(true);
    const withVersion = signContent(MANIFEST, signer.secretKey, { purpose: "heddle", target: "update7", version: "4.2", expires: CLAIMS.expires });
    expect(withVersion).toContain("\ntarget update7\nversion 4.2\nexpires ");
    expect(verifySignature(MANIFEST, withVersion, [signerKey], { purpose: "heddle", target: "update7", now: NOW })).toMatchObject({ ok: true, claims: { version: "4.2" } });
  });

  test("the ed25519 signature covers purpose, target, version, expiry and the content's sha512, as the verifier rebuilds them", () => {
    const message = `controller-signature 2\npurpose manifest\ntarget stable\nexpires 2026-12-23T10:00:00.000Z\nsha512 ${sha512Hex(MANIFEST)}\n`;
    const raw = Buffer.from(signatureLine(signature), "base64");
    expect(nacl.sign.detached.verify(new TextEncoder().encode(message), raw, signer.publicKey)).toBe(true);
  });

  test("another purpose, another target, or past its expiry: refused, saying which and how to sign again", () => {
    expect(verifySignature(MANIFEST, signature, [signerKey], { ...EXPECTED, target: "beta" })).toEqual({
      ok: false,
      problem:
        "the signature file is for channel stable, not channel beta: it signs another file or another place; " +
        "if this is the right content, re-sign it with `controller sign --key KEY --repo DIR --channel beta`",
    });
    expect(verifySignature(MANIFEST, signature, [signerKey], { purpose: "command", target: "stable", now: NOW })).toMatchObject({
      ok: false,
      problem: expect.stringContaining("the signature file is for purpose manifest, not command: it signs another file or another place"),
    });
    const script = signContent(MANIFEST, signer.secretKey, { purpose: "command", target: "/lab/run.sh", expires: CLAIMS.expires });
    const at = new Date(CLAIMS.expires);
    expect(verifySignature(MANIFEST, script, [signerKey], { purpose: "command", target: "/lab/run.sh", now: at })).toEqual({
      ok: false,
      problem: "the signature expired at 2026-12-23T10:00:00.000Z (it is now 2026-12-23T10:00:00.000Z): re-sign it with `controller sign --key KEY --purpose command --url-path /lab/run.sh FILE`",
    });
    // a slot's record is verified long after its manifest expired
    expect(verifySignature(MANIFEST, signature, [signerKey], { ...EXPECTED, now: undefined }).ok).toBe(true);
  });

  test("changed claims do not verify: the file's purpose, target, version or expiry edited by hand", () => {
    for (const [from, to] of [["target stable", "target stabl"], ["expires 2026-12-23", "expires 2027-12-23"]] as const) {
      const edited = signature.replace(from, to);
      expect(verifySignature(MANIFEST, edited, [signerKey], { ...EXPECTED, target: to.startsWith("target") ? "stabl" : "stable" })).toMatchObject({ ok: false });
    }
    const heddle = signContent(MANIFEST, signer.secretKey, { purpose: "heddle", target: "u1", version: "1.0", expires: CLAIMS.expires });
    expect(verifySignature(MANIFEST, heddle.replace("version 1.0", "version 9.0"), [signerKey], { purpose: "heddle", target: "u1", now: NOW }).ok).toBe(false);
    expect(verifySignature(MANIFEST, heddle.replace("version 1.0\n", ""), [signerKey], { purpose: "heddle", target: "u1", now: NOW }).ok).toBe(false);
  });

  test("the old format (bare base64 over the bytes) is refused with how to re-sign; a slot's record may keep one", () => {
    const old = `${Buffer.from(nacl.sign.detached(MANIFEST, signer.secretKey)).toString("base64")}\n`;
    expect(verifySignature(MANIFEST, old, [signerKey], EXPECTED)).toEqual({
      ok: false,
      problem:
        "the signature is in the old format (bare base64, from before signatures named their purpose, target and expiry), which this controller refuses: " +
        "re-sign it with `controller sign --key KEY --repo DIR --channel stable`",
    });
    expect(verifySignature(MANIFEST, old, [signerKey], { ...EXPECTED, now: undefined, acceptOldFormat: true })).toEqual({ ok: true, key: signerKey });
    expect(verifySignature(flipped(MANIFEST, 3), old, [signerKey], { ...EXPECTED, now: undefined, acceptOldFormat: true }).ok).toBe(false);
  });

  test("signing refuses claims a verifier could not read back", () => {
    expect(() => signContent(MANIFEST, signer.secretKey, { ...CLAIMS, target: "two words" })).toThrow("Cannot sign: target \"two words\": expected 1 to 2048 printable ASCII");
    expect(() => signContent(MANIFEST, signer.secretKey, { ...CLAIMS, expires: "tomorrow" })).toThrow("Cannot sign: expires \"tomorrow\": expected a UTC time");
    expect(() => signContent(MANIFEST, signer.secretKey, { ...CLAIMS, version: "" })).toThrow("Cannot sign: version \"\": expected 1 to 64");
  });
});

describe("verifySignature", () => {
  test("the wrong key", () => {
    expect(verifySignature(MANIFEST, signature, [other], EXPECTED)).toEqual({ ok: false, problem: "the signature is not valid for the trusted key" });
    expect(verifySignature(MANIFEST, signature, [other, encodePublicKey(generateKeyPair().publicKey)], EXPECTED)).toEqual({
      ok: false,
      problem: "the signature is not valid for any of the 2 trusted keys",
    });
  });

  test("no trusted keys", () => {
    expect(verifySignature(MANIFEST, signature, [], EXPECTED)).toEqual({ ok: false, problem: "there are no trusted keys to check the signature with" });
  });

  test("a flipped byte anywhere in the manifest", () => {
    for (const index of [0, 10, MANIFEST.length - 1]) {
      expect(verifySignature(flipped(MANIFEST, index), signature, [signerKey], EXPECTED).ok).toBe(false);
    }
    expect(verifySignature(new Uint8Array([...MANIFEST, 0x20]), signature, [signerKey], EXPECTED).ok).toBe(false);
  });

  test("a flipped byte in the signature", () => {
    const raw = Buffer.from(signatureLine(signature), "base64");
    // byte 63 is S's top byte: flipping its low bit keeps S < L, so it is tweetnacl that refuses
    for (const index of [0, 31, 32, 63]) {
      expect(verifySignature(MANIFEST, withSignatureBytes(signature, flipped(raw, index)), [signerKey], EXPECTED)).toEqual({
        ok: false,
        problem: "the signature is not valid for the trusted key",
      });
    }
  });

  test("a truncated, padded or non-base64 signature, or a file that is not a signature file", () => {
    const problem = { ok: false as const, problem: "the signature file's signature is not base64 of 64 bytes" };
    const raw = Buffer.from(signatureLine(signature), "base64");
    expect(verifySignature(MANIFEST, withSignatureBytes(signature, raw.subarray(0, 63)), [signerKey], EXPECTED)).toEqual(problem);
    expect(verifySignature(MANIFEST, withSignatureBytes(signature, Buffer.concat([raw, Buffer.alloc(1)])), [signerKey], EXPECTED)).toEqual(problem);
    expect(verifySignature(MANIFEST, signature.replace(signatureLine(signature), raw.toString("hex")), [signerKey], EXPECTED)).toEqual(problem);
    const notAFile = { ok: false as const, problem: 'the signature file does not start with "controller-signature 2" (nor is it base64 of 64 bytes)' };
    expect(verifySignature(MANIFEST, "", [signerKey], EXPECTED)).toEqual(notAFile);
    expect(verifySignature(MANIFEST, raw.subarray(0, 63).toString("base64"), [signerKey], EXPECTED)).toEqual(notAFile);
    expect(verifySignature(MANIFEST, signature.replace("purpose manifest\ntarget stable", "target stable\npurpose manifest"), [signerKey], EXPECTED)).toEqual({
      ok: false,
      problem: 'line 3 of the signature file is not one of purpose, target, version, expires, signature (in that order, each once) and a value: "purpose manifest"',
    });
    expect(verifySignature(MANIFEST, signature.replace("purpose manifest\n", ""), [signerKey], EXPECTED)).toEqual({ ok: false, problem: "the signature file has no purpose line" });
    expect(verifySignature(MANIFEST, signature.replace("purpose manifest", "purpose backdoor"), [signerKey], EXPECTED)).toEqual({
      ok: false,
      problem: 'the signature file\'s purpose "backdoor": expected one of manifest, command, ssh-keys, heddle',
    });
  });

  test("an oversized signature is refused before it is decoded", () => {
    const huge = " ".repeat(SIGNATURE_MAX_BYTES) + signature;
    expect(verifySignature(MANIFEST, huge, [signerKey], EXPECTED)).toEqual({
      ok: false,
      problem: `the signature is ${huge.length} bytes, expected at most ${SIGNATURE_MAX_BYTES}`,
    });
  });

  test("a malformed trusted key is skipped, and told when nothing verifies", () => {
    expect(verifySignature(MANIFEST, signature, ["typo", signerKey], EXPECTED)).toMatchObject({ ok: true, key: signerKey });
    expect(verifySignature(MANIFEST, signature, ["typo", other], EXPECTED)).toEqual({
      ok: false,
      problem:
        'the signature is not valid for any of the 2 trusted keys (trusted key 1: Cannot read the public key "typo": expected base64 of 32 bytes (44 characters))',
    });
  });

  test("the signature of one manifest does not verify another", () => {
    const second = new TextEncoder().encode('{"format": 1, "version": "1.1.0"}');
    expect(verifySignature(second, signature, [signerKey], EXPECTED).ok).toBe(false);
  });
});

// ---- weak keys and malleable signatures ------------------------------------------------

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function hexKey(hex: string): string {
  return Buffer.from(hex, "hex").toString("base64");
}

/**
 * The small-order points (orders 1, 2, 4 and 8) in every 32-byte spelling,
 * as libsodium's blacklist lists them: canonical, with the sign bit set, and
 * y + p where that still fits in 255 bits.
 */
const SMALL_ORDER = [
  "0000000000000000000000000000000000000000000000000000000000000000", // y = 0, order 4
  "0000000000000000000000000000000000000000000000000000000000000080", // y = 0, the other x: order 4
  "0100000000000000000000000000000000000000000000000000000000000000", // the identity, order 1
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", // order 8
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", // order 8
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p - 1, order 2
];
const NON_CANONICAL = [
  "0100000000000000000000000000000000000000000000000000000000000080", // the identity with x = 0 and the sign bit set
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", // order 2 with x = 0 and the sign bit set
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p, that is 0
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p + 1, that is the identity
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

/** RFC 8032 point arithmetic, only to build a mixed-order key for the test. */
function modP(value: bigint): bigint {
  return ((value % P) + P) % P;
}
function powP(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let square = modP(base);
  for (let rest = exponent; rest > 0n; rest >>= 1n) {
    if (rest & 1n) result = modP(result * square);
    square = modP(square * square);
  }
  return result;
}
const D = modP(-121665n * powP(121666n, P - 2n));
type Affine = { x: bigint; y: bigint };
function decodePoint(bytes: Uint8Array): Affine {
  let encoded = 0n;
  for (let index = 31; index >= 0; index--) encoded = (encoded << 8n) | BigInt(bytes[index] ?? 0);
  const y = encoded & ((1n << 255n) - 1n);
  const u = modP(y * y - 1n);
  const v = modP(D * y * y + 1n);
  let x = modP(u * powP(v, 3n) * powP(u * powP(v, 7n), (P - 5n) / 8n));
  if (modP(v * x * x - u) !== 0n) x = modP(x * powP(2n, (P - 1n) / 4n));
  if ((x & 1n) !== encoded >> 255n) x = modP(-x);
  return { x, y };
}
function addPoints(a: Affine, b: Affine): Affine {
  const t = modP(D * a.x * b.x * a.y * b.y);
  return { x: modP((a.x * b.y + b.x * a.y) * powP(1n + t, P - 2n)), y: modP((a.y * b.y + a.x * b.x) * powP(1n - t, P - 2n)) };
}
function encodePoint(point: Affine): string {
  let value = point.y | ((point.x & 1n) << 255n);
  const bytes = new Uint8Array(32);
  for (let index = 0; index < 32; index++) {
    bytes[index] = Number(value & 0xffn);
    value >>= 8n;
  }
  return Buffer.from(bytes).toString("base64");
}

describe("weak public keys", () => {
  test("every small-order point, in every spelling, is refused by decodePublicKey, saying a forgery would verify", () => {
    for (const hex of SMALL_ORDER) {
      const key = hexKey(hex);
      expect(isPublicKeyText(key)).toBe(true);
      expect(() => decodePublicKey(key)).toThrow(new RegExp(`^Cannot use the public key "${key.replace(/[+/]/g, "\\$&")}": it is a small-order point \\(order [1248]\\): a forged signature would verify for any bytes$`));
    }
    expect(() => decodePublicKey(hexKey(SMALL_ORDER[2] ?? ""))).toThrow("it is a small-order point (order 1)");
    expect(() => decodePublicKey(hexKey(SMALL_ORDER[7] ?? ""))).toThrow("it is a small-order point (order 2)");
  });

  test("non-canonical spellings, points off the curve and mixed-order points are refused", () => {
    for (const hex of NON_CANONICAL) expect(() => decodePublicKey(hexKey(hex))).toThrow(/^Cannot use the public key "[^"]+": it is not canonical: /);
    expect(() => decodePublicKey(hexKey(`02${"00".repeat(31)}`))).toThrow("it is not a point of the ed25519 curve");
    // a real key plus a point of order 8: verifies like the key for some signatures, which keygen never makes
    const mixed = encodePoint(addPoints(decodePoint(signer.publicKey), decodePoint(Buffer.from(SMALL_ORDER[3] ?? "", "hex"))));
    expect(() => decodePublicKey(mixed)).toThrow("it is a point of mixed order, outside the prime-order subgroup");
    // the test's own arithmetic is right: the real key reads back as itself
    expect(encodePoint(decodePoint(signer.publicKey))).toBe(signerKey);
  });

  test("real keys are accepted", () => {
    for (let count = 0; count < 20; count++) {
      const key = generateKeyPair().publicKey;
      expect(decodePublicKey(encodePublicKey(key))).toEqual(key);
    }
  });

  test("the forged signature R = identity, S = 0 does not verify any bytes under a small-order trusted key", () => {
    const identityKey = hexKey(SMALL_ORDER[2] ?? "");
    const forged = new Uint8Array(64);
    forged[0] = 1; // R: the identity point; S: 0
    // tweetnacl alone takes it, for any message: the reason keys are checked first
    expect(nacl.sign.detached.verify(new TextEncoder().encode("rm -rf /"), forged, Buffer.from(SMALL_ORDER[2] ?? "", "hex"))).toBe(true);
    for (const purpose of ["manifest", "command", "ssh-keys", "heddle"] as const) {
      const file = withSignatureBytes(signContent(MANIFEST, signer.secretKey, { purpose, target: "stable", version: "1", expires: CLAIMS.expires }), forged);
      expect(verifySignature(new TextEncoder().encode(`anything ${purpose}`), file, [identityKey], { purpose, target: "stable", now: NOW })).toEqual({
        ok: false,
        problem: `the signature is not valid for the trusted key (trusted key 1: Cannot use the public key "${identityKey}": it is a small-order point (order 1): a forged signature would verify for any bytes)`,
      });
    }
    // a weak key beside a real one does not stop the real one
    expect(verifySignature(MANIFEST, signature, [identityKey, signerKey], EXPECTED)).toMatchObject({ ok: true, key: signerKey });
  });

  test("a signature with S + L in place of S (the same signature, spelled again) is refused; tweetnacl takes it", () => {
    const raw = Buffer.from(signatureLine(signature), "base64");
    let s = 0n;
    for (let index = 63; index >= 32; index--) s = (s << 8n) | BigInt(raw[index] ?? 0);
    const malleated = new Uint8Array(raw);
    let bigger = s + L;
    for (let index = 32; index < 64; index++) {
      malleated[index] = Number(bigger & 0xffn);
      bigger >>= 8n;
    }
    expect(bigger).toBe(0n); // S < L < 2^253, so S + L always fits in the 32 bytes
    const message = new TextEncoder().encode(`controller-signature 2\npurpose manifest\ntarget stable\nexpires 2026-12-23T10:00:00.000Z\nsha512 ${sha512Hex(MANIFEST)}\n`);
    expect(nacl.sign.detached.verify(message, malleated, signer.publicKey)).toBe(true);
    expect(verifySignature(MANIFEST, withSignatureBytes(signature, malleated), [signerKey], EXPECTED)).toEqual({
      ok: false,
      problem: "the signature is not canonical (its S is not below the group order): refused as a forgery",
    });
  });
});

test("sha512Hex is lowercase hex of the exact bytes", () => {
  expect(sha512Hex(MANIFEST)).toBe(createHash("sha512").update(MANIFEST).digest("hex"));
  expect(sha512Hex(new Uint8Array())).toMatch(/^cf83e135[0-9a-f]{120}$/);
});
