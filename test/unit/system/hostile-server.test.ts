// The controller's http against a server on 127.0.0.1 that misbehaves on
// purpose, through the real code: LinuxSystem.httpGet (http-get.ts), the
// capped fetch of manifests, signatures, config files and remote content, the
// check stage, and the image download that the install and diskless stages
// share. Each case says what the controller must do: end in bounded time, name
// the URL and why, read nothing local, and leave the boot to go on with the
// local system. The server speaks raw TCP (node:net), so it can lie in ways a
// well-behaved HTTP library would not let it. Limits are a second or so, so
// the whole file takes seconds.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FetchError, fetchCapped } from "../../../controller/boot/http-fetch.ts";
import type { NetworkResult } from "../../../controller/boot/network.ts";
import { runCheckStage } from "../../../controller/boot/update-check.ts";
import { downloadVerifiedImage, newCounters, wholeImage } from "../../../controller/boot/image-download.ts";
import { type Config, DEFAULT_CONFIG } from "../../../controller/config/schema.ts";
import { LinuxSystem } from "../../../controller/system/linux-system.ts";
import { MANIFEST_MAX_BYTES, manifestPath } from "../../../controller/update/manifest.ts";
import { sha512Hex } from "../../../controller/update/signing.ts";
import { memoryLogger } from "../../memory-log.ts";

/** What one connection asked for. */
interface RawRequest {
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** How the server answers the requests whose path starts with /NAME/. */
type Behaviour = (socket: Socket, request: RawRequest) => void;

const IMAGE = new Uint8Array(200_000).map((_, i) => (i * 7) % 251);
const IMAGE_SIGNED = { size: IMAGE.length, sha512: sha512Hex(IMAGE) };
/** A key nobody holds: the check never gets as far as a signature here. */
const TRUSTED_KEY = Buffer.alloc(32, 7).toString("base64");
const NETWORK_UP: NetworkResult = { status: "up", macs: [], detail: "test" };

/** Limits of a second, so that every case ends within a few. */
const config: Config = {
  ...DEFAULT_CONFIG,
  timeouts: { ...DEFAULT_CONFIG.timeouts, server_seconds: 5, request_seconds: 1, image_min_kib_per_second: 1, image_window_seconds: 1 },
  update: { ...DEFAULT_CONFIG.update, trusted_keys: [TRUSTED_KEY], resume_attempts: 0 },
};

const system = new LinuxSystem(memoryLogger().log, 30_000);
let server: Server;
const sockets = new Set<Socket>();
/** every request the server got, as "PATH" or "PATH RANGE" */
const requests: string[] = [];
let port = 0;
let dir = "";

function url(path: string): string {
  return `http://127.0.0.1:${port}${path}`;
}

function head(status: string, headers: Record<string, string>): string {
  return `HTTP/1.1 ${status}\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("")}\r\n`;
}

/** A whole, honest answer on a connection of its own. */
function answer(socket: Socket, status: string, headers: Record<string, string>, body: Uint8Array | string = ""): void {
  const bytes = Buffer.from(body);
  socket.end(Buffer.concat([Buffer.from(head(status, { "content-length": String(bytes.length), connection: "close", ...headers })), bytes]));
}

function redirect(status: string, location: string): Behaviour {
  return (socket) => answer(socket, status, { location });
}

/** `send` every `ms` until the client goes away. */
function every(socket: Socket, ms: number, send: () => void): void {
  const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : send()), ms);
  socket.on("close", () => clearInterval(timer));
}

/** `chunk` as fast as the client takes it, for ever. */
function flood(socket: Socket, chunk: Uint8Array): void {
  const pump = () => {
    while (!socket.destroyed && socket.write(chunk));
    if (!socket.destroyed) socket.once("drain", pump);
  };
  pump();
}

function rangeStart(request: RawRequest): number | undefined {
  const match = /^bytes=(\d+)-$/.exec(request.headers["range"] ?? "");
  return match === null ? undefined : Number(match[1]);
}

