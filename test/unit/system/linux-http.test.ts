// LinuxSystem's http (http-get.ts, HTTP/1.1 on a socket of its own) against real servers on 127.0.0.1: what the
// update stages rely on, which the fake cannot show. https is checked against
// a throw-away CA made with openssl.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deadlineProblem, framingOf, parseHead } from "../../../controller/system/http-get.ts";
import { LinuxSystem } from "../../../controller/system/linux-system.ts";
import type { HttpRequestOptions } from "../../../controller/system/system.ts";
import { memoryLogger } from "../../memory-log.ts";
import { makeThrowawayCa } from "../../throwaway-ca.ts";

const BODY = new Uint8Array(300_000).map((_, i) => i % 251);
const GZIPPED = Bun.gzipSync(BODY);
let dir: string;
let plain: ReturnType<typeof Bun.serve>;
let secure: ReturnType<typeof Bun.serve>;
const system = new LinuxSystem(memoryLogger().log, 30_000);

/** A small file's request as http-fetch.ts makes it, with limits short enough for a test. */
function options(changes: Partial<HttpRequestOptions> = {}): HttpRequestOptions {
  return { timeoutMs: 5000, deadline: { kind: "total", totalMs: 10_000 }, caBundle: "/nonexistent", allowRedirectToHttp: false, ...changes };
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
  if (path === "/trickle") {
    // a byte every 100 ms, for ever: never a gap long enough for the gap limit
    return new Response(
      new ReadableStream({
        async pull(controller) {
          await Bun.sleep(100);
          controller.enqueue(new Uint8Array([42]));
        },
      }),
    );
  }
  if (path === "/to-file") return new Response(null, { status: 302, headers: { location: `file://${join(dir, "local-secret")}` } });
  if (path === "/to-plain") return new Response(null, { status: 302, headers: { location: `http://127.0.0.1:${plain.port}/image` } });
  if (path === "/to-secure") return new Response(null, { status: 302, headers: { location: `https://127.0.0.1:${secure.port}/image` } });
  if (path === "/chunked") {
    // a stream of unknown length goes out in chunked encoding, in pieces of odd sizes
    let at = 0;
    return new Response(
      new ReadableStream({
        pull(controller) {
          if (at >= BODY.length) return controller.close();
          controller.enqueue(BODY.subarray(at, at + 12_345));
          at += 12_345;
        },
      }),
    );
  }
  if (path === "/gzip") return new Response(GZIPPED, { headers: { "content-encoding": "gzip" } });
  const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.get("range") ?? "");
  if (range === null) return new Response(BODY);
  const start = Number(range[1]);
  const end = range[2] === "" ? BODY.length - 1 : Number(range[2]);
  return new Response(BODY.subarray(start, end + 1), { status: 206, headers: { "content-range": `bytes ${start}-${end}/${BODY.length}` } });
}

