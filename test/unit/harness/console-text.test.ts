import { describe, expect, test } from "bun:test";
import { ConsoleText, lastLines, plainConsoleText } from "../../../qemu-harness/console-text.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("plainConsoleText", () => {
  test("removes \\r, colours, screen clearing and SeaBIOS's terminal reset", () => {
    expect(plainConsoleText("\x1bc\x1b[?7l\x1b[2JSeaBIOS\r\n")).toBe("SeaBIOS\n");
    expect(plainConsoleText("[\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mbasic.target\x1b[0m\r\n")).toBe(
      "[  OK  ] Reached target basic.target\n",
    );
    expect(plainConsoleText("test-system# \x1b[6necho hi\r\n")).toBe("test-system# echo hi\n");
  });

  test("removes an OSC title sequence and keeps tabs", () => {
    expect(plainConsoleText("\x1b]0;title\x07a\tb")).toBe("a\tb");
  });
});

describe("ConsoleText", () => {
  test("an escape sequence split across chunks is removed once complete, and the plain text only grows", () => {
    const console = new ConsoleText();
    console.append(bytes("before \x1b[0;3"));
    expect(console.plain).toBe("before ");
    console.append(bytes("2mgreen\x1b"));
    expect(console.plain).toBe("before green");
    console.append(bytes("[0m after\r\n"));
    expect(console.plain).toBe("before green after\n");
    expect(console.raw).toBe("before \x1b[0;32mgreen\x1b[0m after\r\n");
  });

  test("a CSI cut right after ESC [ is not taken for a complete short sequence", () => {
    const console = new ConsoleText();
    console.append(bytes("a\x1b["));
    console.append(bytes("1mb"));
    expect(console.plain).toBe("ab");
  });

  test("a UTF-8 character split across chunks survives", () => {
    const console = new ConsoleText();
    const euro = bytes("€");
    console.append(euro.slice(0, 1));
    console.append(euro.slice(1));
    expect(console.plain).toBe("€");
  });

  test("a lone ESC followed by a lot of text is garbage, not a sequence held back forever", () => {
    const console = new ConsoleText();
    console.append(bytes(`\x1b]${"x".repeat(100)}`));
    expect(console.plain).toBe(`]${"x".repeat(100)}`);
  });
});

test("lastLines keeps the end of a text", () => {
  expect(lastLines("a\nb\nc\nd", 2)).toBe("c\nd");
  expect(lastLines("a", 5)).toBe("a");
});