/** The image as a static server sends it: 206 from the Range's start, else 200. */
function serveImage(socket: Socket, request: RawRequest): void {
  const start = rangeStart(request);
  if (start === undefined) return answer(socket, "200 OK", {}, IMAGE);
  answer(socket, "206 Partial Content", { "content-range": `bytes ${start}-${IMAGE.length - 1}/${IMAGE.length}` }, IMAGE.subarray(start));
}

/** 16 MiB of zeros gzipped to a few KiB: inflated, it would pass every cap. */
const GZIP_BOMB = Bun.gzipSync(new Uint8Array(16 << 20));

const LOCAL_FILE = () => join(dir, "local-secret");
const FIFO = () => join(dir, "fifo");
let chunkCutServed = false;

const BEHAVIOURS: Record<string, Behaviour> = {
  "headers-trickle": (socket) => {
    socket.write("HTTP/1.1 200 OK\r\n");
    every(socket, 100, () => socket.write("X-Slow: a\r\n"));
  },
  "body-trickle": (socket) => {
    socket.write(head("200 OK", { "content-length": "1000" }));
    every(socket, 100, () => socket.write("x"));
  },
  slowloris: (socket) => {
    socket.write(head("200 OK", { "transfer-encoding": "chunked" }));
    every(socket, 1000, () => socket.write("1\r\nx\r\n"));
  },
  silent: () => {},
  endless: (socket) => {
    socket.write(head("200 OK", { "transfer-encoding": "chunked" }));
    const chunk = `4000\r\n${"x".repeat(0x4000)}\r\n`;
    flood(socket, Buffer.from(chunk));
  },
  "length-too-long": (socket) => {
    socket.end(head("200 OK", { "content-length": "1000" }) + "x".repeat(500));
  },
  "length-too-short": (socket) => {
    // 10 bytes announced, then 500 and a whole second answer: none of it may leak into another request
    socket.end(head("200 OK", { "content-length": "10" }) + "0123456789" + "y".repeat(490) + head("200 OK", { "content-length": "5" }) + "EVIL!");
  },
  "length-over-cap": (socket) => {
    socket.write(head("200 OK", { "content-length": "10000000" }));
    flood(socket, Buffer.alloc(65536, 120));
  },
  "chunk-cut": (socket) => {
    socket.end(head("200 OK", { "transfer-encoding": "chunked" }) + "5\r\nhello\r\n400\r\nonly a part of the chunk");
  },
  "huge-header": (socket) => {
    socket.end(head("200 OK", { "x-big": "a".repeat(2_000_000), "content-length": "2" }) + "ok");
  },
  "endless-header": (socket) => {
    socket.write("HTTP/1.1 200 OK\r\nX-Endless: ");
    flood(socket, Buffer.alloc(65536, 97));
  },
  "many-headers": (socket) => {
    const headers = Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`x-h${i}`, "v"]));
    socket.end(head("200 OK", { ...headers, "content-length": "2" }) + "ok");
  },
  "not-http": (socket) => {
    socket.end("SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n");
  },
  "continue-forever": (socket) => {
    every(socket, 50, () => socket.write("HTTP/1.1 100 Continue\r\n\r\n"));
  },
  gzip: (socket) => {
    answer(socket, "200 OK", { "content-encoding": "gzip" }, GZIP_BOMB);
  },
  "loop-a": redirect("302 Found", "/loop-b/x"),
  "loop-b": redirect("302 Found", "/loop-a/x"),
  "to-file": (socket) => answer(socket, "302 Found", { location: `file://${LOCAL_FILE()}` }),
  "to-fifo": (socket) => answer(socket, "307 Temporary Redirect", { location: `file://${FIFO()}` }),
  "to-kmsg": (socket) => answer(socket, "308 Permanent Redirect", { location: "file:///dev/kmsg" }),
  "to-data": redirect("302 Found", "data:application/json,{}"),
  "to-ftp": redirect("302 Found", "ftp://127.0.0.1/manifest.json"),
  "to-blob": redirect("302 Found", "blob:http://127.0.0.1/0b5e8a8e-59c5-4c8b-9b7e-1f7b2c1d9e00"),
  "to-unix": redirect("302 Found", "http+unix://%2Frun%2Fdocker.sock/info"),
  "to-unix-scheme": redirect("302 Found", "unix:///run/dbus/system_bus_socket"),
  "to-s3": redirect("302 Found", "s3://bucket/manifest.json"),
  "to-javascript": redirect("301 Moved Permanently", "javascript:alert(1)"),
  "to-nonsense": redirect("302 Found", "http://[::1"),
  "to-huge": redirect("302 Found", `file:///${"a".repeat(50_000)}`),
  // the update server's manifest sent somewhere local
  "repo-to-file": (socket, request) =>
    request.path.endsWith("/manifest.json") ? answer(socket, "302 Found", { location: `file://${LOCAL_FILE()}` }) : answer(socket, "404 Not Found", {}),
  "repo-trickle": (socket) => {
    socket.write(head("200 OK", { "content-length": "4000" }));
    every(socket, 100, () => socket.write("{"));
  },
  "image-trickle": (socket) => {
    socket.write(head("200 OK", { "content-length": String(IMAGE.length) }));
    let sent = 0;
    every(socket, 100, () => socket.write(IMAGE.subarray(sent, ++sent)));
  },
  "image-wrong-range": (socket) => {
    // a resume answered from the wrong place: bytes the partial file does not end with
    answer(socket, "206 Partial Content", { "content-range": `bytes 0-${IMAGE.length - 1}/${IMAGE.length}` }, IMAGE);
  },
  "image-ignores-range": (socket) => answer(socket, "200 OK", {}, IMAGE),
  "image-endless": (socket) => {
    socket.write(head("200 OK", { "transfer-encoding": "chunked" }));
    socket.write(`${IMAGE.length.toString(16)}\r\n`);
    socket.write(IMAGE);
    socket.write("\r\n");
    flood(socket, Buffer.from(`4000\r\n${"z".repeat(0x4000)}\r\n`));
  },
  "image-chunk-cut": (socket, request) => {
    if (chunkCutServed) return serveImage(socket, request);
    chunkCutServed = true;
    socket.write(head("200 OK", { "transfer-encoding": "chunked" }));
    // a whole chunk, then (once the client has it) half of the next one
    const whole = IMAGE.subarray(0, 60_000);
    socket.write(Buffer.concat([Buffer.from(`${whole.length.toString(16)}\r\n`), whole, Buffer.from("\r\n")]));
    setTimeout(() => socket.end(Buffer.concat([Buffer.from(`${(60_000).toString(16)}\r\n`), IMAGE.subarray(60_000, 90_000)])), 200);
  },
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hostile-server-"));
  await writeFile(LOCAL_FILE(), '{"a file of the machine": "not the server\'s"}\n');
  const mkfifo = Bun.spawnSync(["mkfifo", FIFO()]);
  if (mkfifo.exitCode !== 0) throw new Error(`mkfifo ${FIFO()}: ${mkfifo.stderr.toString()}`);
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let received = "";
    const onData = (data: Buffer) => {
      received += data.toString("latin1");
      const end = received.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      const [requestLine = "", ...lines] = received.slice(0, end).split("\r\n");
      const path = requestLine.split(" ")[1] ?? "";
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(":")).trim().toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
      requests.push(headers["range"] === undefined ? path : `${path} ${headers["range"]}`);
      const behaviour = BEHAVIOURS[path.split("/")[1] ?? ""];
      if (behaviour === undefined) answer(socket, "404 Not Found", {}, "no such behaviour");
      else behaviour(socket, { path, headers });
    };
    socket.on("data", onData);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

