// LinuxSystem's http (http-get.ts, bun's fetch) against real servers on 127.0.0.1: what the
// update stages rely on, which the fake cannot show. https is checked against
// a throw-away CA made with openssl.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LinuxSystem } from "../../controller/linux-system.ts";
import { memoryLogger } from "../memory-log.ts";

const BODY = new Uint8Array(300_000).map((_, i) => i % 251);
const GZIPPED = Bun.gzipSync(BODY);
let dir: string;
let plain: ReturnType<typeof Bun.serve>;
let secure: ReturnType<typeof Bun.serve>;
const system = new LinuxSystem(memoryLogger().log, 30_000);

async function openssl(...args: string[]): Promise<void> {
  const child = Bun.spawn(["openssl", ...args], { stdout: "ignore", stderr: "pipe" });
  if ((await child.exited) !== 0) throw new Error(`openssl ${args.join(" ")}: ${await new Response(child.stderr).text()}`);
}

function respond(request: Request): Response {
  const path = new URL(request.url).pathname;
  if (path === "/stall") {
    // some bytes (so the headers go out), then nothing
    let sent = false;
    return new Response(
      new ReadableStream({
        async pull(controller) {
          if (sent) return Bun.sleep(60_000);
          sent = true;
          controller.enqueue(BODY.subarray(0, 1000));
        },
      }),
    );
  }
  const hops = /^\/redirect(\d+)$/.exec(path);
  if (hops !== null) {
    const left = Number(hops[1]);
    return new Response(null, { status: 302, headers: { location: left === 1 ? "/image" : `/redirect${left - 1}` } });
  }
  if (path === "/gzip") return new Response(GZIPPED, { headers: { "content-encoding": "gzip" } });
  const range = /^bytes=(\d+)-$/.exec(request.headers.get("range") ?? "");
  if (range === null) return new Response(BODY);
  const start = Number(range[1]);
  return new Response(BODY.subarray(start), { status: 206, headers: { "content-range": `bytes ${start}-${BODY.length - 1}/${BODY.length}` } });
}

async function body(response: { body: AsyncIterable<Uint8Array> }): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "linux-http-"));
  const file = (name: string) => join(dir, name);
  await openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test CA", "-keyout", file("ca.key"), "-out", file("ca.pem"));
  await openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", file("server.key"), "-out", file("server.csr"));
  await Bun.write(file("ext.cnf"), "subjectAltName=IP:127.0.0.1\n");
  await openssl("x509", "-req", "-in", file("server.csr"), "-CA", file("ca.pem"), "-CAkey", file("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", file("ext.cnf"), "-out", file("server.pem"));
  await openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other CA", "-keyout", file("other.key"), "-out", file("other.pem"));
  plain = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: respond });
  secure = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: Bun.file(file("server.pem")), key: Bun.file(file("server.key")) },
    fetch: respond,
  });
}, 60_000);

afterAll(async () => {
  await plain?.stop(true);
  await secure?.stop(true);
  await rm(dir, { recursive: true, force: true });
});

