import { describe, expect, test } from "bun:test";
import { naturalCompare } from "../../../controller/plans/natural-order.ts";

describe("naturalCompare", () => {
  const sorted = (names: string[]) => [...names].sort(naturalCompare);

  test("runs of digits compare by value: update2 < update10", () => {
    expect(sorted(["update10", "update2", "update1"])).toEqual(["update1", "update2", "update10"]);
    expect(sorted(["lab-2024.10", "lab-2024.9", "lab-2023.12"])).toEqual(["lab-2023.12", "lab-2024.9", "lab-2024.10"]);
    expect(sorted(["1.10.0", "1.9.9", "1.10"])).toEqual(["1.9.9", "1.10", "1.10.0"]);
  });

  test("digit runs longer than a JavaScript number still compare by value", () => {
    expect(naturalCompare("u99999999999999999999", "u100000000000000000000")).toBeLessThan(0);
    expect(naturalCompare("u123456789012345678901", "u123456789012345678902")).toBeLessThan(0);
  });

  test("leading zeros: equal values are ordered as plain strings, so the order is total", () => {
    expect(naturalCompare("update02", "update2")).toBeLessThan(0);
    expect(naturalCompare("update2", "update02")).toBeGreaterThan(0);
    expect(naturalCompare("update002", "update10")).toBeLessThan(0);
    expect(naturalCompare("update0", "update00")).not.toBe(0);
  });

  test("a prefix sorts first; letters are compared case-sensitively, digits before letters", () => {
    expect(sorted(["update1", "update", "up"])).toEqual(["up", "update", "update1"]);
    expect(sorted(["b", "B", "a", "A"])).toEqual(["A", "B", "a", "b"]);
    expect(sorted(["a", "9", "10"])).toEqual(["9", "10", "a"]);
    expect(sorted(["x-1", "x1"])).toEqual(["x-1", "x1"]);
  });

  test("the same name is equal, and the comparison is antisymmetric", () => {
    expect(naturalCompare("update7", "update7")).toBe(0);
    const names = ["u1", "u01", "u10", "u1a", "u1b", "U1", "v", "u", "u1.2", "u1.10"];
    for (const a of names) for (const b of names) expect(Math.sign(naturalCompare(a, b)) + Math.sign(naturalCompare(b, a))).toBe(0);
    for (const a of names) for (const b of names) if (a !== b) expect(naturalCompare(a, b)).not.toBe(0);
  });
});