/** What fetchCapped made of `path`, and how long it took. */
async function fetchSmall(path: string, maxBytes = MANIFEST_MAX_BYTES): Promise<{ bytes?: Uint8Array; error?: FetchError; ms: number }> {
  const began = performance.now();
  try {
    const bytes = await fetchCapped(system, config, url(path), maxBytes);
    return { bytes, ms: performance.now() - began };
  } catch (error) {
    if (!(error instanceof FetchError)) throw error;
    return { error, ms: performance.now() - began };
  }
}

/**
 * Well under timeouts.server_seconds (5 s here): a refusal that took longer
 * came from the gap timer or a hang, not from the check under test. Generous,
 * because the suite runs beside VMs on a busy machine; the message says why.
 */
const REFUSED_WITHIN_MS = 4000;

/** fetchCapped refused `path` in bounded time, with a message that names its URL and contains `why`. */
async function expectRefused(path: string, why: string | RegExp): Promise<string> {
  const { bytes, error, ms } = await fetchSmall(path);
  expect(bytes).toBeUndefined();
  expect(error?.message).toStartWith(`Cannot fetch ${url(path)}: `);
  expect(error?.message).toMatch(why);
  expect(ms).toBeLessThan(REFUSED_WITHIN_MS);
  return error?.message ?? "";
}

