// The sender's decisions (fleet/outbox.ts): the order envelopes go in, what
// each answer does to one, how long the waits grow, and how few lines a long
// outage writes.

import { describe, expect, test } from "bun:test";
import {
  failureWorthLogging,
  OUTBOX_MAX_FILES,
  outboxName,
  outcomeOf,
  overflowing,
  PERMANENT_REFUSALS,
  queuedInOrder,
  RETRY_FIRST_MS,
  RETRY_MAX_MS,
  retryDelayMs,
} from "../../../controller/fleet/outbox.ts";

const AT = new Date("2026-12-06T10:00:00.000Z");

describe("outboxName and queuedInOrder", () => {
  test("names say rank, time, kind and a random suffix", () => {
    expect(outboxName("boot", AT, 0)).toBe(`0-00${AT.getTime()}-boot-00000000.json`);
    expect(outboxName("mark-good", AT, 0.5)).toBe(`1-00${AT.getTime()}-mark-good-80000000.json`);
    expect(outboxName("mark-shutdown", AT, 0.9999999999)).toBe(`1-00${AT.getTime()}-mark-shutdown-ffffffff.json`);
  });

  test("a boot's report goes first, then the rest by the time they were queued", () => {
    const later = new Date(AT.getTime() + 1);
    const names = [outboxName("mark-shutdown", later, 0.1), outboxName("mark-good", AT, 0.2), outboxName("boot", later, 0.3)];
    expect(queuedInOrder(names)).toEqual([...names].reverse());
  });

  test("times of fewer digits sort as numbers too: zero-padded to 15", () => {
    const names = [new Date(9_999_999_999_999), new Date(1_000_000_000_000), new Date(99_999_999_999)].map((at) => outboxName("mark-good", at, 0));
    expect(queuedInOrder(names)).toEqual([...names].reverse());
  });

  test("what is not an envelope's name is not sent: temporary files, other files, near misses", () => {
    const good = outboxName("boot", AT, 0);
    const others = [
      `.${good}.1234.tmp`,
      `${good}.tmp`,
      "README",
      good.replace("boot", "reboot"),
      good.replace(".json", ".JSON"),
      `2${good.slice(1)}`,
      good.replace("-00000000", "-0000000g"),
      good.replace(`00${AT.getTime()}`, String(AT.getTime())),
    ];
    expect(queuedInOrder([...others, good])).toEqual([good]);
  });
});

describe("overflowing", () => {
  const names = Array.from({ length: OUTBOX_MAX_FILES + 5 }, (_, index) => outboxName("mark-good", new Date(AT.getTime() + index), 0));

  test("room for one more: nothing goes while fewer than the cap wait", () => {
    expect(overflowing([])).toEqual([]);
    expect(overflowing(names.slice(0, OUTBOX_MAX_FILES - 1))).toEqual([]);
  });

  test("at the cap or over it, the oldest go, so the new one makes the cap", () => {
    expect(overflowing(names.slice(0, OUTBOX_MAX_FILES))).toEqual(names.slice(0, 1));
    expect(overflowing([...names].reverse())).toEqual(names.slice(0, 6));
    expect(overflowing(names, 1)).toEqual(names);
  });

  test("files that are not envelopes neither count nor go", () => {
    expect(overflowing([...names.slice(0, OUTBOX_MAX_FILES - 1), ".x.tmp", "README"])).toEqual([]);
  });
});

describe("outcomeOf", () => {
  test("2xx: taken, the file goes", () => {
    for (const status of [200, 201, 202, 204]) expect(outcomeOf({ kind: "answered", status, error: "" })).toEqual({ action: "delete" });
  });

  test("the refusals a fleet server gives: dropped, with its status and words", () => {
    expect(PERMANENT_REFUSALS).toEqual([400, 401, 403, 404, 413, 415]);
    for (const status of PERMANENT_REFUSALS) {
      expect(outcomeOf({ kind: "answered", status, error: "Cannot take the report: no" })).toEqual({ action: "drop", why: `the server answered ${status}: Cannot take the report: no` });
    }
  });

  test("redirects and other 4xx: dropped too, with a hint that fleet.server may be wrong", () => {
    for (const status of [301, 302, 307, 308, 405, 409, 410, 422]) {
      expect(outcomeOf({ kind: "answered", status, error: "" })).toEqual({
        action: "drop",
        why: `the server answered ${status} (not an answer a fleet server gives: is fleet.server right?)`,
      });
    }
  });

  test("no answer, 408, 429 and 5xx: tried again", () => {
    expect(outcomeOf({ kind: "failed", problem: "Unable to connect" })).toEqual({ action: "retry", why: "Unable to connect" });
    for (const status of [408, 429, 500, 502, 503, 504, 599]) {
      expect(outcomeOf({ kind: "answered", status, error: "busy" })).toEqual({ action: "retry", why: `the server answered ${status}: busy` });
    }
  });
});

describe("retryDelayMs", () => {
  test("5 s doubling up to 10 min, of which the random part takes half to all", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9].map((failures) => retryDelayMs(failures, 0.9999999))).toEqual([5, 10, 20, 40, 80, 160, 320, 600, 600].map((seconds) => seconds * 1000));
    expect([1, 2, 8].map((failures) => retryDelayMs(failures, 0))).toEqual([2500, 5000, 300_000]);
    expect(retryDelayMs(1, 0.5)).toBe(3750);
  });

  test("never above the cap nor below half the first wait, whatever the count", () => {
    for (const failures of [0, -1, 1, 30, 1000, Number.MAX_SAFE_INTEGER]) {
      for (const random of [0, 0.5, 0.9999999]) {
        const delay = retryDelayMs(failures, random);
        expect(delay).toBeGreaterThanOrEqual(RETRY_FIRST_MS / 2);
        expect(delay).toBeLessThanOrEqual(RETRY_MAX_MS);
      }
    }
  });
});

describe("failureWorthLogging", () => {
  test("the 1st, 2nd, 4th, 8th ... failure with the same reason", () => {
    const logged = Array.from({ length: 100 }, (_, index) => index + 1).filter((failures) => failureWorthLogging(failures, "down", "down"));
    expect(logged).toEqual([1, 2, 4, 8, 16, 32, 64]);
  });

  test("any failure whose reason is new", () => {
    expect(failureWorthLogging(3, "the server answered 503", "Unable to connect")).toBe(true);
    expect(failureWorthLogging(3, "Unable to connect", undefined)).toBe(true);
  });

  test("a day's outage at the longest wait writes a handful of lines, not hundreds", () => {
    let elapsed = 0;
    let lines = 0;
    for (let failures = 1; elapsed < 24 * 3600_000; failures++) {
      if (failureWorthLogging(failures, "down", "down")) lines++;
      elapsed += retryDelayMs(failures, 0);
    }
    expect(lines).toBeLessThanOrEqual(12);
  });
});
