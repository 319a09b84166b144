// The development update server over a temporary repository, through real
// HTTP on a free port: what a controller downloading an image relies on
// (lengths, validators, ranges) and what must never be served.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RepoHandler, type RepoServer, startRepoServer } from "../../../controller/update/dev-server.ts";
import { cutOff } from "../../cut-off.ts";

const MANIFEST = '{"format":1,"channel":"stable"}\n';
const DIGITS = "0123456789";
const SECRET = "TOP-SECRET outside the repository";
const LARGE_SIZE = 20 * 1024 * 1024;

let dir: string;
let repo: string;
let server: RepoServer;
const accessLog: string[] = [];
let large: Uint8Array<ArrayBuffer>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "serve-"));
  repo = join(dir, "repo");
  await mkdir(join(repo, "channels/stable/signatures"), { recursive: true });
  await mkdir(join(repo, "images"));
  await mkdir(join(repo, "config"));
  await writeFile(join(repo, "channels/stable/manifest.json"), MANIFEST);
  await writeFile(join(repo, "channels/stable/signatures/abc.sig"), "c2lnbmF0dXJl\n");
  await writeFile(join(repo, "config/fleet.toml"), "[update]\n");
  await writeFile(join(repo, "images/digits.squashfs"), DIGITS);
  large = new Uint8Array(LARGE_SIZE);
  for (let index = 0; index < large.length; index++) large[index] = (index * 31 + (index >> 16)) & 0xff;
  await writeFile(join(repo, "images/large.squashfs"), large);
  await writeFile(join(dir, "secret.txt"), SECRET);
  await symlink("../../secret.txt", join(repo, "images/escape.squashfs"));
  await symlink("fleet.toml", join(repo, "config/alias.toml"));
  server = startRepoServer({ repo, port: 0, accessLog: (line) => accessLog.push(line) });
});

