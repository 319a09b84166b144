import { describe, expect, test } from "bun:test";
import { capOutput, newLines } from "../../../controller/plans/command-output.ts";

describe("command output", () => {
  test("newLines and capOutput", () => {
    expect(newLines("a\nb\nc", 0)).toEqual({ lines: ["a", "b"], next: 4 });
    expect(newLines("a\nb\nc", 4)).toEqual({ lines: [], next: 4 });
    expect(newLines("a\nb\nc\n", 4)).toEqual({ lines: ["c"], next: 6 });
    expect(newLines("", 0)).toEqual({ lines: [], next: 0 });
    expect(capOutput("abcdef", 4)).toEqual({ output: "abcd", truncated: true });
    expect(capOutput("abc", 4)).toEqual({ output: "abc", truncated: false });
  });
});