async function body(response: { body: AsyncIterable<Uint8Array> }): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "linux-http-"));
  const file = (name: string) => join(dir, name);
  const ca = await makeThrowawayCa(dir);
  await Bun.write(file("local-secret"), "a file of the machine, not the server's\n");
  plain = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: respond });
  secure = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: Bun.file(ca.serverCertFile), key: Bun.file(ca.serverKeyFile) },
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
    const response = await system.httpGet(`http://127.0.0.1:${plain.port}/image`, options());
    expect(response.status).toBe(200);
    expect(response.headers["content-length"]).toBe(String(BODY.length));
    expect(await body(response)).toEqual(BODY);
  });

  test("a chunked body is decoded to the bytes sent, whatever the pieces", async () => {
    const response = await system.httpGet(`http://127.0.0.1:${plain.port}/chunked`, options());
    expect(response.headers["transfer-encoding"]).toBe("chunked");
    expect(await body(response)).toEqual(BODY);
  });

  test("fromByte sends a Range request", async () => {
    const response = await system.httpGet(`http://127.0.0.1:${plain.port}/image`, options({ fromByte: 1000 }));
    expect(response.status).toBe(206);
    expect(response.headers["content-range"]).toBe(`bytes 1000-${BODY.length - 1}/${BODY.length}`);
    expect(await body(response)).toEqual(BODY.subarray(1000));
  });

  test("toByte asks for a part of the file, also from its first byte (a delta install's request)", async () => {
    const middle = await system.httpGet(`http://127.0.0.1:${plain.port}/image`, options({ fromByte: 1000, toByte: 1999 }));
    expect(middle.status).toBe(206);
    expect(middle.headers["content-range"]).toBe(`bytes 1000-1999/${BODY.length}`);
    expect(await body(middle)).toEqual(BODY.subarray(1000, 2000));
    const start = await system.httpGet(`http://127.0.0.1:${plain.port}/image`, options({ fromByte: 0, toByte: 99 }));
    expect(start.headers["content-range"]).toBe(`bytes 0-99/${BODY.length}`);
    expect(await body(start)).toEqual(BODY.subarray(0, 100));
  });

  test("a body that stalls longer than the time limit throws while it is read", async () => {
    const response = await system.httpGet(`http://127.0.0.1:${plain.port}/stall`, options({ timeoutMs: 500 }));
    await expect(body(response)).rejects.toThrow(`timeout: no more of the body came from http://127.0.0.1:${plain.port}/stall for 0.5 s`);
  });

  test("a server that takes the connection and never answers: a timeout after the time limit", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const began = performance.now();
      await expect(system.httpGet(`http://127.0.0.1:${silent.port}/`, options({ timeoutMs: 500 }))).rejects.toThrow(
        `timeout: no answer came from http://127.0.0.1:${silent.port}/ for 0.5 s`,
      );
      expect(performance.now() - began).toBeGreaterThanOrEqual(450);
    } finally {
      silent.stop(true);
    }
  });

  test("up to 3 redirects are followed, keeping the Range; a 4th is refused", async () => {
    const response = await system.httpGet(`http://127.0.0.1:${plain.port}/redirect3`, options({ fromByte: 10 }));
    expect(response.status).toBe(206);
    expect(await body(response)).toEqual(BODY.subarray(10));
    await expect(system.httpGet(`http://127.0.0.1:${plain.port}/redirect4`, options())).rejects.toThrow(
      `http://127.0.0.1:${plain.port}/redirect4 redirected more than 3 times`,
    );
  });

  test("a body is handed over as the server sent it: a gzip Content-Encoding is not undone, since the signed bytes are what was sent", async () => {
    const response = await system.httpGet(`http://127.0.0.1:${plain.port}/gzip`, options());
    expect(await body(response)).toEqual(new Uint8Array(GZIPPED));
  });

  test("a body discarded half-read, or unread, leaves the next requests working", async () => {
    const url = `http://127.0.0.1:${plain.port}/image`;
    const halfRead = await system.httpGet(url, options());
    for await (const _ of halfRead.body) break;
    await halfRead.discard();
    await (await system.httpGet(url, options())).discard();
    const whole = await system.httpGet(url, options());
    expect(await body(whole)).toEqual(BODY);
    await whole.discard();
  });

  test("https with the CA bundle that signed the server's certificate", async () => {
    const response = await system.httpGet(`https://127.0.0.1:${secure.port}/image`, options({ caBundle: join(dir, "ca.pem") }));
    expect(response.status).toBe(200);
    expect((await body(response)).length).toBe(BODY.length);
  });

  test("https with another CA bundle is refused", async () => {
    const answer = system.httpGet(`https://127.0.0.1:${secure.port}/image`, options({ caBundle: join(dir, "other.pem") }));
    await expect(answer).rejects.toThrow(/certificate/i);
  });

  test("https without a readable CA bundle says which file and which key", async () => {
    const answer = system.httpGet(`https://127.0.0.1:${secure.port}/image`, options({ caBundle: join(dir, "missing.pem") }));
    await expect(answer).rejects.toThrow(`the CA bundle ${join(dir, "missing.pem")} (update.ca_bundle) cannot be read`);
  });

  test("nobody listening: the connection is refused at once", async () => {
    const port = plain.port;
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: respond });
    const deadPort = closed.port;
    await closed.stop(true);
    expect(deadPort).not.toBe(port);
    await expect(system.httpGet(`http://127.0.0.1:${deadPort}/x`, options())).rejects.toThrow(/ECONNREFUSED|refused/i);
  });

  test("a URL that is not http: or https: is refused before anything is read: a client that read file: and data: itself would hand a local file over as the server's", async () => {
    const local = `file://${join(dir, "local-secret")}`;
    await expect(system.httpGet(local, options())).rejects.toThrow(`${local} is not an http:// or https:// URL (its scheme is file:); only those are fetched`);
    await expect(system.httpGet("data:text/plain,hello", options())).rejects.toThrow("data:text/plain,hello is not an http:// or https:// URL (its scheme is data:)");
  });

  test("a redirect to file: is refused, naming the URL and where it led; the local file is not read", async () => {
    const url = `http://127.0.0.1:${plain.port}/to-file`;
    await expect(system.httpGet(url, options())).rejects.toThrow(
      `${url} redirected to file://${join(dir, "local-secret")}: refused, only http:// and https:// URLs are followed (its scheme is file:)`,
    );
  });

  test("https redirected to plain http is refused unless update.allow_redirect_to_http; http to https is followed", async () => {
    const url = `https://127.0.0.1:${secure.port}/to-plain`;
    const withCa = { caBundle: join(dir, "ca.pem") };
    await expect(system.httpGet(url, options(withCa))).rejects.toThrow(
      `${url} redirected to http://127.0.0.1:${plain.port}/image: refused, an https:// URL is not followed to plain http:// unless update.allow_redirect_to_http is true`,
    );
    const allowed = await system.httpGet(url, options({ ...withCa, allowRedirectToHttp: true }));
    expect(await body(allowed)).toEqual(BODY);
    const upgraded = await system.httpGet(`http://127.0.0.1:${plain.port}/to-secure`, options(withCa));
    expect(await body(upgraded)).toEqual(BODY);
  });

  test("a body that trickles (never a gap as long as the gap limit) ends at the request's total deadline", async () => {
    const url = `http://127.0.0.1:${plain.port}/trickle`;
    const began = performance.now();
    const response = await system.httpGet(url, options({ deadline: { kind: "total", totalMs: 1000 } }));
    await expect(body(response)).rejects.toThrow(`deadline: ${url} did not finish within 1 s (timeouts.request_seconds)`);
    const took = performance.now() - began;
    expect(took).toBeGreaterThanOrEqual(1000);
    expect(took).toBeLessThan(2500);
  });

  test("headers that trickle end at the total deadline too, not at the gap limit", async () => {
    const trickler = Bun.listen<{ timer?: ReturnType<typeof setInterval> }>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(socket) {
          socket.write("HTTP/1.1 200 OK\r\n");
          socket.data = { timer: setInterval(() => socket.write("X-Slow: a\r\n"), 100) };
        },
        close(socket) {
          clearInterval(socket.data.timer);
        },
        data() {},
      },
    });
    try {
      const url = `http://127.0.0.1:${trickler.port}/manifest.json`;
      const began = performance.now();
      await expect(system.httpGet(url, options({ deadline: { kind: "total", totalMs: 1000 } }))).rejects.toThrow(
        `deadline: ${url} did not finish within 1 s (timeouts.request_seconds)`,
      );
      expect(performance.now() - began).toBeLessThan(2500);
    } finally {
      trickler.stop(true);
    }
  });

  test("an image download slower than the minimum rate over a window is cut off after that window; a fast one is not", async () => {
    const url = `http://127.0.0.1:${plain.port}/trickle`;
    const rate = { kind: "rate", minBytesPerSecond: 1024, windowMs: 500 } as const;
    const began = performance.now();
    const slow = await system.httpGet(url, options({ deadline: rate }));
    await expect(body(slow)).rejects.toThrow(
      `too slow: ${url} brought 0 KiB in 0.5 s, less than the 1 KiB/s it must average over every 0.5 s (timeouts.image_min_kib_per_second, timeouts.image_window_seconds)`,
    );
    expect(performance.now() - began).toBeLessThan(1500);
    const fast = await system.httpGet(`http://127.0.0.1:${plain.port}/image`, options({ deadline: rate }));
    expect(await body(fast)).toEqual(BODY);
  });
});

