// The figures the benchmarks print: medians and percentiles by interpolation, and markdown tables.

import { describe, expect, test } from "bun:test";
import { median, percentile, runsFrom, table, transferSeconds } from "../../bench/lib.ts";

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

  test("runsFrom: RUNS when set, the benchmark's own count otherwise; anything but a whole number from 1 is refused by name", () => {
    expect(runsFrom(undefined, 5)).toBe(5);
    expect(runsFrom("", 5)).toBe(5);
    expect(runsFrom("2", 5)).toBe(2);
    for (const bad of ["0", "-1", "2.5", "two", "02"]) {
      expect(() => runsFrom(bad, 5)).toThrow(`Cannot read RUNS from the environment: current value is "${bad}", expected a whole number of at least 1`);
    }
  });

  test("transferSeconds: bytes at a link's bit rate", () => {
    expect(transferSeconds(100_000_000, 100_000_000)).toBe(8);
    expect(transferSeconds(125_000_000, 1_000_000_000)).toBe(1);
  });
});
