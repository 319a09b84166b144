// Install throughput and memory, natively on this host, no QEMU. The
// controller's own check and install stages (bench/install-entry.ts) fetch
// images of 256 MiB, 1 GiB and 4 GiB + 4097 bytes (past 2^32) from
// `controller serve` on 127.0.0.1 into a spare slot: an ext4 BACKUPFS on a
// loop device backed by RAM, so a disk's speed does not stand in for the
// controller's. Side by side, in interleaved rounds: the same image fetched
// with `curl | tee TARGET | sha512sum` into the same filesystem, and
// `openssl dgst` -sha512 and -sha256 over the image file (the hashing limit;
// the install checks a chunk's sha256 where the CPU has the SHA extensions,
// its sha512 where not: update/chunks.ts). Both
// manifest kinds are measured: with chunk hashes (what publish writes) and
// without (as publish wrote them before chunks). A 16 MiB image, installed
// first in every round, shows what any install costs once, whatever its size.
//
// While working on the install, a shorter run: BENCH_INSTALL_SIZES=2 measures
// only the first two sizes (no image past 2^32), BENCH_INSTALL_ROUNDS=1 one
// round; BENCH_INSTALL_BASELINE=DIR adds the chunked install of the checkout
// in DIR (its bench/install-entry.ts and sources) to every round, so a change
// is measured beside what it changes, on the same busy machine.

import { mkdtemp, open, rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { manifestPath } from "../controller/update/manifest.ts";
import { publishWithoutChunks } from "../test/unchunked-manifest.ts";
import { fixed, freePort, goal, median, MB, MiB, progress, run, table } from "./lib.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");
const CONTROLLER = join(REPO_ROOT, "dist/controller");
const BUN = join(REPO_ROOT, "node_modules/.bin/bun");
const GiB = 1024 * MiB;
const ALL_SIZES = [
  { name: "256 MiB", bytes: 256 * MiB },
  { name: "1 GiB", bytes: GiB },
  { name: "4 GiB + 4097 B", bytes: 4 * GiB + 4097 },
] as const;
const SIZES = ALL_SIZES.slice(0, Number(process.env["BENCH_INSTALL_SIZES"] ?? ALL_SIZES.length));
/** An image so small that its install's CPU is what any install costs once, whatever its size */
const SMALL = { name: "16 MiB", bytes: 16 * MiB, channel: "small" } as const;
const ROUNDS = Number(process.env["BENCH_INSTALL_ROUNDS"] ?? 3);
const BASELINE = process.env["BENCH_INSTALL_BASELINE"];
const SPARE_BYTES = 5 * GiB;
/** install (chunks) against `curl -o /dev/null` from the same server: what receiving, writing and verifying cost beside receiving alone (issue 15) */
const THROUGHPUT_GOAL = 0.6;
/** CPU seconds of the install stage per GB of image, every thread of it (issue 15) */
const CPU_GOAL_SECONDS_PER_GB = 2.5;
const MEMORY_GOAL_MIB = 16;
const CORES = availableParallelism();

type Method =
  | "install (chunks)"
  | "install (chunks), baseline"
  | "install (whole image)"
  | "curl > /dev/null"
  | "curl | tee | sha512sum"
  | "openssl dgst -sha512"
  | "openssl dgst -sha256";
const METHODS: readonly Method[] = [
  "install (chunks)",
  ...(BASELINE === undefined ? [] : (["install (chunks), baseline"] as const)),
  "install (whole image)",
  "curl > /dev/null",
  "curl | tee | sha512sum",
  "openssl dgst -sha512",
  "openssl dgst -sha256",
];
const INSTALLS = METHODS.filter((method) => method.startsWith("install"));

interface InstallReport {
  readonly status: string;
  readonly detail: string;
  readonly durationMs: number;
  readonly pieces?: number;
  readonly peakRssKiB: number;
  readonly cpuSeconds: number;
  readonly installCpuSeconds: number;
  readonly engine?: string;
  readonly pieceHash?: string;
}

interface Sample {
  readonly seconds: number;
  readonly peakRssKiB?: number;
  readonly cpuSeconds?: number;
  readonly installCpuSeconds?: number;
  readonly engine?: string;
  /** the hash the install checked its pieces by */
  readonly pieceHash?: string;
}

/** "hsqs" (what publish checks for), then bytes from AES-CTR over zeros: random-looking, made at GB/s. */
function makeImage(path: string, bytes: number): void {
  run(["sh", "-c", 'printf hsqs > "$1" && openssl enc -aes-128-ctr -nosalt -pass pass:bench -in /dev/zero 2>/dev/null | head -c "$2" >> "$1"', "sh", path, String(bytes - 4)]);
}

