import { describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CommandError, formatArgv, runCommand } from "../../../controller/system/exec.ts";
import { memoryLogger } from "../../memory-log.ts";

describe("runCommand", () => {
  test("returns stdout and logs the argv as a debug line", async () => {
    const { log, sink } = memoryLogger(true);
    expect(await runCommand(log, 5000, ["sh", "-c", "echo out; echo err >&2"])).toEqual({ stdout: "out\n" });
    expect(sink.consoleLines).toEqual(["controller: exec: sh -c 'echo out; echo err >&2'"]);
    expect(sink.kmsgLines[0]?.priority).toBe((3 << 3) | 7);
  });

  test("a failure says which command, its exit status and its stderr", async () => {
    const failing = runCommand(memoryLogger().log, 5000, ["sh", "-c", "echo 'mount: /sysroot: wrong fs type' >&2; exit 32"]);
    await expect(failing).rejects.toThrow("Cannot run `sh -c 'echo '\\''mount: /sysroot: wrong fs type'\\'' >&2; exit 32'`: exit status 32: mount: /sysroot: wrong fs type");
    const error = await failing.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CommandError);
    expect((error as CommandError).exitCode).toBe(32);
  });

  test("a failure's reason is kept when debug output follows it (kexec prints its segments after the error)", () => {
    const stderr = ["Try gzip decompression.", "kexec_load failed: Operation not permitted", "entry       = 0x5ffd4000", ...Array.from({ length: 8 }, (_, i) => `segment[${i}].memsz = 0x9000`)].join("\n");
    const error = new CommandError(["kexec", "--load", "k"], 255, stderr, "exit status 255");
    expect(error.message).toBe("Cannot run `kexec --load k`: exit status 255: kexec_load failed: Operation not permitted");
    // without such a line, the last five lines as before
    expect(new CommandError(["x"], 1, "a\nb\nc\nd\ne\nf\n", "exit status 1").message).toBe("Cannot run `x`: exit status 1: b | c | d | e | f");
  });

  test("a command that is not there", async () => {
    await expect(runCommand(memoryLogger().log, 5000, ["/nonexistent/tool"])).rejects.toThrow("Cannot run `/nonexistent/tool`: it could not be started");
  });

  test("a command that hangs is killed at the limit", async () => {
    const started = performance.now();
    await expect(runCommand(memoryLogger().log, 300, ["sleep", "30"])).rejects.toThrow("Cannot run `sleep 30`: it took longer than 0.3 s and was killed");
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  test("stdout can go to a file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "exec-"));
    try {
      const file = join(dir, "out");
      expect(await runCommand(memoryLogger().log, 5000, ["echo", "to a file"], { stdoutFile: file })).toEqual({ stdout: "" });
      expect(await readFile(file, "utf8")).toBe("to a file\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("formatArgv quotes only what a shell would need quoted", () => {
    expect(formatArgv(["mount", "-o", "ro,loop", "/a b", "it's", "=x"])).toBe(`mount -o ro,loop '/a b' 'it'\\''s' '=x'`);
  });
});