describe("deadlineProblem", () => {
  const url = "http://updates.example.org/image";
  const rate = { kind: "rate", minBytesPerSecond: 1000, windowMs: 10_000 } as const;

  test("a total deadline: nothing until it has passed, then the URL, the limit and its key", () => {
    const state = { bytes: 12, windowStartMs: 0, windowStartBytes: 0 };
    expect(deadlineProblem(url, { kind: "total", totalMs: 30_000 }, 1000, state, 31_000)).toBeUndefined();
    expect(deadlineProblem(url, { kind: "total", totalMs: 30_000 }, 1000, state, 31_001)).toBe(
      `deadline: ${url} did not finish within 30 s (timeouts.request_seconds)`,
    );
  });

  test("a rate: judged only once a whole window has passed, on the bytes of that window alone", () => {
    // 9999 bytes in a window of 10 s at 1000 B/s: one short
    expect(deadlineProblem(url, rate, 0, { bytes: 50_000 + 9_999, windowStartMs: 20_000, windowStartBytes: 50_000 }, 29_999)).toBeUndefined();
    expect(deadlineProblem(url, rate, 0, { bytes: 50_000 + 9_999, windowStartMs: 20_000, windowStartBytes: 50_000 }, 30_000)).toContain(
      `too slow: ${url} brought 9.8 KiB in 10 s, less than the 1 KiB/s`,
    );
    expect(deadlineProblem(url, rate, 0, { bytes: 50_000 + 10_000, windowStartMs: 20_000, windowStartBytes: 50_000 }, 30_000)).toBeUndefined();
  });
});

