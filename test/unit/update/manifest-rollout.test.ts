// Manifest format 3: the optional `rollout` section (issue 17). Formats 1 and
// 2 read as before: a rollout in them is an unknown key, dropped.

import { expect, test } from "bun:test";
import { MANIFEST_FORMAT_ROLLOUT, manifestFormatFor, parseManifest } from "../../../controller/update/manifest.ts";

const SOURCE = "http://repo/channels/stable/manifest.json";
const HASH_A = "a".repeat(128);
const PERCENT_EXPECTED = "expected the share of machines that take this version: a number from 0 to 100";

function input(format: number, rollout?: unknown): Record<string, unknown> {
  return {
    format,
    channel: "stable",
    version: "2.0",
    created: "2026-11-23T10:00:00.000Z",
    expires: "2026-12-23T10:00:00.000Z",
    image: { url: `images/${HASH_A}.squashfs`, size: 123456, sha512: HASH_A, format: "squashfs" },
    ...(rollout === undefined ? {} : { rollout }),
    config: { fleet: [], machines: [] },
  };
}

function parse(value: unknown) {
  return parseManifest(new TextEncoder().encode(JSON.stringify(value)), SOURCE);
}

test("format 3 carries a rollout; fractional shares are kept", () => {
  expect(MANIFEST_FORMAT_ROLLOUT).toBe(3);
  for (const percent of [0, 2.5, 25, 100]) {
    const parsed = parse(input(3, { percent }));
    if (!parsed.ok) throw new Error(parsed.problems.join("\n"));
    expect(parsed.manifest.rollout).toEqual({ percent });
  }
});

test("a share that is not a number from 0 to 100 is refused, naming the key", () => {
  const cases: [unknown, string][] = [
    [{ percent: -1 }, "-1"],
    [{ percent: 100.5 }, "100.5"],
    [{ percent: "25" }, '"25"'],
    [{ percent: null }, "null"],
    [{}, "nothing"],
  ];
  for (const [rollout, got] of cases) {
    const parsed = parse(input(3, rollout));
    expect(parsed).toEqual({ ok: false, problems: [`${SOURCE}: key rollout.percent: ${PERCENT_EXPECTED}, got ${got}`] });
  }
  expect(parse(input(3, 25))).toEqual({
    ok: false,
    problems: [`${SOURCE}: key rollout: expected an object with percent (the share of the channel's machines that take this version, 0 to 100), got 25`],
  });
  // 1e400 is Infinity to JSON.parse
  const bytes = new TextEncoder().encode(JSON.stringify(input(3, { percent: 1 })).replace('"percent":1', '"percent":1e400'));
  expect(parseManifest(bytes, SOURCE)).toEqual({ ok: false, problems: [`${SOURCE}: key rollout.percent: ${PERCENT_EXPECTED}, got Infinity`] });
});

test("formats 1 and 2 never had a rollout: there it is an unknown key, dropped, never trusted", () => {
  for (const format of [1, 2]) {
    const parsed = parse(input(format, { percent: "not even a number" }));
    if (!parsed.ok) throw new Error(parsed.problems.join("\n"));
    expect(parsed.manifest.rollout).toBeUndefined();
  }
});

test("the format a manifest needs: 3 only for a rollout below 100 %", () => {
  expect(manifestFormatFor({ kernel: false, rolloutPercent: undefined })).toBe(1);
  expect(manifestFormatFor({ kernel: true, rolloutPercent: undefined })).toBe(2);
  expect(manifestFormatFor({ kernel: false, rolloutPercent: 100 })).toBe(1);
  expect(manifestFormatFor({ kernel: true, rolloutPercent: 100 })).toBe(2);
  expect(manifestFormatFor({ kernel: false, rolloutPercent: 0 })).toBe(3);
  expect(manifestFormatFor({ kernel: true, rolloutPercent: 99.9 })).toBe(3);
});
