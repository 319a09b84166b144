import { describe, expect, test } from "bun:test";
import { checkSums, parseSha512Sums } from "../../../controller/plans/heddle-sums.ts";

const HASH_A = "a".repeat(128);
const HASH_B = "b".repeat(128);

describe("parseSha512Sums", () => {
  test("sha512sum's text and binary lines, ./ prefixes, uppercase hex, CRLF and blank lines", () => {
    const parsed = parseSha512Sums(`${HASH_A}  kernel\n${HASH_B} *./initrd\r\n\n${"C".repeat(128)}  cmdline\n`);
    expect(parsed).toEqual({ ok: true, sums: new Map([["kernel", HASH_A], ["initrd", HASH_B], ["cmdline", "c".repeat(128)]]) });
    expect(parseSha512Sums("")).toEqual({ ok: true, sums: new Map() });
  });

  test("malformed lines and duplicates are refused with the line number", () => {
    expect(parseSha512Sums(`${HASH_A}  kernel\n${HASH_A.slice(1)}  initrd\n`)).toEqual({ ok: false, problem: expect.stringContaining("line 2 is not \"SHA512  NAME\" as sha512sum writes it") });
    expect(parseSha512Sums(`${HASH_A} kernel`)).toMatchObject({ ok: false, problem: expect.stringContaining("line 1") });
    expect(parseSha512Sums(`${"g".repeat(128)}  kernel`)).toMatchObject({ ok: false });
    expect(parseSha512Sums(`${HASH_A}  `)).toMatchObject({ ok: false });
    expect(parseSha512Sums(`${HASH_A}  kernel\n${HASH_B}  ./kernel\n`)).toEqual({ ok: false, problem: "line 2 lists kernel a second time" });
  });
});

describe("checkSums", () => {
  const sums = new Map([["kernel", HASH_A], ["initrd", HASH_B], ["README", HASH_B]]);

  test("every used file listed and matching: no problem; other listed files are ignored", () => {
    expect(checkSums(sums, new Map([["kernel", HASH_A], ["initrd", HASH_B]]))).toEqual([]);
  });

  test("a mismatch, a used file not listed, a listed boot file missing: each named", () => {
    expect(checkSums(sums, new Map([["kernel", HASH_B], ["initrd", HASH_B], ["cmdline", HASH_A]]))).toEqual([
      `kernel has sha512 ${HASH_B.slice(0, 16)}…, SHA512SUMS expects ${HASH_A.slice(0, 16)}…`,
      "cmdline is not listed in SHA512SUMS",
    ]);
    expect(checkSums(new Map([...sums, ["cmdline", HASH_A]]), new Map([["kernel", HASH_A], ["initrd", HASH_B]]))).toEqual([
      "SHA512SUMS lists cmdline, but the update has no such file",
    ]);
  });
});
