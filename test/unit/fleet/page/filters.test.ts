// The fleet page's filters (fleet/page/filters.ts): the query string to a
// filter and a page, every bad value a problem that names its parameter,
// which machines each filter keeps, and a filter back to its query string.

import { describe, expect, test } from "bun:test";
import { summarizeBootReport } from "../../../../controller/fleet/boot-summary.ts";
import { filterQuery, matchesFilter, parseFilter } from "../../../../controller/fleet/page/filters.ts";
import { BOOT_REPORT, machineRecord as machine, PAGE_NOW as NOW } from "../../../fleet-envelopes.ts";

function parse(query: string) {
  return parseFilter(new URLSearchParams(query));
}

describe("parseFilter", () => {
  test("nothing, or every field left empty as the form sends it: no filter", () => {
    expect(parse("")).toEqual({ ok: true, filter: {}, page: 1 });
    expect(parse("version=&health=&rolledBack=&notSeenHours=&page=")).toEqual({ ok: true, filter: {}, page: 1 });
  });

  test("every parameter with a good value", () => {
    expect(parse("version=2.0&health=not+marked+good&rolledBack=yes&notSeenHours=1.5&page=3")).toEqual({
      ok: true,
      filter: { version: "2.0", health: "not marked good", rolledBack: true, notSeenHours: 1.5 },
      page: 3,
    });
    expect(parse("rolledBack=no")).toEqual({ ok: true, filter: { rolledBack: false }, page: 1 });
  });

  test("notSeenHours that is not a number of hours above 0: the parameter, what it expects and what came", () => {
    for (const value of ["abc", "0", "-1", "1e3", "0x10", " 5", "Infinity", "NaN", "87601"]) {
      expect(parse(`notSeenHours=${encodeURIComponent(value)}`)).toEqual({
        ok: false,
        problems: [`parameter notSeenHours: expected a number of hours above 0, at most 87600, got ${JSON.stringify(value)}`],
      });
    }
  });

  test("page: a whole number from 1, as large as a number is exact; a page past the last is no problem here", () => {
    for (const [value, page] of [["1", 1], ["2", 2], ["007", 7], ["99999", 99999], [String(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER]] as const) {
      expect(parse(`page=${value}`)).toEqual({ ok: true, filter: {}, page });
    }
  });

  test("page that is not a whole number of at least 1: the parameter, what it expects and what came", () => {
    for (const value of ["0", "-1", "1.5", "x", "1e3", " 2", "+2", "0x10", "Infinity", "99999999999999999999", String(Number.MAX_SAFE_INTEGER + 1)]) {
      expect(parse(`page=${encodeURIComponent(value)}`)).toEqual({
        ok: false,
        problems: [`parameter page: expected a whole number of at least 1, at most 9007199254740991, got ${JSON.stringify(value)}`],
      });
    }
  });

  test("page given twice is refused as any parameter is, even with the same value", () => {
    expect(parse("page=2&page=2")).toEqual({ ok: false, problems: ["parameter page: expected it once, got it again"] });
    expect(parse("page=2&version=2.0&page=3")).toEqual({ ok: false, problems: ["parameter page: expected it once, got it again"] });
  });

  test("a health word the page does not use, rolledBack other than yes or no, an unknown or repeated parameter: every problem at once", () => {
    const parsed = parse("health=%3Cscript%3E&rolledBack=true&verison=2.0&version=1&version=2");
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.problems).toEqual([
      `parameter health: expected one of "not seen", "nothing booted", "rolled back", "good", "shut down", "booting", "not marked good", got "<script>"`,
      `parameter rolledBack: expected "yes" or "no", got "true"`,
      `parameter "verison": expected one of version, health, rolledBack, notSeenHours, page`,
      "parameter version: expected it once, got it again",
    ]);
  });

  test("a version longer than any machine's is refused, and a long value is quoted cut short", () => {
    expect(parse(`version=${"9".repeat(201)}`)).toEqual({ ok: false, problems: ["parameter version: expected a version of at most 200 characters, got 201"] });
    const parsed = parse(`health=${"x".repeat(1000)}`);
    expect(!parsed.ok && parsed.problems[0]).toEndWith(`got "${"x".repeat(80)}…"`);
  });
});

describe("matchesFilter", () => {
  const good = machine();
  const old = machine({ lastSeenAt: "2026-12-04T12:00:00.000Z" });
  const rolledBack = machine({ rollbacks: 2, lastBoot: { ...summarizeBootReport(BOOT_REPORT), version: "1.0", rollback: "rollback: SYSFS unhealthy" } });
  const fleet = [good, old, rolledBack];
  const keep = (query: string) => {
    const parsed = parse(query);
    if (!parsed.ok) throw new Error(parsed.problems.join("; "));
    return fleet.filter((entry) => matchesFilter(entry, parsed.filter, NOW));
  };

  test("no filter keeps every machine", () => {
    expect(keep("")).toEqual(fleet);
  });

  test("by version booted, exactly", () => {
    expect(keep("version=1.0")).toEqual([rolledBack]);
    expect(keep("version=2")).toEqual([]);
  });

  test("by health word: not seen by the default 24 h, or by the filter's hours", () => {
    expect(keep("health=good")).toEqual([good]);
    expect(keep("health=not+seen")).toEqual([old]);
    expect(keep("health=rolled+back")).toEqual([rolledBack]);
  });

  test("by rollbacks ever, yes or no", () => {
    expect(keep("rolledBack=yes")).toEqual([rolledBack]);
    expect(keep("rolledBack=no")).toEqual([good, old]);
  });

  test("not seen for more than N hours", () => {
    expect(keep("notSeenHours=24")).toEqual([old]);
    expect(keep("notSeenHours=0.5")).toEqual(fleet);
    expect(keep("notSeenHours=100")).toEqual([]);
  });

  test("parts together: each must pass", () => {
    expect(keep("version=2.0&rolledBack=no&notSeenHours=24")).toEqual([old]);
  });
});

describe("filterQuery", () => {
  test("no filter: an empty query", () => {
    expect(filterQuery({}).toString()).toBe("");
  });

  test("every part, in the parameters' order, escaped, and read back by parseFilter as the same filter", () => {
    const filter = { version: "2.0 & <b>", health: "not marked good", rolledBack: false, notSeenHours: 1.5 } as const;
    const query = filterQuery(filter);
    expect(query.toString()).toBe("version=2.0+%26+%3Cb%3E&health=not+marked+good&rolledBack=no&notSeenHours=1.5");
    expect(parseFilter(query)).toEqual({ ok: true, filter, page: 1 });
    expect(filterQuery({ rolledBack: true }).toString()).toBe("rolledBack=yes");
  });
});
