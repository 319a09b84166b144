import { describe, expect, test } from "bun:test";
import { formatArgv, shellQuote } from "../../../controller/system/exec.ts";
import { CommandError, runCommand } from "../../../qemu-harness/command.ts";

describe("shellQuote and formatArgv", () => {
  test("leave plain words alone and quote the rest", () => {
    expect(shellQuote("-append")).toBe("-append");
    expect(shellQuote("file=/d/a.img,format=raw")).toBe("file=/d/a.img,format=raw");
    expect(shellQuote("console=ttyS0 root=controller")).toBe("'console=ttyS0 root=controller'");
    expect(shellQuote("")).toBe("''");
    expect(shellQuote("=cmd")).toBe("'=cmd'");
    expect(formatArgv(["echo", "it's", "$HOME"])).toBe(`echo 'it'\\''s' '$HOME'`);
  });

  test("a shell reads the formatted command line back as the same words", async () => {
    const words = ["plain", "two words", "it's", '"double"', "$HOME", "`x`", "a\\b", "*", "new\nline", "", "=x", "ü"];
    const { stdout } = await runCommand(["sh", "-c", `printf '%s\\0' ${formatArgv(words)}`]);
    expect(stdout.split("\0").slice(0, -1)).toEqual(words);
  });
});

describe("runCommand", () => {
  test("returns stdout and stderr, and feeds stdin", async () => {
    expect(await runCommand(["sh", "-c", "cat; echo err >&2"], { stdin: "in\n" })).toEqual({
      stdout: "in\n",
      stderr: "err\n",
    });
  });

  test("a failing command throws with its command line, exit code and stderr", async () => {
    const run = runCommand(["sh", "-c", "echo 'no such thing' >&2; exit 3", "arg with space"]);
    await expect(run).rejects.toThrow(CommandError);
    await expect(run).rejects.toThrow(
      "command failed (exit code 3): sh -c 'echo '\\''no such thing'\\'' >&2; exit 3' 'arg with space'\nstderr:\nno such thing",
    );
  });

  test("a program that does not exist is an error naming it", async () => {
    await expect(runCommand(["no-such-program-anywhere", "x"])).rejects.toThrow(
      /could not start "no-such-program-anywhere".*: no-such-program-anywhere x/,
    );
  });
});