const DEADLINE = "did not finish within 1 s (timeouts.request_seconds)";

function escaped(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

describe("small files: a manifest, signature, config file or remote content (timeouts.request_seconds = 1)", () => {
  test("headers that trickle in, a line every 100 ms: ended at the deadline", async () => {
    await expectRefused("/headers-trickle/manifest.json", DEADLINE);
  });

  test("a body that trickles, a byte every 100 ms: ended at the deadline", async () => {
    await expectRefused("/body-trickle/manifest.json", DEADLINE);
  });

  test("slowloris, one byte a second in chunked encoding (each gap shorter than timeouts.server_seconds): ended at the deadline", async () => {
    await expectRefused("/slowloris/manifest.json", DEADLINE);
  });

  test("a server that takes the connection and says nothing: ended at the deadline, before timeouts.server_seconds", async () => {
    await expectRefused("/silent/manifest.json", DEADLINE);
  });

  test("100 Continue, again and again, never an answer: ended in bounded time", async () => {
    await expectRefused("/continue-forever/manifest.json", /./);
  });

  test("an endless body at full speed: refused at the cap", async () => {
    await expectRefused("/endless/manifest.json", `the server sent more than the ${MANIFEST_MAX_BYTES} bytes allowed`);
  });

  test("a Content-Length over the cap: refused before the body is read", async () => {
    await expectRefused("/length-over-cap/manifest.json", `the server announced 10000000 bytes, more than the ${MANIFEST_MAX_BYTES} allowed`);
  });

  test("a Content-Length longer than the body, then the connection closed: a broken connection, not a short file", async () => {
    await expectRefused("/length-too-long/manifest.json", /the body stopped after \d+ bytes: the server closed the connection after \d+ bytes of the body, before its end/);
  });

  test("a Content-Length shorter than the body: exactly the bytes announced, and what followed never reaches another request", async () => {
    const { bytes } = await fetchSmall("/length-too-short/manifest.json");
    expect(new TextDecoder().decode(bytes)).toBe("0123456789");
    const next = await fetchSmall("/length-too-short/again.json");
    expect(new TextDecoder().decode(next.bytes)).toBe("0123456789");
  });

  test("a connection closed in the middle of a chunk: a broken connection", async () => {
    await expectRefused("/chunk-cut/manifest.json", /the body stopped after \d+ bytes: the server closed the connection after \d+ bytes of the body, before its end/);
  });

  test("a 2 MB header, an endless header, 50000 headers: refused at once, memory bounded by the 64 KiB header limit", async () => {
    for (const path of ["/huge-header/manifest.json", "/endless-header/manifest.json", "/many-headers/manifest.json"]) {
      await expectRefused(path, "the server's headers are larger than 64 KiB");
    }
  }, 15_000);

  test("something that is not HTTP at all: refused", async () => {
    await expectRefused("/not-http/manifest.json", "the server did not answer in HTTP/1.1");
  });

  test("a gzip Content-Encoding is not undone: the bytes as sent (a few KiB), never the 16 MiB they inflate to", async () => {
    const { bytes } = await fetchSmall("/gzip/manifest.json");
    expect(bytes).toEqual(new Uint8Array(GZIP_BOMB));
  });
});

describe("redirects: only http: and https:, at most 3", () => {
  test("a redirect loop: refused after 3 hops", async () => {
    const before = requests.length;
    await expectRefused("/loop-a/x", `${url("/loop-a/x")} redirected more than 3 times`);
    expect(requests.slice(before)).toEqual(["/loop-a/x", "/loop-b/x", "/loop-a/x", "/loop-b/x"]);
  });

  const refusedTargets: [string, string][] = [
    ["to-file", "file:"],
    ["to-fifo", "file:"],
    ["to-kmsg", "file:"],
    ["to-data", "data:"],
    ["to-ftp", "ftp:"],
    ["to-blob", "blob:"],
    ["to-unix", "http+unix:"],
    ["to-unix-scheme", "unix:"],
    ["to-s3", "s3:"],
    ["to-javascript", "javascript:"],
  ];
  for (const [name, scheme] of refusedTargets) {
    test(`a redirect to ${scheme} (${name}): refused, naming the URL, and nothing local is opened`, async () => {
      // a FIFO or /dev/kmsg, once opened, would block the read for good: refused at once shows it was not
      await expectRefused(`/${name}/manifest.json`, `refused, only http:// and https:// URLs are followed (its scheme is ${scheme})`);
    });
  }

  test("a Location that is not a URL: refused, saying so", async () => {
    await expectRefused("/to-nonsense/x", `${url("/to-nonsense/x")} redirected to "http://[::1", which is not a URL`);
  });

  test("a Location of 50 KB: refused, and the message shows only its start", async () => {
    const message = await expectRefused("/to-huge/x", "refused, only http:// and https:// URLs are followed");
    expect(message.length).toBeLessThan(1000);
  });
});

describe("the check stage: the boot goes on with the local system", () => {
  test("a manifest redirected to a local file: the server counts as unreachable, and no sha512 of the file goes back to it", async () => {
    const server = url("/repo-to-file/");
    const before = requests.length;
    const { log } = memoryLogger();
    const check = await runCheckStage(system, log, { ...config, update: { ...config.update, servers: [server] } }, NETWORK_UP, { installed: "1.0", floor: undefined }, [TRUSTED_KEY]);
    expect(check.decision).toBe("unreachable");
    expect(check.reason).toContain("booting the local system");
    expect(check.attempts[0]?.detail).toBe(
      `Cannot fetch ${server}${manifestPath("stable")}: ${server}${manifestPath("stable")} redirected to file://${LOCAL_FILE()}: refused, only http:// and https:// URLs are followed (its scheme is file:)`,
    );
    // the signature is named by the manifest's sha512: asking for it would tell the server the file's hash
    const localSha512 = sha512Hex(new Uint8Array(await readFile(LOCAL_FILE())));
    expect(requests.slice(before)).toEqual([`/repo-to-file/${manifestPath("stable")}`]);
    expect(requests.some((request) => request.includes(localSha512))).toBe(false);
  });

  test("a manifest that trickles: unreachable within timeouts.request_seconds, and the reason names the URL and the key", async () => {
    const server = url("/repo-trickle/");
    const began = performance.now();
    const { log } = memoryLogger();
    const check = await runCheckStage(system, log, { ...config, update: { ...config.update, servers: [server] } }, NETWORK_UP, { installed: "1.0", floor: undefined }, [TRUSTED_KEY]);
    expect(performance.now() - began).toBeLessThan(REFUSED_WITHIN_MS);
    expect(check.decision).toBe("unreachable");
    expect(check.reason).toContain("booting the local system");
    expect(check.attempts[0]?.detail).toMatch(
      new RegExp(`^Cannot fetch ${escaped(server + manifestPath("stable"))}: the body stopped after \\d+ bytes: deadline: ${escaped(server + manifestPath("stable"))} ${escaped(DEADLINE)}$`),
    );
  });
});

describe("images, as the install and diskless stages download them (1 KiB/s over 1 s windows, no resumes unless said)", () => {
  async function download(path: string, options: { offset?: number; resumes?: number } = {}) {
    const partial = join(dir, `${path.replaceAll("/", "_")}.partial`);
    const offset = options.offset ?? 0;
    await writeFile(partial, IMAGE.subarray(0, offset));
    const { log, sink } = memoryLogger();
    const counters = newCounters();
    const withResumes = { ...config, update: { ...config.update, resume_attempts: options.resumes ?? 0 } };
    const began = performance.now();
    const check = await downloadVerifiedImage(system, log, withResumes, wholeImage(url(path), IMAGE_SIGNED), partial, IMAGE_SIGNED, "a test folder", offset, counters);
    return { check, ms: performance.now() - began, partial, counters, console: sink.text() };
  }

  test("an image that trickles, a byte every 100 ms: cut off after one window, the install fails and says why", async () => {
    const { check, ms } = await download("/image-trickle/image.squashfs");
    expect(ms).toBeLessThan(REFUSED_WITHIN_MS);
    expect(check).toEqual({
      ok: false,
      problem:
        `the download of ${url("/image-trickle/image.squashfs")} broke: too slow: ${url("/image-trickle/image.squashfs")} brought 0 KiB in 1 s, ` +
        "less than the 1 KiB/s it must average over every 1 s (timeouts.image_min_kib_per_second, timeouts.image_window_seconds); gave up after 0 resumes (update.resume_attempts)",
    });
  });

  test("a resume answered 206 from the wrong place (Content-Range not at the partial file's end): refused", async () => {
    const { check } = await download("/image-wrong-range/image.squashfs", { offset: 1000 });
    expect(check.ok).toBe(false);
    expect(!check.ok && check.problem).toContain(`the server answered a Range request for byte 1000 with bytes 0-${IMAGE.length - 1}/${IMAGE.length}`);
  });

  test("a resume answered 200 (Range ignored): the download starts over and the image verifies", async () => {
    const { check, partial, console } = await download("/image-ignores-range/image.squashfs", { offset: 1000 });
    expect(check).toEqual({ ok: true });
    expect(new Uint8Array(await readFile(partial))).toEqual(IMAGE);
    expect(console).toContain("does not resume downloads or send parts (it answered 200 to a Range request): starting over with the whole image");
  });

  test("an image that goes on past its signed size: refused at the signed size", async () => {
    const { check, ms } = await download("/image-endless/image.squashfs");
    expect(ms).toBeLessThan(REFUSED_WITHIN_MS);
    expect(check).toEqual({ ok: false, problem: `the server sent more than the ${IMAGE.length} bytes the manifest signs for ${url("/image-endless/image.squashfs")}` });
  });

  test("an image redirected to file:: refused at once, never resumed (asking again gets the same refusal)", async () => {
    const before = requests.length;
    const { check, counters, console } = await download("/to-file/image.squashfs", { resumes: 3 });
    expect(check).toEqual({
      ok: false,
      problem:
        `the download of ${url("/to-file/image.squashfs")} was refused: ${url("/to-file/image.squashfs")} redirected to file://${LOCAL_FILE()}: ` +
        "refused, only http:// and https:// URLs are followed (its scheme is file:)",
    });
    expect(counters.resumes).toBe(0);
    expect(requests.slice(before)).toEqual(["/to-file/image.squashfs"]);
    expect(console).not.toContain("resuming");
  });

  test("a connection closed in the middle of a chunk: resumed with a Range request, and the image verifies", async () => {
    const before = requests.length;
    // fetch hands over what came of the cut chunk, or not, as the packets fall: the resume starts at either
    const { check, counters } = await download("/image-chunk-cut/image.squashfs", { resumes: 1 });
    expect(check).toEqual({ ok: true });
    expect(counters.resumes).toBe(1);
    expect(requests.slice(before)).toEqual(["/image-chunk-cut/image.squashfs", expect.stringMatching(/^\/image-chunk-cut\/image\.squashfs bytes=(60000|90000)-$/)]);
  });
});
