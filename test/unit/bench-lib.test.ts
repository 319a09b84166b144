// The figures the benchmarks print: medians and percentiles by interpolation, and markdown tables.

import { describe, expect, test } from "bun:test";
import { median, percentile, table } from "../../bench/lib.ts";

describe("bench figures", () => {
  test("median: the middle figure, or the mean of the two middle ones; order does not matter", () => {
    expect(median([3])).toBe(3);
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  test("percentile interpolates between the closest ranks", () => {
    const values = [10, 20, 30, 40, 50];
    expect(percentile(values, 0)).toBe(10);
    expect(percentile(values, 100)).toBe(50);
    expect(percentile(values, 99)).toBeCloseTo(49.6);
    expect(percentile(values, 25)).toBe(20);
    expect(() => percentile([], 50)).toThrow("Cannot take a percentile of no figures");
  });

  test("table: a header, its rule and one line per row", () => {
    expect(table(["a", "b"], [["1", "2"]])).toBe("| a | b |\n| --- | --- |\n| 1 | 2 |");
  });
});
