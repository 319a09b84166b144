// The fleet server's two credentials: the report token, which every machine
// of the fleet holds (it proves a report comes from the fleet, not which
// machine sent it), and the read token, for whoever reads the reports. Both
// are shared secrets kept in files, never on a command line, where `ps` and
// the shell's history would show them.

import { createHash, timingSafeEqual } from "node:crypto";
import { readFile, stat } from "node:fs/promises";

/**
 * Printable ASCII without spaces, at least 32 characters. The hint makes base64url, as docs/fleet.md does: a
 * plain base64 token holds '/' about every other time, and the read token goes into a `user:token@host` URL.
 */
const TOKEN = /^[\x21-\x7e]{32,512}$/;
export const TOKEN_EXPECTED = "32 to 512 printable ASCII characters without spaces (head -c 32 /dev/urandom | base64 | tr '+/' '-_' makes one)";

/**
 * Whether `given` is `expected`, in a time that says nothing about how much
 * of it matched: both are hashed first, so the comparison is always of 32
 * bytes, whatever their lengths, and timingSafeEqual compares every byte.
 */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash("sha256").update(value).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** The token of an `Authorization: Bearer TOKEN` header, or undefined when there is none. */
export function bearerToken(authorization: string | null): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(authorization ?? "");
  return match?.[1];
}

/**
 * The password of an `Authorization: Basic BASE64(USER:PASSWORD)` header (RFC 7617),
 * what a browser sends once a person typed it into its sign-in box; the user name is
 * not read. Undefined when there is no such header or it is not base64 of UTF-8 with a colon.
 */
export function basicPassword(authorization: string | null): string | undefined {
  const match = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(authorization ?? "");
  if (match?.[1] === undefined || match[1].length % 4 !== 0) return undefined;
  let decoded: string;
  try {
    decoded = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(match[1], "base64"));
  } catch {
    return undefined;
  }
  const colon = decoded.indexOf(":");
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

export interface TokenFile {
  readonly token: string;
  /** a file others on the machine may read */
  readonly warning?: string;
}

/**
 * Pure: the token of a token file, from its text and mode; errors name `option`, what gave the file.
 * The warning is for a file others on the machine may read.
 */
export function tokenOfFile(text: string, mode: number, file: string, option: string): TokenFile {
  const token = text.replace(/\r?\n$/, "");
  if (!TOKEN.test(token)) {
    const got = token === "" ? "an empty file" : `${token.length} characters${/\s/.test(token) ? " with white space" : ""}`;
    throw new Error(`Cannot use ${option} ${file}: expected ${TOKEN_EXPECTED}, got ${got}`);
  }
  if ((mode & 0o077) === 0) return { token };
  const shown = (mode & 0o777).toString(8).padStart(4, "0");
  return { token, warning: `Warning: ${option} ${file} has mode ${shown}: others on this machine may read the token; run chmod 600 ${file}` };
}

/** The token in `file` (one line; its newline is not part of it); errors name `option`, the flag that gave the file. */
export async function readTokenFile(file: string, option: string): Promise<TokenFile> {
  let text: string;
  let mode: number;
  try {
    mode = (await stat(file)).mode;
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new Error(`Cannot read ${option} ${file}: ${(error as Error).message}`);
  }
  return tokenOfFile(text, mode, file, option);
}