describe("LinuxSystem.httpGet", () => {
  test("plain http: status, headers and the whole body; no CA bundle needed", async () => {
    const response = await system.httpGet(`http://127.0.0.1:${plain.port}/image`, { timeoutMs: 5000, caBundle: "/nonexistent" });
    expect(response.status).toBe(200);
    expect(response.headers["content-length"]).toBe(String(BODY.length));
    expect(await body(response)).toEqual(BODY);
  });

  test("fromByte sends a Range request", async () => {
    const response = await system.httpGet(`http://127.0.0.1:${plain.port}/image`, { timeoutMs: 5000, caBundle: "/nonexistent", fromByte: 1000 });
    expect(response.status).toBe(206);
    expect(response.headers["content-range"]).toBe(`bytes 1000-${BODY.length - 1}/${BODY.length}`);
    expect(await body(response)).toEqual(BODY.subarray(1000));
  });

  test("a body that stalls longer than the time limit throws while it is read", async () => {
    const response = await system.httpGet(`http://127.0.0.1:${plain.port}/stall`, { timeoutMs: 500, caBundle: "/nonexistent" });
    await expect(body(response)).rejects.toThrow(`timeout: no more of the body came from http://127.0.0.1:${plain.port}/stall for 0.5 s`);
  });

  test("a server that takes the connection and never answers: a timeout after the time limit", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const began = performance.now();
      await expect(system.httpGet(`http://127.0.0.1:${silent.port}/`, { timeoutMs: 500, caBundle: "/nonexistent" })).rejects.toThrow(
        `timeout: no answer came from http://127.0.0.1:${silent.port}/ for 0.5 s`,
      );
      expect(performance.now() - began).toBeGreaterThanOrEqual(450);
    } finally {
      silent.stop(true);
    }
  });

  test("up to 3 redirects are followed, keeping the Range; a 4th is refused", async () => {
    const response = await system.httpGet(`http://127.0.0.1:${plain.port}/redirect3`, { timeoutMs: 5000, caBundle: "/nonexistent", fromByte: 10 });
    expect(response.status).toBe(206);
    expect(await body(response)).toEqual(BODY.subarray(10));
    await expect(system.httpGet(`http://127.0.0.1:${plain.port}/redirect4`, { timeoutMs: 5000, caBundle: "/nonexistent" })).rejects.toThrow(
      `http://127.0.0.1:${plain.port}/redirect4 redirected more than 3 times`,
    );
  });

  test("a body is handed over as the server sent it: a gzip Content-Encoding is not undone, since the signed bytes are what was sent", async () => {
    const response = await system.httpGet(`http://127.0.0.1:${plain.port}/gzip`, { timeoutMs: 5000, caBundle: "/nonexistent" });
    expect(await body(response)).toEqual(new Uint8Array(GZIPPED));
  });

  test("a body discarded half-read, or unread, leaves the next requests working", async () => {
    const url = `http://127.0.0.1:${plain.port}/image`;
    const options = { timeoutMs: 5000, caBundle: "/nonexistent" };
    const halfRead = await system.httpGet(url, options);
    for await (const _ of halfRead.body) break;
    await halfRead.discard();
    await (await system.httpGet(url, options)).discard();
    const whole = await system.httpGet(url, options);
    expect(await body(whole)).toEqual(BODY);
    await whole.discard();
  });

  test("https with the CA bundle that signed the server's certificate", async () => {
    const response = await system.httpGet(`https://127.0.0.1:${secure.port}/image`, { timeoutMs: 5000, caBundle: join(dir, "ca.pem") });
    expect(response.status).toBe(200);
    expect((await body(response)).length).toBe(BODY.length);
  });

  test("https with another CA bundle is refused", async () => {
    const answer = system.httpGet(`https://127.0.0.1:${secure.port}/image`, { timeoutMs: 5000, caBundle: join(dir, "other.pem") });
    await expect(answer).rejects.toThrow(/certificate/i);
  });

  test("https without a readable CA bundle says which file and which key", async () => {
    const answer = system.httpGet(`https://127.0.0.1:${secure.port}/image`, { timeoutMs: 5000, caBundle: join(dir, "missing.pem") });
    await expect(answer).rejects.toThrow(`the CA bundle ${join(dir, "missing.pem")} (update.ca_bundle) cannot be read`);
  });

  test("nobody listening: the connection is refused at once", async () => {
    const port = plain.port;
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: respond });
    const deadPort = closed.port;
    await closed.stop(true);
    expect(deadPort).not.toBe(port);
    await expect(system.httpGet(`http://127.0.0.1:${deadPort}/x`, { timeoutMs: 5000, caBundle: "/nonexistent" })).rejects.toThrow(/ECONNREFUSED|refused/i);
  });
});