function timed(action: () => void): number {
  const began = performance.now();
  action();
  return (performance.now() - began) / 1000;
}

/** An empty BACKUPFS on the spare; mkfs discards the old blocks, which gives their RAM back. */
function emptySpare(device: string): void {
  run(["mkfs.ext4", "-q", "-F", "-L", "BACKUPFS", device]);
}

/** The install of the checkout at `checkout`: this one, or the baseline's. */
function install(server: string, channel: string, key: string, device: string, checkout = REPO_ROOT): Sample {
  emptySpare(device);
  const result = Bun.spawnSync([BUN, join(checkout, "bench/install-entry.ts"), "--server", server, "--channel", channel, "--key", key, "--device", device], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const report = JSON.parse(result.stdout.toString().trim().split("\n").at(-1) ?? "{}") as InstallReport;
  if (report.status !== "installed") {
    throw new Error(`Cannot benchmark the install on channel ${channel}: ${report.detail ?? "no report"}\n${result.stderr.toString()}`);
  }
  return {
    seconds: report.durationMs / 1000,
    peakRssKiB: report.peakRssKiB,
    cpuSeconds: report.cpuSeconds,
    // a baseline from before install-entry.ts reported the stage alone has only the whole process's
    installCpuSeconds: report.installCpuSeconds ?? report.cpuSeconds,
    ...(report.engine === undefined ? {} : { engine: report.engine }),
    ...(report.pieceHash === undefined ? {} : { pieceHash: report.pieceHash }),
  };
}

function curlTee(url: string, device: string, mountPoint: string): Sample {
  emptySpare(device);
  run(["mount", device, mountPoint]);
  try {
    const target = join(mountPoint, "target");
    return { seconds: timed(() => run(["sh", "-c", 'curl -sf "$1" | tee "$2" | sha512sum > /dev/null', "sh", url, target])) };
  } finally {
    run(["umount", mountPoint]);
  }
}

/** What the server and loopback deliver with nothing written or hashed: the ceiling of any install from this server. */
function curlNull(url: string): Sample {
  return { seconds: timed(() => run(["curl", "-sf", "-o", "/dev/null", url])) };
}

function opensslDgst(file: string, algorithm: "sha512" | "sha256"): Sample {
  return { seconds: timed(() => run(["openssl", "dgst", `-${algorithm}`, file])) };
}

async function main(): Promise<void> {
  const work = await mkdtemp("/var/tmp/bench-install-");
  const shm = await mkdtemp("/dev/shm/bench-install-");
  const mountPoint = join(work, "mnt");
  run(["mkdir", "-p", mountPoint]);
  let server: ReturnType<typeof Bun.spawn> | undefined;
  let device: string | undefined;
  try {
    const key = join(work, "fleet");
    const publicKey = run([CONTROLLER, "keygen", key]).stdout.split(/\s+/).find((word) => /^[A-Za-z0-9+/]{43}=$/.test(word));
    if (publicKey === undefined) throw new Error(`Cannot read the public key that ${CONTROLLER} keygen printed`);
    const repo = join(work, "repo");
    const images: Record<string, { file: string; url: string; sha512: string }> = {};
    /** An image of `bytes` made, published on `channel` of the repository and removed from where it was made. */
    const publishImage = async (name: string, bytes: number, channel: string) => {
      progress(`making and publishing the ${name} image`);
      const source = join(work, "image.squashfs");
      makeImage(source, bytes);
      run([CONTROLLER, "publish", "--repo", repo, "--channel", channel, "--version", "1.0", "--image", source, "--key", `${key}.secret`]);
      await rm(source);
    };
    for (const [index, size] of SIZES.entries()) {
      const channel = `size${index}`;
      await publishImage(size.name, size.bytes, channel);
      await publishWithoutChunks(repo, `${key}.secret`, channel, `${channel}-whole`);
      const manifest = JSON.parse(await Bun.file(join(repo, manifestPath(channel))).text()) as { image: { url: string; sha512: string } };
      images[channel] = { file: join(repo, manifest.image.url), url: manifest.image.url, sha512: manifest.image.sha512 };
    }

    await publishImage(SMALL.name, SMALL.bytes, SMALL.channel);

    const port = await freePort();
    const base = `http://127.0.0.1:${port}/`;
    server = Bun.spawn([CONTROLLER, "serve", "--repo", repo, "--port", String(port)], { stdout: "ignore", stderr: "pipe" });
    for (let tries = 0; ; tries++) {
      if ((await fetch(`${base}${manifestPath("size0")}`).catch(() => undefined))?.ok === true) break;
      if (tries > 100) throw new Error(`Cannot benchmark: ${CONTROLLER} serve did not answer on ${base} within 10 s`);
      await Bun.sleep(100);
    }

    const backing = join(shm, "spare.img");
    await (await open(backing, "w")).close();
    run(["truncate", "-s", String(SPARE_BYTES), backing]);
    device = run(["losetup", "--find", "--show", backing]).stdout.trim();

    const samples = new Map<string, Sample[]>();
    const add = (size: string, method: Method, sample: Sample) => samples.set(`${size}/${method}`, [...(samples.get(`${size}/${method}`) ?? []), sample]);
    for (let round = 1; round <= ROUNDS; round++) {
      add(SMALL.name, "install (chunks)", install(base, SMALL.channel, publicKey, device));
      for (const [index, size] of SIZES.entries()) {
        progress(`round ${round} of ${ROUNDS}: ${size.name}`);
        const channel = `size${index}`;
        const image = images[channel];
        if (image === undefined) throw new Error(`Cannot benchmark: no image for ${channel}`);
        add(size.name, "install (chunks)", install(base, channel, publicKey, device));
        if (BASELINE !== undefined) add(size.name, "install (chunks), baseline", install(base, channel, publicKey, device, BASELINE));
        add(size.name, "install (whole image)", install(base, `${channel}-whole`, publicKey, device));
        add(size.name, "curl > /dev/null", curlNull(`${base}${image.url}`));
        add(size.name, "curl | tee | sha512sum", curlTee(`${base}${image.url}`, device, mountPoint));
        add(size.name, "openssl dgst -sha512", opensslDgst(image.file, "sha512"));
        add(size.name, "openssl dgst -sha256", opensslDgst(image.file, "sha256"));
      }
    }

    // the largest image, as the last install left it, checked by openssl rather than by the controller's own code
    const largest = images[`size${SIZES.length - 1}`];
    install(base, `size${SIZES.length - 1}`, publicKey, device);
    run(["mount", "-o", "ro", device, mountPoint]);
    let independent: string;
    try {
      independent = run(["openssl", "dgst", "-sha512", "-r", join(mountPoint, "system.squashfs")]).stdout.split(" ")[0] ?? "";
    } finally {
      run(["umount", mountPoint]);
    }

    process.stdout.write(report(samples, independent === largest?.sha512));
  } finally {
    server?.kill();
    if (device !== undefined) run(["losetup", "--detach", device]);
    await rm(shm, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
}

function report(samples: Map<string, Sample[]>, largestVerified: boolean): string {
  const of = (size: string, method: Method) => samples.get(`${size}/${method}`) ?? [];
  const rate = (size: (typeof SIZES)[number], method: Method) => size.bytes / MB / median(of(size.name, method).map((sample) => sample.seconds));
  const throughputRows = SIZES.map((size) => {
    const received = rate(size, "curl > /dev/null");
    const install = rate(size, "install (chunks)");
    return [size.name, ...METHODS.map((method) => fixed(rate(size, method), 0)), fixed(install / received, 2), goal(install / received >= THROUGHPUT_GOAL)];
  });
  const rss = (size: string, method: Method) => median(of(size, method).map((sample) => (sample.peakRssKiB ?? 0) / 1024));
  const first = SIZES[0]?.name ?? "";
  const memoryRows = SIZES.map((size) => {
    const chunks = rss(size.name, "install (chunks)");
    return [size.name, fixed(chunks, 1), fixed(rss(size.name, "install (whole image)"), 1), `${chunks - rss(first, "install (chunks)") >= 0 ? "+" : ""}${fixed(chunks - rss(first, "install (chunks)"), 1)}`];
  });
  const perGB = (size: (typeof SIZES)[number], method: Method, figure: (sample: Sample) => number | undefined) =>
    median(of(size.name, method).map((sample) => figure(sample) ?? 0)) / (size.bytes / 1e9);
  const stage = (size: (typeof SIZES)[number], method: Method) => perGB(size, method, (sample) => sample.installCpuSeconds);
  const once = median(of(SMALL.name, "install (chunks)").map((sample) => sample.installCpuSeconds ?? 0));
  const cpuRows = SIZES.map((size) => [
    size.name,
    ...INSTALLS.map((method) => fixed(stage(size, method), 2)),
    ...INSTALLS.map((method) => fixed(perGB(size, method, (sample) => sample.cpuSeconds), 2)),
    fixed(stage(size, "install (chunks)") - once / (size.bytes / 1e9), 2),
    goal(stage(size, "install (chunks)") <= CPU_GOAL_SECONDS_PER_GB),
  ]);
  const chunkHashes = [...new Set(SIZES.flatMap((size) => of(size.name, "install (chunks)").flatMap((sample) => (sample.pieceHash === undefined ? [] : [sample.pieceHash]))))];
  const chunkHash = chunkHashes.length === 1 && chunkHashes[0] === "sha256" ? "sha256" : "sha512";
  const hashingPerGB = median(SIZES.map((size) => 1e3 / rate(size, `openssl dgst -${chunkHash}`)));
  const largest = SIZES[SIZES.length - 1];
  const growth = rss(largest?.name ?? first, "install (chunks)") - rss(first, "install (chunks)");
  const engines = [...new Set([...samples.values()].flat().flatMap((sample) => (sample.engine === undefined ? [] : [sample.engine])))].join(", ");
  const baseline = BASELINE === undefined ? "" : ` *install (chunks), baseline* is the same install by the checkout in ${BASELINE}, measured in the same rounds (a baseline whose install-entry.ts does not report the install stage alone shows its whole process in both CPU columns).`;
  return [
    "## Install throughput and memory",
    "",
    `The controller's check and install stages (bench/install-entry.ts, run with bun from the sources) fetch each image from \`controller serve\` on 127.0.0.1 into a BACKUPFS ext4 on a RAM-backed loop device, and verify it; its hashing threads ran ${engines}, one per core, and checked the chunks' ${chunkHashes.join(" and ") || "hashes"} (${chunkHash === "sha256" ? "this CPU has the SHA extensions" : "this CPU lacks the SHA extensions, or the manifests sign no sha256s"}): ${CORES} cores, which the install shares with the server, curl, the page cache and the loop device. Side by side: \`curl -o /dev/null\` (what the server and loopback deliver at all), \`curl | tee TARGET | sha512sum\` into the same filesystem, and \`openssl dgst\` -sha512 and -sha256 over the served file (one core's hashing limit). Figures are MB/s (10^6 bytes per second), medians of ${ROUNDS} interleaved rounds; the install's time is its stage's own (mount, download, verification, fsync, records, unmount).${baseline} The goal of install (chunks) / curl is judged on a machine with cores to spare: with hashing on every core, a machine with few has none for the receiving and writing.`,
    "",
    // a "|" inside a cell would end it
    table(["image", ...METHODS.map((method) => method.replaceAll("|", "\\|")), "install (chunks) / curl > /dev/null", `goal ≥ ${THROUGHPUT_GOAL} (${CORES} cores)`], throughputRows),
    "",
    `CPU time per GB of image, median, every thread (receiving, writing, hashing): of the install stage alone, and of the whole install process (with bun's start, the sources' transpiling and the check stage, which an image's size does not change); ${CORES} cores.`,
    "",
    table(
      [
        "image",
        ...INSTALLS.map((method) => `${method}, stage CPU s/GB`),
        ...INSTALLS.map((method) => `${method}, process CPU s/GB`),
        `install (chunks), stage CPU s/GB beyond the ${SMALL.name} install's`,
        `goal: install (chunks) stage ≤ ${CPU_GOAL_SECONDS_PER_GB}`,
      ],
      cpuRows,
    ),
    "",
    `What any install costs once, whatever its size: the install stage of a ${SMALL.name} image (chunks, in every round before the others) took ${fixed(once, 2)} CPU s, median, nearly all of it work that does not grow with the image (mounting, starting the hashing threads, compiling the download path on first use, the records and their fsyncs); that alone is ${fixed(once / ((SIZES[0]?.bytes ?? 1) / 1e9), 2)} s/GB of the ${first} figure above, and the column *beyond the ${SMALL.name} install's* takes it away from every size: what each further GB costs. Hashing alone costs ${fixed(hashingPerGB, 2)} s/GB on one core (1000 / the \`openssl dgst -${chunkHash}\` column, the hash the chunked install checked); the rest of each GB is receiving it, writing it into the page cache and reading it back. The whole-image install hashes its one piece after the download, alone on the machine; install (chunks) hashes while it downloads, both cores busy at once, which here costs more CPU per byte and takes less time.`,
    "",
    `Peak RSS of the install process (MiB; bun, the controller and its hashing threads), median of ${ROUNDS}:`,
    "",
    table(["image", "install (chunks)", "install (whole image)", `chunks vs ${first}`], memoryRows),
    "",
    `Goal: the largest image at most ${MEMORY_GOAL_MIB} MiB above the ${first} one: ${fixed(growth, 1)} MiB, ${goal(growth <= MEMORY_GOAL_MIB)}.`,
    `The ${largest?.name} image (${largest?.bytes} bytes${(largest?.bytes ?? 0) > 2 ** 32 ? ", past 2^32" : ""}) installed, and \`openssl dgst -sha512\` of the installed file matches the manifest: ${largestVerified ? "yes" : "**no**"}.`,
    "",
  ].join("\n");
}

await main();