describe("parseHead and framingOf: an answer's head, and how its body ends", () => {
  test("the status and the headers, names in lowercase, a header sent twice joined", () => {
    expect(parseHead("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nVia: a\r\nvia: b")).toEqual({
      status: 206,
      headers: { "content-range": "bytes 5-9/10", via: "a, b" },
    });
    expect(parseHead("HTTP/1.0 200").status).toBe(200);
  });

  test("what is not an HTTP/1.x head is refused, saying what came", () => {
    expect(() => parseHead("SSH-2.0-OpenSSH_9.2")).toThrow('the server did not answer in HTTP/1.1: its answer begins "SSH-2.0-OpenSSH_9.2"');
    expect(() => parseHead("HTTP/2 200")).toThrow("did not answer in HTTP/1.1");
    expect(() => parseHead("HTTP/1.1 200 OK\r\nno colon here")).toThrow('a header line that is not one: "no colon here"');
    expect(() => parseHead("HTTP/1.1 200 OK\r\n: empty name")).toThrow("a header line that is not one");
  });

  test("Content-Length, chunked (which wins over a length), until the connection closes, nothing for 204 and 304", () => {
    const head = (headers: Record<string, string>, status = 200) => ({ status, headers });
    expect(framingOf(head({ "content-length": "4294971393" }))).toEqual({ kind: "length", left: 4294971393 });
    expect(framingOf(head({ "content-length": "7, 7" }))).toEqual({ kind: "length", left: 7 });
    expect(framingOf(head({ "transfer-encoding": "chunked", "content-length": "7" }))).toEqual({ kind: "chunked" });
    expect(framingOf(head({ "transfer-encoding": "gzip" }))).toEqual({ kind: "close" });
    expect(framingOf(head({}))).toEqual({ kind: "close" });
    expect(framingOf(head({ "content-length": "7" }, 304))).toEqual({ kind: "length", left: 0 });
  });

  test("a Content-Length that is not one number of bytes is refused", () => {
    for (const length of ["7, 8", "-1", "1e3", "", "99999999999999999"]) {
      expect(() => framingOf({ status: 200, headers: { "content-length": length } })).toThrow(`the server sent Content-Length ${JSON.stringify(length)}, expected one number of bytes`);
    }
  });
});
