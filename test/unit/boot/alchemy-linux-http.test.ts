// LinuxSystem against a real server on 127.0.0.1 where command_url= and
// ssh_keys_url= meet it: a missing signature (HTTP 404) is an answer, not a
// crash. Its unread body, discarded, raised an error nobody listened for,
// which went off as the process ended: `controller boot` then exited 1 after
// a good boot, and dracut opened its emergency shell. Only a process of its
// own shows that, so the fetch runs in one.

import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch: (request) => (new URL(request.url).pathname.endsWith(".sig") ? new Response("not found", { status: 404 }) : new Response("echo hi\n")),
});
afterAll(() => server.stop(true));

const controller = join(import.meta.dir, "../../../controller");
const SCRIPT = `
import { DEFAULT_CONFIG } from "${controller}/config/schema.ts";
import { fetchCapped } from "${controller}/boot/http-fetch.ts";
import { LinuxSystem } from "${controller}/system/linux-system.ts";
import { Logger } from "${controller}/system/log.ts";
const system = new LinuxSystem(new Logger({ write() {} }, false), 30_000);
const url = process.argv.at(-1);
console.log(await fetchCapped(system, DEFAULT_CONFIG, url, 1000).then((bytes) => bytes.length));
await fetchCapped(system, DEFAULT_CONFIG, url + ".sig", 1024).catch((error) => console.log(error.message));
`;

test("a 404 with its body unread: a FetchError naming the URL, and the process still ends well", async () => {
  const url = `http://127.0.0.1:${server.port}/run.sh`;
  const child = Bun.spawn([process.execPath, "-e", SCRIPT, url], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect(stdout).toBe(`8\nCannot fetch ${url}.sig: the server answered HTTP 404, expected 200\n`);
  expect(stderr).not.toContain("AbortError");
  expect(exitCode).toBe(0);
});
