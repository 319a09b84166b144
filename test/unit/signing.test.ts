import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { SIGNATURE_MAX_BYTES } from "../../controller/manifest.ts";
import {
  decodePublicKey,
  decodeSecretKey,
  encodePublicKey,
  encodeSecretKey,
  generateKeyPair,
  publicKeyOf,
  sha512Hex,
  signBytes,
  verifySignature,
} from "../../controller/signing.ts";

const MANIFEST = new TextEncoder().encode('{\n  "format": 1,\n  "version": "1.2.0"\n}\n');
const signer = generateKeyPair();
const signerKey = encodePublicKey(signer.publicKey);
const other = encodePublicKey(generateKeyPair().publicKey);
const signature = signBytes(MANIFEST, signer.secretKey);

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

describe("verifySignature", () => {
  test("a good signature names the key that made it", () => {
    expect(signature).toMatch(/^[A-Za-z0-9+/]{86}==\n$/);
    expect(verifySignature(MANIFEST, signature, [other, signerKey])).toEqual({ ok: true, key: signerKey });
    expect(verifySignature(MANIFEST, `  ${signature.trim()}  \r\n`, [signerKey])).toEqual({ ok: true, key: signerKey });
  });

  test("the wrong key", () => {
    expect(verifySignature(MANIFEST, signature, [other])).toEqual({ ok: false, problem: "the signature is not valid for the trusted key" });
    expect(verifySignature(MANIFEST, signature, [other, encodePublicKey(generateKeyPair().publicKey)])).toEqual({
      ok: false,
      problem: "the signature is not valid for any of the 2 trusted keys",
    });
  });

  test("no trusted keys", () => {
    expect(verifySignature(MANIFEST, signature, [])).toEqual({ ok: false, problem: "there are no trusted keys to check the signature with" });
  });

  test("a flipped byte anywhere in the manifest", () => {
    for (const index of [0, 10, MANIFEST.length - 1]) {
      expect(verifySignature(flipped(MANIFEST, index), signature, [signerKey]).ok).toBe(false);
    }
    expect(verifySignature(new Uint8Array([...MANIFEST, 0x20]), signature, [signerKey]).ok).toBe(false);
  });

  test("a flipped byte in the signature", () => {
    const raw = Buffer.from(signature.trim(), "base64");
    for (const index of [0, 31, 32, 63]) {
      const bad = `${Buffer.from(flipped(raw, index)).toString("base64")}\n`;
      expect(verifySignature(MANIFEST, bad, [signerKey])).toEqual({ ok: false, problem: "the signature is not valid for the trusted key" });
    }
  });

  test("a truncated, padded or non-base64 signature", () => {
    const problem = { ok: false as const, problem: "the signature is not base64 of 64 bytes" };
    const raw = Buffer.from(signature.trim(), "base64");
    expect(verifySignature(MANIFEST, raw.subarray(0, 63).toString("base64"), [signerKey])).toEqual(problem);
    expect(verifySignature(MANIFEST, signature.slice(0, 40), [signerKey])).toEqual(problem);
    expect(verifySignature(MANIFEST, Buffer.concat([raw, Buffer.alloc(1)]).toString("base64"), [signerKey])).toEqual(problem);
    expect(verifySignature(MANIFEST, "", [signerKey])).toEqual(problem);
    expect(verifySignature(MANIFEST, signature.replace("A", "*").replace(/^(.)/, "*"), [signerKey])).toEqual(problem);
    expect(verifySignature(MANIFEST, raw.toString("hex"), [signerKey])).toEqual(problem);
    expect(verifySignature(MANIFEST, `${signature.slice(0, 44)}\n${signature.slice(44)}`, [signerKey])).toEqual(problem);
  });

  test("an oversized signature is refused before it is decoded", () => {
    const huge = " ".repeat(SIGNATURE_MAX_BYTES) + signature;
    expect(verifySignature(MANIFEST, huge, [signerKey])).toEqual({
      ok: false,
      problem: `the signature is ${huge.length} bytes, expected at most ${SIGNATURE_MAX_BYTES}`,
    });
  });

  test("a malformed trusted key is skipped, and told when nothing verifies", () => {
    expect(verifySignature(MANIFEST, signature, ["typo", signerKey])).toEqual({ ok: true, key: signerKey });
    expect(verifySignature(MANIFEST, signature, ["typo", other])).toEqual({
      ok: false,
      problem: 'the signature is not valid for any of the 2 trusted keys (trusted key 1 "typo" is not base64 of 32 bytes)',
    });
  });

  test("the signature of one manifest does not verify another", () => {
    const second = new TextEncoder().encode('{"format": 1, "version": "1.1.0"}');
    expect(verifySignature(second, signature, [signerKey]).ok).toBe(false);
  });
});

test("sha512Hex is lowercase hex of the exact bytes", () => {
  expect(sha512Hex(MANIFEST)).toBe(createHash("sha512").update(MANIFEST).digest("hex"));
  expect(sha512Hex(new Uint8Array())).toMatch(/^cf83e135[0-9a-f]{120}$/);
});
