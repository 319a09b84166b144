// `controller keygen keys/lab`, the README's own example, in a folder without
// keys/: the folder is made for the secret key (0700), and the command says so.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { keygen } from "../../../controller/update/repository.ts";

const MAIN = resolve(import.meta.dir, "../../../controller/main.ts");
/** bun starts once per command: seconds on a busy 2-core machine. */
const CLI_TIMEOUT_MS = 30_000;

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "keygen-test-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The command as a person runs it, in `cwd`. */
async function runIn(cwd: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([process.execPath, MAIN, ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

describe("keygen into a folder that does not exist", () => {
  test("controller keygen keys/lab makes keys/ with mode 0700, writes the pair and says so", async () => {
    const cwd = await mkdtemp(join(dir, "cwd-"));
    const result = await runIn(cwd, "keygen", "keys/lab");
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toContain("Made the folder keys/ (mode 0700) for the key pair.");
    expect((await stat(join(cwd, "keys"))).mode & 0o777).toBe(0o700);
    expect((await stat(join(cwd, "keys/lab.secret"))).mode & 0o777).toBe(0o600);
    const publicKey = (await readFile(join(cwd, "keys/lab.pub"), "utf8")).trim();
    expect(result.stdout).toContain(`Public key, for update.trusted_keys: ${publicKey}`);

    // the folder is there now: nothing to say about it, and the pair is never overwritten
    const again = await runIn(cwd, "keygen", "keys/lab");
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("Cannot write a new key pair: keys/lab.secret already exists");
    expect(again.stdout).not.toContain("Made the folder");
  }, CLI_TIMEOUT_MS);

  test("nested folders are all made 0700, and the first one made is the one reported", async () => {
    const made: string[] = [];
    await keygen(join(dir, "a/b/lab"), (folder) => made.push(folder));
    expect(made).toEqual([join(dir, "a")]);
    expect((await stat(join(dir, "a"))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, "a/b"))).mode & 0o777).toBe(0o700);
  });

  test("an existing folder is used as it is, and nothing is said", async () => {
    const made: string[] = [];
    await keygen(join(dir, "here"), (folder) => made.push(folder));
    expect(made).toEqual([]);
    expect((await stat(join(dir, "here.secret"))).mode & 0o777).toBe(0o600);
  });

  test("a file where the folder should be: a plain message naming the key file and the folder", async () => {
    await writeFile(join(dir, "notafolder"), "");
    const prefix = join(dir, "notafolder/lab");
    await expect(keygen(prefix)).rejects.toThrow(`Cannot write the key pair ${prefix}.secret: cannot make the folder ${join(dir, "notafolder")}/ for it: `);
  });
});
