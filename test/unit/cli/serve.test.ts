// `controller serve` (cli/serve.ts) as a process: its options, its checks on
// the repository folder, its output until a signal stops it, and lineBuffer,
// which batches the access log on stdout.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { lineBuffer } from "../../../controller/cli/serve.ts";
import { type RepoServer, startRepoServer } from "../../../controller/update/dev-server.ts";
import { type CommandProcess, finishedCommand, spawnCommand, stdoutLines } from "../../command-process.ts";

const SERVE = resolve(import.meta.dir, "../../../controller/cli/serve.ts");
const MANIFEST = '{"format":1,"channel":"stable"}\n';

let dir: string;
let repo: string;
/** Holds a port, for the command that asks for it. */
let server: RepoServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "serve-command-"));
  repo = join(dir, "repo");
  await mkdir(join(repo, "channels/stable"), { recursive: true });
  await writeFile(join(repo, "channels/stable/manifest.json"), MANIFEST);
  await writeFile(join(dir, "secret.txt"), "a file, not a folder\n");
  server = startRepoServer({ repo, port: 0 });
});

afterAll(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("lineBuffer, which batches the access log", () => {
  test("lines wait until the delay is over, then go out in one write, each with its newline", async () => {
    const writes: string[] = [];
    const buffer = lineBuffer((text) => writes.push(text), 20, 100);
    buffer.add("one");
    buffer.add("two");
    expect(writes).toEqual([]);
    await Bun.sleep(60);
    expect(writes).toEqual(["one\ntwo\n"]);
    buffer.add("three");
    await Bun.sleep(60);
    expect(writes).toEqual(["one\ntwo\n", "three\n"]);
  });

  test("as many lines as the limit go out at once, without waiting", () => {
    const writes: string[] = [];
    const buffer = lineBuffer((text) => writes.push(text), 60_000, 3);
    for (const line of ["a", "b", "c", "d"]) buffer.add(line);
    expect(writes).toEqual(["a\nb\nc\n"]);
    buffer.flush();
    expect(writes).toEqual(["a\nb\nc\n", "d\n"]);
  });

  test("flush writes what waits and nothing when nothing does, and the timer does not write it again", async () => {
    const writes: string[] = [];
    const buffer = lineBuffer((text) => writes.push(text), 20, 100);
    buffer.flush();
    expect(writes).toEqual([]);
    buffer.add("last");
    buffer.flush();
    await Bun.sleep(60);
    expect(writes).toEqual(["last\n"]);
  });
});

describe("serveCommand", () => {
  function serveCommand(args: string[]): CommandProcess {
    return spawnCommand(SERVE, "serveCommand", args);
  }

  function finished(args: string[]): ReturnType<typeof finishedCommand> {
    return finishedCommand(serveCommand(args));
  }

  test("missing or invalid options are usage errors that say which", async () => {
    const cases: [string[], string][] = [
      [[], "Cannot serve: --repo DIR is missing"],
      [["--repo", "x"], "Cannot serve: --port N is missing"],
      [["--repo", "x", "--port", "http"], '--port needs a port number from 0 to 65535, got "http"'],
      [["--repo", "x", "--port", "65536"], '--port needs a port number from 0 to 65535, got "65536"'],
      [["--repo", "x", "--port", "-1"], '--port needs a port number from 0 to 65535, got "-1"'],
      [["--repo", "x", "--port"], "--port needs a value"],
      [["--repo", "--port", "0"], "--repo needs a value"],
            [["--repo", "x", "--repo", "y"], "--repo is given twice"],
      [["--root", "x"], 'Unknown option "--root"'],
    ];
    for (const [args, message] of cases) {
      const result = await finished(args);
      expect([args, result.code, result.stderr]).toEqual([args, 2, expect.stringContaining(message)]);
      expect(result.stderr).toContain("Usage: controller serve --repo DIR --port N");
    }
  });

  test("a repository folder that is missing, not a folder or has no channels/ is refused", async () => {
    const missing = await finished(["--repo", join(dir, "nope"), "--port", "0"]);
    expect(missing).toMatchObject({ code: 1, stderr: `Cannot serve ${join(dir, "nope")}: no such folder\n` });
    const file = await finished(["--repo", join(dir, "secret.txt"), "--port", "0"]);
    expect(file).toMatchObject({ code: 1, stderr: `Cannot serve ${join(dir, "secret.txt")}: it is not a folder\n` });
    const empty = join(dir, "empty");
    await mkdir(empty, { recursive: true });
    const noChannels = await finished(["--repo", empty, "--port", "0"]);
    expect(noChannels).toMatchObject({ code: 1, stderr: expect.stringContaining(`Cannot serve ${empty}: it has no channels/ folder`) });
    const busy = await finished(["--repo", repo, "--port", String(server.port)]);
    expect(busy).toMatchObject({ code: 1, stderr: expect.stringContaining(`Cannot serve ${repo} at 127.0.0.1 port ${server.port}`) });
  });

  test("serves until SIGTERM, printing where and then one line per request", async () => {
    const child = serveCommand(["--repo", repo, "--port", "0"]);
    const nextLine = stdoutLines(child);
    try {
      const first = await nextLine();
      expect(first).toMatch(new RegExp(`^serving ${repo} at http://127\\.0\\.0\\.1:\\d+/$`));
      const url = first.slice(first.indexOf("http://"));
      expect(await (await fetch(`${url}channels/stable/manifest.json`)).text()).toBe(MANIFEST);
      expect(await nextLine()).toMatch(/"GET \/channels\/stable\/manifest\.json" 200 /);
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
      expect(await nextLine()).toBe("stopped by SIGTERM");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