afterAll(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

function get(path: string, headers: Record<string, string> = {}, method = "GET"): Promise<Response> {
  return fetch(new URL(path, server.url), { method, headers });
}

/** A request line sent as written: fetch would normalise "..", "%2e%2e" and backslashes away before sending. */
function rawGet(target: string): Promise<string> {
  return new Promise((resolveText, reject) => {
    const socket = connect(server.port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => resolveText(Buffer.concat(chunks).toString("latin1")));
    socket.on("error", reject);
    socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
  });
}

describe("serving files", () => {
  test("GET: the bytes, their length and type, validators and Accept-Ranges", async () => {
    const response = await get("channels/stable/manifest.json");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-length")).toBe(String(MANIFEST.length));
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(response.headers.get("accept-ranges")).toBe("bytes");
    expect(response.headers.get("etag")).toMatch(/^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$/);
    expect(response.headers.get("last-modified")).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    expect(await response.text()).toBe(MANIFEST);

    expect((await get("channels/stable/signatures/abc.sig")).headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect((await get("config/fleet.toml")).headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect((await get("images/digits.squashfs")).headers.get("content-type")).toBe("application/octet-stream");
    // a symlink that stays inside the repository is followed
    expect(await (await get("config/alias.toml")).text()).toBe("[update]\n");
  });

  test("HEAD: the GET headers without a body", async () => {
    const response = await get("images/digits.squashfs", {}, "HEAD");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-length")).toBe("10");
    expect(response.headers.get("etag")).not.toBeNull();
    expect(await response.text()).toBe("");
  });

  test("ETag: If-None-Match with the current tag (weak or strong, or *) gets 304, another tag the file", async () => {
    const etag = (await get("channels/stable/manifest.json")).headers.get("etag") ?? "";
    for (const value of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
      const response = await get("channels/stable/manifest.json", { "If-None-Match": value });
      expect(response.status).toBe(304);
      expect(response.headers.get("etag")).toBe(etag);
      expect(await response.text()).toBe("");
    }
    expect((await get("channels/stable/manifest.json", { "If-None-Match": '"other"' })).status).toBe(200);
  });

  test("Last-Modified: If-Modified-Since at or after it gets 304, before it the file; If-None-Match wins", async () => {
    const lastModified = (await get("images/digits.squashfs")).headers.get("last-modified") ?? "";
    expect((await get("images/digits.squashfs", { "If-Modified-Since": lastModified })).status).toBe(304);
    expect((await get("images/digits.squashfs", { "If-Modified-Since": new Date(Date.now() + 60_000).toUTCString() })).status).toBe(304);
    expect((await get("images/digits.squashfs", { "If-Modified-Since": "Thu, 01 Jan 2015 00:00:00 GMT" })).status).toBe(200);
    expect((await get("images/digits.squashfs", { "If-Modified-Since": "not a date" })).status).toBe(200);
    const changed = await get("images/digits.squashfs", { "If-Modified-Since": lastModified, "If-None-Match": '"other"' });
    expect(changed.status).toBe(200);
  });
});

describe("Range requests", () => {
  async function range(value: string, extra: Record<string, string> = {}): Promise<[number, string | null, string]> {
    const response = await get("images/digits.squashfs", { Range: value, ...extra });
    return [response.status, response.headers.get("content-range"), await response.text()];
  }

  test("one range: a-b, a-, -n, clamped at the end of the file", async () => {
    expect(await range("bytes=2-4")).toEqual([206, "bytes 2-4/10", "234"]);
    expect(await range("bytes=7-")).toEqual([206, "bytes 7-9/10", "789"]);
    expect(await range("bytes=-3")).toEqual([206, "bytes 7-9/10", "789"]);
    expect(await range("bytes=5-999")).toEqual([206, "bytes 5-9/10", "56789"]);
    expect(await range("bytes=-20")).toEqual([206, "bytes 0-9/10", DIGITS]);
    expect(await range("bytes=9-9")).toEqual([206, "bytes 9-9/10", "9"]);
    expect((await get("images/digits.squashfs", { Range: "bytes=2-4" })).headers.get("content-length")).toBe("3");
  });

  test("unsatisfiable ranges get 416 with the file's size", async () => {
    for (const value of ["bytes=10-", "bytes=10-20", "bytes=-0", "bytes=99999999999999999999999-"]) {
      const [status, contentRange] = await range(value);
      expect([value, status, contentRange]).toEqual([value, 416, "bytes */10"]);
    }
  });

  test("several ranges, other units and invalid ranges get the whole file", async () => {
    for (const value of ["bytes=0-1,4-5", "items=0-1", "bytes=3-1", "bytes=-", "bytes=a-b"]) {
      expect([value, ...(await range(value))]).toEqual([value, 200, null, DIGITS]);
    }
  });

  test("If-Range: the range only while the tag or date still matches; HEAD ignores Range", async () => {
    const first = await get("images/digits.squashfs");
    const etag = first.headers.get("etag") ?? "";
    const lastModified = first.headers.get("last-modified") ?? "";
    expect(await range("bytes=8-", { "If-Range": etag })).toEqual([206, "bytes 8-9/10", "89"]);
    expect(await range("bytes=8-", { "If-Range": lastModified })).toEqual([206, "bytes 8-9/10", "89"]);
    expect(await range("bytes=8-", { "If-Range": '"changed"' })).toEqual([200, null, DIGITS]);
    // a weak tag never matches If-Range
    expect(await range("bytes=8-", { "If-Range": `W/${etag}` })).toEqual([200, null, DIGITS]);
    expect(await range("bytes=8-", { "If-Range": "Thu, 01 Jan 2015 00:00:00 GMT" })).toEqual([200, null, DIGITS]);
    const head = await get("images/digits.squashfs", { Range: "bytes=2-4" }, "HEAD");
    expect([head.status, head.headers.get("content-length")]).toEqual([200, "10"]);
  });

  test("a 20 MiB image arrives intact, whole and resumed from the middle", async () => {
    const whole = await get("images/large.squashfs");
    expect(whole.headers.get("content-length")).toBe(String(LARGE_SIZE));
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(large);
    const half = LARGE_SIZE / 2 + 7;
    const rest = await get("images/large.squashfs", { Range: `bytes=${half}-` });
    expect(rest.status).toBe(206);
    expect(new Uint8Array(await rest.arrayBuffer())).toEqual(large.subarray(half));
  });
});

describe("what is refused", () => {
  test("paths that climb out of the repository, or through a symlink, never reach the file", async () => {
    const targets = [
      "/../secret.txt",
      "/channels/../../secret.txt",
      "/%2e%2e/secret.txt",
      "/..%2Fsecret.txt",
      "/channels%2F..%2F..%2Fsecret.txt",
      "/images/%2E%2E%2F%2E%2E%2Fsecret.txt",
      "/..%5Csecret.txt",
      "/images/escape.squashfs",
      "/images/digits.squashfs%00.json",
      "/%zz",
    ];
    for (const target of targets) {
      const reply = await rawGet(target);
      expect([target, reply.split("\r\n")[0]]).toEqual([target, expect.stringMatching(/^HTTP\/1\.1 40[04] /)]);
      expect(reply).not.toContain("TOP-SECRET");
      expect(reply).not.toContain(dir);
    }
  });

  test("folders are not listed", async () => {
    for (const path of ["", "channels", "channels/", "channels/stable/", "images"]) {
      const response = await get(path);
      expect([path, response.status]).toEqual([path, 404]);
      expect(await response.text()).toBe("Not found\n");
    }
  });

  test("only GET and HEAD: the others get 405 with Allow", async () => {
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS"]) {
      const response = await get("channels/stable/manifest.json", {}, method);
      expect([method, response.status, response.headers.get("allow")]).toEqual([method, 405, "GET, HEAD"]);
    }
    expect(await (await get("channels/stable/manifest.json")).text()).toBe(MANIFEST);
  });
});

test("one access log line per request: address, method, path, status, bytes, duration", async () => {
  accessLog.length = 0;
  await (await get("channels/stable/manifest.json")).text();
  await get("images/digits.squashfs", {}, "HEAD");
  await (await get("images/digits.squashfs", { Range: "bytes=2-4" })).text();
  await (await get("images/missing.squashfs")).text();
  const time = String.raw`\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\]`;
  expect(accessLog).toHaveLength(4);
  const [manifest, head, part, missing] = accessLog;
  expect(manifest).toMatch(new RegExp(String.raw`^127\.0\.0\.1 ${time} "GET /channels/stable/manifest\.json" 200 ${MANIFEST.length} \d+ms$`));
  expect(head).toMatch(new RegExp(String.raw`^127\.0\.0\.1 ${time} "HEAD /images/digits\.squashfs" 200 0 \d+ms$`));
  expect(part).toMatch(/"GET \/images\/digits\.squashfs" 206 3 \d+ms$/);
  expect(missing).toMatch(/"GET \/images\/missing\.squashfs" 404 10 \d+ms$/);
});

describe("wrap: a test server that drops the connection part way through an image", () => {
  /**
   * Re-streams a response and resets the connection after `limit` bytes.
   * Two things matter in Bun 1.4.5: the error must come a moment after the
   * last bytes were handed over (erroring in the same turn resets the
   * connection before they, or even the headers, are written, and a reset
   * also discards what the client has not read yet), and controller.error()
   * gets no reason (Bun prints a reason to stderr). A re-streamed body goes
   * out chunked: Bun drops the Content-Length, Content-Range stays.
   */
  function cutAfter(response: Response, limit: number): Response {
    if (response.body === null) return response;
    return new Response(cutOff(response.body, limit, 250), { status: response.status, headers: response.headers });
  }

  test("the client gets the first bytes and then an error, not a short clean body", async () => {
    const limit = 3_000_017;
    const wrap = (inner: RepoHandler): RepoHandler => async (request, peers) => cutAfter(await inner(request, peers), limit);
    const cutting = startRepoServer({ repo, port: 0, wrap });
    try {
      const response = await fetch(`${cutting.url}images/large.squashfs`);
      expect(response.status).toBe(200);
      let received = 0;
      const reading = (async () => {
        for await (const chunk of response.body ?? []) received += chunk.length;
      })();
      await expect(reading).rejects.toThrow(/ECONNRESET|closed/);
      expect(received).toBe(limit);
    } finally {
      await cutting.stop();
    }
  });
});
