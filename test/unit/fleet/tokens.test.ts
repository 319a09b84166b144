// The fleet server's credentials (fleet/tokens.ts): the comparison that leaks
// nothing through its time, the Authorization header, the token files.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { basicPassword, bearerToken, readTokenFile, sameSecret, TOKEN_EXPECTED } from "../../../controller/fleet/tokens.ts";
import { REPORT_TOKEN } from "../../fleet-envelopes.ts";

describe("sameSecret", () => {
  test("equal strings match; a prefix, a longer string, another case or the empty string do not", () => {
    expect(sameSecret(REPORT_TOKEN, REPORT_TOKEN)).toBe(true);
    expect(sameSecret(REPORT_TOKEN.slice(0, -1), REPORT_TOKEN)).toBe(false);
    expect(sameSecret(`${REPORT_TOKEN}x`, REPORT_TOKEN)).toBe(false);
    expect(sameSecret(REPORT_TOKEN.toUpperCase(), REPORT_TOKEN)).toBe(false);
    expect(sameSecret("", REPORT_TOKEN)).toBe(false);
  });

  test("compares with node:crypto's timingSafeEqual over digests of one length, so no length or prefix shows in its time", async () => {
    const source = await Bun.file(join(import.meta.dir, "../../../controller/fleet/tokens.ts")).text();
    const body = source.slice(source.indexOf("export function sameSecret"), source.indexOf("/** The token of an"));
    expect(body).toContain("timingSafeEqual(digest(given), digest(expected))");
    expect(body).not.toMatch(/===|!==|localeCompare/);
  });
});

describe("basicPassword", () => {
  const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString("base64")}`;

  test("the password after the first colon, whatever the user name; the scheme in any case", () => {
    expect(basicPassword(basic(`admin:${REPORT_TOKEN}`))).toBe(REPORT_TOKEN);
    expect(basicPassword(basic(`:${REPORT_TOKEN}`))).toBe(REPORT_TOKEN);
    expect(basicPassword(basic("ünï:pa:ss wörd"))).toBe("pa:ss wörd");
    expect(basicPassword(basic("admin:"))).toBe("");
    expect(basicPassword(`basic ${Buffer.from("a:b").toString("base64")}`)).toBe("b");
  });

  test("no header, another scheme, no colon, not base64, not UTF-8: none", () => {
    for (const header of [null, "", `Bearer ${REPORT_TOKEN}`, basic("no-colon"), "Basic", "Basic !!!!", "Basic YWJj=", "Basic YQ", `Basic ${Buffer.from([0x3a, 0xff, 0xfe]).toString("base64")}`]) {
      expect(basicPassword(header)).toBeUndefined();
    }
  });
});

describe("bearerToken", () => {
  test("the token of a Bearer header, the scheme in any case", () => {
    expect(bearerToken(`Bearer ${REPORT_TOKEN}`)).toBe(REPORT_TOKEN);
    expect(bearerToken(`bearer ${REPORT_TOKEN}`)).toBe(REPORT_TOKEN);
  });

  test("nothing for no header, another scheme, no token, or two tokens", () => {
    for (const header of [null, "", `Basic ${REPORT_TOKEN}`, "Bearer", "Bearer ", `Bearer ${REPORT_TOKEN} extra`, REPORT_TOKEN]) {
      expect(bearerToken(header)).toBeUndefined();
    }
  });
});

describe("readTokenFile", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fleet-tokens-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function tokenFile(name: string, text: string, mode = 0o600): Promise<string> {
    const file = join(dir, name);
    await writeFile(file, text);
    await chmod(file, mode);
    return file;
  }

  test("one line, its newline not part of the token; mode 0600 gives no warning", async () => {
    const file = await tokenFile("report.token", `${REPORT_TOKEN}\n`);
    expect(await readTokenFile(file, "--report-token-file")).toEqual({ token: REPORT_TOKEN });
  });

  test("a file others may read: the token, and a warning that says how to mend it", async () => {
    const file = await tokenFile("open.token", REPORT_TOKEN, 0o644);
    expect(await readTokenFile(file, "--read-token-file")).toEqual({
      token: REPORT_TOKEN,
      warning: `Warning: --read-token-file ${file} has mode 0644: others on this machine may read the token; run chmod 600 ${file}`,
    });
  });

  test("a missing file, an empty one, a short token, one with spaces: an error naming the option and the file", async () => {
    const missing = join(dir, "missing.token");
    await expect(readTokenFile(missing, "--report-token-file")).rejects.toThrow(`Cannot read --report-token-file ${missing}: `);
    const cases: [string, string][] = [
      ["", "an empty file"],
      ["short", "5 characters"],
      [`${REPORT_TOKEN} ${REPORT_TOKEN}`, `${REPORT_TOKEN.length * 2 + 1} characters with white space`],
      [`${REPORT_TOKEN}\n\n`, `${REPORT_TOKEN.length + 1} characters with white space`],
    ];
    for (const [index, [text, got]] of cases.entries()) {
      const file = await tokenFile(`bad-${index}.token`, text);
      await expect(readTokenFile(file, "--report-token-file")).rejects.toThrow(`Cannot use --report-token-file ${file}: expected ${TOKEN_EXPECTED}, got ${got}`);
    }
  });
});
