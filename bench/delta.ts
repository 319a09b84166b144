// Delta installs with real images (issue 16), natively on this host, no QEMU.
// The images: the Debian test image debian-1.0 (scripts/build-debian-images),
// and from it, unpacked with unsquashfs and squashed again with the options
// and SOURCE_DATE_EPOCH of scripts/build-debian-image: the same with one
// package upgraded from the host's apt (Debian's archive), with a few files
// in /etc changed, and with both; debian-2.0 (another kernel, its modules and
// initrd, another controller build); and noise of the same size that starts
// with "hsqs", a different image altogether. Each is published on its own
// channel of one repository and served by `controller serve` on 127.0.0.1.
//
// The controller's own check and install stages (bench/install-entry.ts)
// install each into a spare slot, an ext4 BACKUPFS on a RAM-backed loop
// device emptied by mkfs first, side by side in interleaved rounds: as a
// delta from a machine running 1.0 and as the whole image (no running
// image). The running 1.0 is slot A, a whole install of 1.0 that is only
// read after, mounted read-only for each delta alone (so the page cache
// favours no install), with the repository's chunk index of 1.0: what a
// machine's first image keeps (scripts/disk/first-image.ts). Figures: the
// stage's report (bytes fetched and copied, the plan's Range requests, its
// duration), and the server's access log (GET requests for the image).
// Beside them, computed here without an install: what a fixed-size block
// index (RAUC's adaptive update "block-hash-index": the sha256 of every
// aligned 4 KiB block) would fetch: each block of the new image whose hash
// is not among the running image's blocks.
//
// First delta against later ones: slot B, emptied, gets the package upgrade
// (1.1) as a delta from A: the first delta (also the one-package target's
// delta). Then the machine runs 1.1 from B as that install left it (image,
// and the index its record keeps), and its spare still holds 1.0 with its
// record and index: slot C, a whole install of 1.0 in every round, stands in
// for A, which stays 1.0 for the next round. 1.2 (1.1 with the /etc changes)
// goes into C: the later delta, with both local sources real.
//
// BENCH_DELTA_ROUNDS=N changes the number of rounds (default 3).

import { createHash } from "node:crypto";
import { appendFile, copyFile, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { manifestPath } from "../controller/update/manifest.ts";
import { fixed, freePort, goal, median, MB, MiB, progress, run, runsFrom, table, transferSeconds } from "./lib.ts";

const REPO_ROOT = resolve(import.meta.dir, "..");
const CONTROLLER = join(REPO_ROOT, "dist/controller");
const BUN = join(REPO_ROOT, "node_modules/.bin/bun");
const BASE_IMAGE = join(REPO_ROOT, "build/images/debian-1.0.squashfs");
const KERNEL_IMAGE = join(REPO_ROOT, "build/images/debian-2.0.squashfs");
const ROUNDS = runsFrom(process.env["BENCH_DELTA_ROUNDS"], 3);
/** room for two images and their records: the later delta needs the spare's old image beside the new one */
const SLOT_BYTES = 1024 * MiB;
/** RAUC's block-hash-index hashes blocks of this size */
const BLOCK_BYTES = 4096;
/** issue 16: a one-package change downloads at most this share of the image */
const ONE_PACKAGE_GOAL = 0.05;
/** issue 16: a completely different image costs at most this many full downloads */
const DIFFERENT_GOAL = 1.05;
/** a link to the update server, for what the fetched bytes would cost over it */
const LINK_BITS_PER_SECOND = 100e6;
/** serve writes its access log in batches at most 100 ms late (controller/cli/serve.ts) */
const ACCESS_LOG_WAIT_MS = 300;

type TargetName = "one package upgraded" | "new kernel" | "a few config files changed" | "a different image";

interface Published {
  readonly channel: string;
  readonly version: string;
  /** the image in the repository */
  readonly file: string;
  /** its URL path in the repository, as the access log names it */
  readonly url: string;
  readonly size: number;
  /** the repository's chunk index of the image */
  readonly indexFile: string;
  readonly indexSize: number;
}

interface InstallReport {
  readonly status: string;
  readonly detail: string;
  readonly bytesFetched: number;
  readonly bytesCopied: number;
  readonly delta?: { readonly localImages: readonly string[]; readonly requests: number };
  readonly durationMs: number;
}

interface Sample {
  readonly seconds: number;
  readonly bytesFetched: number;
  readonly bytesCopied: number;
  /** the plan's Range requests; a whole install makes 1 */
  readonly requests: number;
  /** GET requests for the image in the server's access log */
  readonly serverRequests: number;
  readonly localImages: readonly string[];
}

/** A local image for a delta install: the image and its chunk index (delta-sources.ts's LocalImage without a name) */
interface LocalFiles {
  readonly image: string;
  readonly index: string;
}

/** What a block-hash-index of fixed-size blocks would fetch. */
interface BlockFetch {
  readonly bytes: number;
  /** runs of neighbouring blocks to fetch: one Range request each */
  readonly requests: number;
}

/** mkfs_time of the superblock (bytes 8-11): mksquashfs writes SOURCE_DATE_EPOCH there, and build-debian-image removes its /.source-date-epoch before it squashes. */
async function squashfsEpoch(image: string): Promise<number> {
  const header = new DataView(await Bun.file(image).slice(0, 12).arrayBuffer());
  if (header.getUint32(0, true) !== 0x73717368) throw new Error(`Cannot read the epoch of ${image}: it is not a squashfs image`);
  return header.getUint32(8, true);
}

/** Unpacked as root: owners, modes and xattrs as they are in the image. */
async function unsquash(image: string, root: string): Promise<void> {
  await rm(root, { recursive: true, force: true });
  run(["unsquashfs", "-q", "-d", root, image]);
}

/** With exactly the options of scripts/build-debian-image. */
function squash(root: string, image: string, epoch: number): void {
  run(["mksquashfs", root, image, "-comp", "zstd", "-Xcompression-level", "3", "-noappend", "-no-progress", "-quiet"], { env: { SOURCE_DATE_EPOCH: String(epoch) } });
}

function sameBytes(a: string, b: string): boolean {
  return Bun.spawnSync(["cmp", "-s", a, b]).exitCode === 0;
}

/** "hsqs" (what publish checks for), then bytes from AES-CTR over zeros: random-looking, made at GB/s. */
function makeNoise(path: string, bytes: number): void {
  run(["sh", "-c", 'printf hsqs > "$1" && openssl enc -aes-128-ctr -nosalt -pass pass:bench -in /dev/zero 2>/dev/null | head -c "$2" >> "$1"', "sh", path, String(bytes - 4)]);
}

interface Upgrade {
  readonly name: string;
  readonly installed: string;
  readonly candidate: string;
}

/**
 * A package of the image whose candidate in the host's apt (bookworm,
 * -updates, -security) is newer: the smallest one, an ordinary library or
 * tool. Kernel packages are left out: a new kernel is a target of its own,
 * and linux-image-amd64 would pull in another kernel package.
 */
function upgradeablePackage(root: string): Upgrade {
  const installed = run(["chroot", root, "dpkg-query", "-W", "-f", "${Package} ${Version} ${Installed-Size}\\n"])
    .stdout.trim()
    .split("\n")
    .map((line) => line.split(" "))
    .map(([name = "", version = "", kib = "0"]) => ({ name, version, kib: Number(kib) }))
    .filter((entry) => !entry.name.startsWith("linux-"));
  const candidates = new Map<string, string>();
  let current: string | undefined;
  for (const line of run(["apt-cache", "policy", ...installed.map((entry) => entry.name)]).stdout.split("\n")) {
    const header = /^(\S+):$/.exec(line);
    if (header !== null) current = header[1];
    const candidate = /^\s+Candidate: (\S+)$/.exec(line);
    if (candidate !== null && current !== undefined && candidate[1] !== "(none)") candidates.set(current, candidate[1] ?? "");
  }
  const newer = installed
    .filter((entry) => {
      const candidate = candidates.get(entry.name);
      return candidate !== undefined && candidate !== entry.version && Bun.spawnSync(["dpkg", "--compare-versions", candidate, "gt", entry.version]).exitCode === 0;
    })
    .sort((a, b) => a.kib - b.kib);
  const smallest = newer[0];
  if (smallest === undefined) {
    throw new Error("Cannot benchmark a one-package upgrade: no package of debian-1.0 has a newer candidate in this host's apt (run apt-get update, or rebuild the image from an older debootstrap)");
  }
  return { name: smallest.name, installed: smallest.version, candidate: candidates.get(smallest.name) ?? "" };
}

/** The upgrade downloaded from Debian's archive by the host's apt and installed into the tree by the tree's own dpkg. */
async function upgradePackage(root: string, upgrade: Upgrade, downloads: string): Promise<void> {
  await mkdir(downloads, { recursive: true });
  // apt warns that it downloads unsandboxed: its _apt user cannot write into this root-only folder
  run(["apt-get", "download", `${upgrade.name}=${upgrade.candidate}`], { cwd: downloads });
  const deb = (await readdir(downloads)).find((name) => name.endsWith(".deb"));
  if (deb === undefined) throw new Error(`Cannot upgrade ${upgrade.name}: apt-get download left no .deb in ${downloads}`);
  const inTree = `/${upgrade.name}.deb`;
  await copyFile(join(downloads, deb), join(root, inTree));
  try {
    run(["chroot", root, "dpkg", "-i", inTree]);
  } finally {
    await rm(join(root, inTree));
  }
  const now = run(["chroot", root, "dpkg-query", "-W", "-f", "${Version}", upgrade.name]).stdout;
  if (now !== upgrade.candidate) throw new Error(`Cannot upgrade ${upgrade.name}: after dpkg -i the tree has version ${now}, expected ${upgrade.candidate}`);
}

/** The files in /etc an admin changes between two builds. */
const CONFIG_CHANGES = ["/etc/hostname", "/etc/motd", "/etc/issue", "/etc/sysctl.d/90-lab.conf"] as const;

async function changeConfig(root: string): Promise<void> {
  await writeFile(join(root, "etc/hostname"), "debian-lab\n");
  await appendFile(join(root, "etc/motd"), "\nThis lab machine is reinstalled every night.\n");
  await appendFile(join(root, "etc/issue"), "Lab machine: ask the lab's admins before changing anything.\n\n");
  await writeFile(join(root, "etc/sysctl.d/90-lab.conf"), "vm.swappiness = 10\nkernel.panic = 10\n", { mode: 0o644 });
}

/** The sha256s of the image's aligned 4 KiB blocks (the last one may be shorter), in order. */
async function blockHashes(image: string): Promise<string[]> {
  const bytes = new Uint8Array(await Bun.file(image).arrayBuffer());
  const hashes: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += BLOCK_BYTES) {
    hashes.push(createHash("sha256").update(bytes.subarray(offset, offset + BLOCK_BYTES)).digest("latin1"));
  }
  return hashes;
}

function blockFetch(target: readonly string[], targetSize: number, local: ReadonlySet<string>): BlockFetch {
  let bytes = 0;
  let requests = 0;
  let fetching = false;
  target.forEach((hash, block) => {
    const missing = !local.has(hash);
    if (missing) bytes += Math.min(BLOCK_BYTES, targetSize - block * BLOCK_BYTES);
    if (missing && !fetching) requests++;
    fetching = missing;
  });
  return { bytes, requests };
}

/** An empty BACKUPFS on the slot; mkfs discards the old blocks, which gives their RAM back. */
function emptySlot(device: string): void {
  run(["mkfs.ext4", "-q", "-F", "-L", "BACKUPFS", device]);
}

async function main(): Promise<void> {
  for (const image of [BASE_IMAGE, KERNEL_IMAGE]) {
    if (!(await Bun.file(image).exists())) throw new Error(`Cannot benchmark delta installs: no ${image} (run scripts/setup, which builds the Debian test images)`);
  }
  const work = await mkdtemp("/var/tmp/bench-delta-");
  const shm = await mkdtemp("/dev/shm/bench-delta-");
  const runningMount = join(work, "running");
  await mkdir(runningMount);
  let server: ReturnType<typeof Bun.spawn> | undefined;
  const devices: string[] = [];
  let mounted = false;
  try {
    const epoch = await squashfsEpoch(BASE_IMAGE);
    const images = join(work, "images");
    await mkdir(images);

    progress("unpacking debian-1.0 and squashing it again, unchanged");
    const tree = join(work, "root");
    await unsquash(BASE_IMAGE, tree);
    const rebuilt = join(images, "1.0.squashfs");
    squash(tree, rebuilt, epoch);
    const reproducible = sameBytes(rebuilt, BASE_IMAGE);
    const baseImage = reproducible ? BASE_IMAGE : rebuilt;

    const upgrade = upgradeablePackage(tree);
    progress(`upgrading ${upgrade.name} ${upgrade.installed} to ${upgrade.candidate} (the one-package image, 1.1)`);
    await upgradePackage(tree, upgrade, join(work, "debs"));
    const onePackage = join(images, "1.1.squashfs");
    squash(tree, onePackage, epoch);
    progress("changing files in /etc of 1.1 (1.2) and of 1.0");
    await changeConfig(tree);
    const chained = join(images, "1.2.squashfs");
    squash(tree, chained, epoch);
    await unsquash(baseImage, tree);
    await changeConfig(tree);
    const configChanged = join(images, "config.squashfs");
    squash(tree, configChanged, epoch);
    await rm(tree, { recursive: true });
    const baseSize = Bun.file(baseImage).size;
    const different = join(images, "different.squashfs");
    makeNoise(different, baseSize);

    const key = join(work, "fleet");
    const publicKey = run([CONTROLLER, "keygen", key]).stdout.split(/\s+/).find((word) => /^[A-Za-z0-9+/]{43}=$/.test(word));
    if (publicKey === undefined) throw new Error(`Cannot read the public key that ${CONTROLLER} keygen printed`);
    const repo = join(work, "repo");
    const publish = async (channel: string, version: string, image: string): Promise<Published> => {
      progress(`publishing ${version} on channel ${channel}`);
      run([CONTROLLER, "publish", "--repo", repo, "--channel", channel, "--version", version, "--image", image, "--key", `${key}.secret`]);
      const manifest = JSON.parse(await readFile(join(repo, manifestPath(channel)), "utf8")) as {
        image: { url: string; size: number; index?: { url: string; size: number } };
      };
      if (manifest.image.index === undefined) throw new Error(`Cannot benchmark delta installs: publish signed no chunk index for channel ${channel}`);
      return {
        channel,
        version,
        file: join(repo, manifest.image.url),
        url: manifest.image.url,
        size: manifest.image.size,
        indexFile: join(repo, manifest.image.index.url),
        indexSize: manifest.image.index.size,
      };
    };
    const base = await publish("base", "1.0", baseImage);
    const chain = await publish("chain", "1.2", chained);
    const upgraded = await publish("package", "1.1", onePackage);
    const targets: readonly { name: TargetName; published: Published }[] = [
      { name: "one package upgraded", published: upgraded },
      { name: "new kernel", published: await publish("kernel", "2.0", KERNEL_IMAGE) },
      { name: "a few config files changed", published: await publish("config", "1.0.1", configChanged) },
      { name: "a different image", published: await publish("different", "3.0", different) },
    ];
    // the repository keeps its own copies
    await rm(images, { recursive: true });

    progress("hashing every 4 KiB block of the images (a block-hash-index's plan)");
    const runningBlocks = new Set(await blockHashes(base.file));
    const blocks = new Map<TargetName, BlockFetch>();
    for (const target of targets) blocks.set(target.name, blockFetch(await blockHashes(target.published.file), target.published.size, runningBlocks));

    const accessLog = join(work, "access.log");
    const port = await freePort();
    const serverUrl = `http://127.0.0.1:${port}/`;
    server = Bun.spawn([CONTROLLER, "serve", "--repo", repo, "--port", String(port)], { stdout: Bun.file(accessLog), stderr: "pipe" });
    for (let tries = 0; ; tries++) {
      if ((await fetch(`${serverUrl}${manifestPath("base")}`).catch(() => undefined))?.ok === true) break;
      if (tries > 100) throw new Error(`Cannot benchmark: ${CONTROLLER} serve did not answer on ${serverUrl} within 10 s`);
      await Bun.sleep(100);
    }
    let logLinesSeen = 0;
    /** GET requests for `url` in the access log since the last call. */
    const serverRequests = async (url: string): Promise<number> => {
      await Bun.sleep(ACCESS_LOG_WAIT_MS);
      const lines = (await readFile(accessLog, "utf8")).split("\n").filter((line) => line !== "");
      const fresh = lines.slice(logLinesSeen);
      logLinesSeen = lines.length;
      return fresh.filter((line) => line.includes(`"GET /${url}"`)).length;
    };

    for (const slot of ["a", "b", "c"]) {
      const backing = join(shm, `${slot}.img`);
      await (await open(backing, "w")).close();
      run(["truncate", "-s", String(SLOT_BYTES), backing]);
      devices.push(run(["losetup", "--find", "--show", backing]).stdout.trim());
    }
    const [slotA = "", slotB = "", slotC = ""] = devices;

    /** One install of `published` into `device`, from the `running` image and index when given; checked, never a failure measured. */
    const install = async (published: Published, device: string, running?: LocalFiles): Promise<Sample> => {
      const result = Bun.spawnSync(
        [
          BUN,
          join(REPO_ROOT, "bench/install-entry.ts"),
          ...["--server", serverUrl, "--channel", published.channel, "--key", publicKey, "--device", device],
          ...(running === undefined ? [] : ["--running-image", running.image, "--running-index", running.index]),
        ],
        { stdout: "pipe", stderr: "pipe" },
      );
      const report = JSON.parse(result.stdout.toString().trim().split("\n").at(-1) || "{}") as Partial<InstallReport>;
      if (report.status !== "installed" || report.bytesFetched === undefined || report.bytesCopied === undefined || report.durationMs === undefined) {
        throw new Error(`Cannot benchmark the install of ${published.version} into ${device}: ${report.detail ?? "no report"}\n${result.stderr.toString()}`);
      }
      if (report.bytesFetched + report.bytesCopied !== published.size) {
        throw new Error(
          `Cannot benchmark the install of ${published.version} into ${device}: it fetched ${report.bytesFetched} and copied ${report.bytesCopied} bytes, the image has ${published.size}`,
        );
      }
      return {
        seconds: report.durationMs / 1000,
        bytesFetched: report.bytesFetched,
        bytesCopied: report.bytesCopied,
        requests: report.delta?.requests ?? 1,
        serverRequests: await serverRequests(published.url),
        localImages: report.delta?.localImages ?? [],
      };
    };
    /**
     * `action` with the image of the slot on `device` as the running one,
     * and `index` (default: the one its record keeps). The slot is mounted
     * read-only for this one install, so every delta reads its running image
     * from a slot just mounted: the page cache favours none of them.
     */
    const withRunning = async (device: string, index: string | undefined, action: (running: LocalFiles) => Promise<Sample>): Promise<Sample> => {
      run(["mount", "-o", "ro", device, runningMount]);
      mounted = true;
      try {
        return await action({ image: join(runningMount, "system.squashfs"), index: index ?? join(runningMount, "controller/image.index") });
      } finally {
        run(["umount", runningMount]);
        mounted = false;
      }
    };

    progress("installing 1.0 into slot A, the running system of every first delta");
    emptySlot(slotA);
    await install(base, slotA);
    const deltas = new Map<TargetName, Sample[]>();
    const wholes = new Map<TargetName, Sample[]>();
    const firstDeltas: Sample[] = [];
    const laterDeltas: Sample[] = [];
    const add = (samples: Map<TargetName, Sample[]>, name: TargetName, sample: Sample) => samples.set(name, [...(samples.get(name) ?? []), sample]);
    for (let round = 1; round <= ROUNDS; round++) {
      progress(`round ${round} of ${ROUNDS}: 1.0 -> 1.1 -> 1.2`);
      emptySlot(slotB);
      // the first delta is also the one-package target's delta of this round
      const first = await withRunning(slotA, base.indexFile, (running) => install(upgraded, slotB, running));
      firstDeltas.push(first);
      add(deltas, "one package upgraded", first);
      // slot C stands in for A as the machine leaves it after the first delta: the spare, holding 1.0 with its record and index
      emptySlot(slotC);
      await install(base, slotC);
      laterDeltas.push(await withRunning(slotB, undefined, (running) => install(chain, slotC, running)));
      for (const target of targets) {
        progress(`round ${round} of ${ROUNDS}: ${target.name}`);
        if (target.published !== upgraded) {
          emptySlot(slotB);
          add(deltas, target.name, await withRunning(slotA, base.indexFile, (running) => install(target.published, slotB, running)));
        }
        emptySlot(slotB);
        add(wholes, target.name, await install(target.published, slotB));
      }
    }

    process.stdout.write(
      report({ reproducible, upgrade, base, upgraded, chain, targets, blocks, deltas, wholes, firstDeltas, laterDeltas }),
    );
  } finally {
    server?.kill();
    if (mounted) run(["umount", runningMount]);
    for (const device of devices) run(["losetup", "--detach", device]);
    await rm(shm, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  }
}

interface Results {
  readonly reproducible: boolean;
  readonly upgrade: Upgrade;
  readonly base: Published;
  /** 1.1, the first delta's image */
  readonly upgraded: Published;
  /** 1.2, the later delta's image */
  readonly chain: Published;
  readonly targets: readonly { name: TargetName; published: Published }[];
  readonly blocks: ReadonlyMap<TargetName, BlockFetch>;
  readonly deltas: ReadonlyMap<TargetName, readonly Sample[]>;
  readonly wholes: ReadonlyMap<TargetName, readonly Sample[]>;
  readonly firstDeltas: readonly Sample[];
  readonly laterDeltas: readonly Sample[];
}

function report(results: Results): string {
  const { reproducible, upgrade, base, upgraded, chain, targets, blocks, deltas, wholes, firstDeltas, laterDeltas } = results;
  const mb = (bytes: number) => fixed(bytes / MB, 1);
  const percent = (part: number, whole: number) => `${fixed((100 * part) / whole, 2)} %`;
  const medianOf = (samples: readonly Sample[], figure: (sample: Sample) => number) => median(samples.map(figure));
  /** a figure every round agrees on, else its range: a plan does not change between rounds, a server's count may */
  const spread = (samples: readonly Sample[], figure: (sample: Sample) => number, show: (value: number) => string = String) => {
    const values = samples.map(figure);
    const low = Math.min(...values);
    const high = Math.max(...values);
    return low === high ? show(low) : `${show(low)}–${show(high)}`;
  };

  const bytesRows = targets.map(({ name, published }) => {
    const delta = deltas.get(name) ?? [];
    const block = blocks.get(name) ?? { bytes: 0, requests: 0 };
    return [
      name,
      mb(published.size),
      spread(delta, (sample) => sample.bytesFetched, mb),
      spread(delta, (sample) => sample.bytesFetched / published.size, (share) => percent(share, 1)),
      spread(delta, (sample) => sample.bytesCopied, mb),
      `${fixed(published.indexSize / 1000, 0)} kB`,
      spread(delta, (sample) => sample.requests),
      spread(delta, (sample) => sample.serverRequests),
      spread(wholes.get(name) ?? [], (sample) => sample.serverRequests),
      mb(block.bytes),
      percent(block.bytes, published.size),
      String(block.requests),
    ];
  });
  const seconds = (value: number) => fixed(value, 2);
  const timeRows = targets.map(({ name }) => {
    const delta = deltas.get(name) ?? [];
    const whole = wholes.get(name) ?? [];
    const deltaSeconds = medianOf(delta, (sample) => sample.seconds);
    const wholeSeconds = medianOf(whole, (sample) => sample.seconds);
    return [
      name,
      seconds(deltaSeconds),
      spread(delta, (sample) => sample.seconds, seconds),
      seconds(wholeSeconds),
      spread(whole, (sample) => sample.seconds, seconds),
      fixed(deltaSeconds / wholeSeconds, 2),
    ];
  });
  const overLink = (name: TargetName) => transferSeconds(medianOf(deltas.get(name) ?? [], (sample) => sample.bytesFetched), LINK_BITS_PER_SECOND);

  const fetchedShare = (name: TargetName) => {
    const published = targets.find((target) => target.name === name)?.published;
    return medianOf(deltas.get(name) ?? [], (sample) => sample.bytesFetched) / (published?.size ?? 1);
  };
  const timeRatio = (name: TargetName) =>
    medianOf(deltas.get(name) ?? [], (sample) => sample.seconds) / medianOf(wholes.get(name) ?? [], (sample) => sample.seconds);
  const differentImage = targets.find((target) => target.name === "a different image")?.published;
  const differentCost = differentImage === undefined ? 0 : (medianOf(deltas.get("a different image") ?? [], (sample) => sample.bytesFetched) + differentImage.indexSize) / differentImage.size;
  const firstShare = medianOf(firstDeltas, (sample) => sample.bytesFetched) / upgraded.size;
  const laterShare = medianOf(laterDeltas, (sample) => sample.bytesFetched) / chain.size;
  const firstSeconds = medianOf(firstDeltas, (sample) => sample.seconds);
  const laterSeconds = medianOf(laterDeltas, (sample) => sample.seconds);
  const differentSeconds = medianOf(deltas.get("a different image") ?? [], (sample) => sample.seconds);
  const wholeDifferent = (wholes.get("a different image") ?? []).map((sample) => sample.seconds);
  const wholeDifferentSeconds = median(wholeDifferent);
  const laterFastest = Math.min(...laterDeltas.map((sample) => sample.seconds));
  const laterSlowest = Math.max(...laterDeltas.map((sample) => sample.seconds));
  const laterSources = [...new Set(laterDeltas.flatMap((sample) => sample.localImages))].join(" and ");
  const configShare = fetchedShare("a few config files changed");

  return [
    "## Delta installs with real images",
    "",
    `The controller's check and install stages (bench/install-entry.ts, run with bun from the sources) install each image from \`controller serve\` on 127.0.0.1 into a spare slot, an ext4 BACKUPFS on a RAM-backed loop device emptied by mkfs first: as a delta from a machine running debian-1.0 (its image in slot A, a whole install of 1.0, mounted read-only for each delta alone so that the page cache favours no install; and the repository's chunk index of 1.0, which is what a machine's first image keeps) and as the whole image, side by side in ${ROUNDS} interleaved rounds. The images: debian-1.0 (${mb(base.size)} MB) unpacked and squashed again with scripts/build-debian-image's options and its SOURCE_DATE_EPOCH (the unchanged tree squashed again is ${reproducible ? "byte-identical to build/images/debian-1.0.squashfs, so that is the base" : "**not** byte-identical to build/images/debian-1.0.squashfs, so the base is the rebuilt one: the comparisons measure the change, not mksquashfs"}); *one package upgraded*: ${upgrade.name} ${upgrade.installed} → ${upgrade.candidate} from this host's apt (the smallest package of the image with a newer candidate), installed by the image's dpkg; *new kernel*: debian-2.0 (another kernel, its modules and initrd, another controller build); *a few config files changed*: ${CONFIG_CHANGES.join(", ")} (new); *a different image*: noise of debian-1.0's size. Each is published on its own channel (chunks: FastCDC 16/64/256 KiB).`,
    "",
    `Bytes: *fetched* and *copied* as the install stage reports them (MB, 10^6 bytes; every install fetched + copied exactly the image's size and ended "installed"); *index* is the chunk index every install fetches first (also the whole install, which keeps it for the next delta); *plan's requests*: the delta plan's merged Range requests; *server GETs*: requests for the image in the server's access log (a whole install: 1). A figure that differed between rounds shows its range. Beside them, a fixed-size block index (RAUC's adaptive "block-hash-index": the sha256 of every aligned 4 KiB block) computed here: the blocks of the new image whose hash is not among the running image's, and the runs of neighbouring ones (one Range request each).`,
    "",
    table(
      [
        "target",
        "image MB",
        "delta: fetched MB",
        "fetched % of image",
        "copied MB",
        "index",
        "plan's requests",
        "server GETs, delta",
        "server GETs, whole",
        "4 KiB blocks: fetched MB",
        "4 KiB blocks: %",
        "4 KiB blocks: requests",
      ],
      bytesRows,
    ),
    "",
    "Fixed-size blocks lose every block after the first change whose size is not a multiple of 4 KiB: mksquashfs packs its compressed blocks back to back, so such a change moves all that follows it off the 4 KiB grid, and how much that is depends on where in the image the change lies. Content-defined chunks cut again at the same content soon after a change.",
    "",
    `Install time (the stage's own: mount, index, download and copies, verification, fsync, records, unmount), seconds, median and range of ${ROUNDS} rounds:`,
    "",
    table(["target", "delta s", "delta, rounds", "whole s", "whole, rounds", "delta / whole"], timeRows),
    "",
    `On 127.0.0.1 the network costs next to nothing, so these times are the machine's own work: a delta reads each chunk it copies from the running slot and checks its sha256, one chunk at a time, before it writes it, and the pieces are hashed again as they are read back from the file, as every install verifies them; a whole install receives at loopback speed. Over a real link the bytes decide: at ${LINK_BITS_PER_SECOND / 1e6} Mbit/s the whole image takes ${fixed(transferSeconds(base.size, LINK_BITS_PER_SECOND), 1)} s to transfer, the bytes the one-package delta fetched ${fixed(overLink("one package upgraded"), 2)} s, the new kernel's ${fixed(overLink("new kernel"), 1)} s, the config files' ${fixed(overLink("a few config files changed"), 2)} s.`,
    "",
    `Goals (issue 16):`,
    "",
    table(
      ["goal", "measured", ""],
      [
        [`one package upgraded: fetched ≤ ${ONE_PACKAGE_GOAL * 100} % of the image`, percent(fetchedShare("one package upgraded"), 1), goal(fetchedShare("one package upgraded") <= ONE_PACKAGE_GOAL)],
        [
          `a different image: (fetched + index) ≤ ${DIFFERENT_GOAL}× a full download`,
          `${fixed(differentCost, 4)}× the image's bytes`,
          goal(differentCost <= DIFFERENT_GOAL),
        ],
        // once its plan finds no chunk on the machine, the delta install is the whole install: what differs between them is this machine's noise
        [
          `a different image: time ≤ ${DIFFERENT_GOAL}× the whole install's slowest round`,
          `${fixed(differentSeconds, 2)} s against ${fixed(wholeDifferentSeconds, 2)} s (rounds ${fixed(Math.min(...wholeDifferent), 2)}–${fixed(Math.max(...wholeDifferent), 2)}): ${fixed(timeRatio("a different image"), 2)}× the median`,
          goal(differentSeconds <= DIFFERENT_GOAL * Math.max(...wholeDifferent)),
        ],
        [
          "the first delta fetches no larger a share than a later one",
          `first ${percent(firstShare, 1)}, later ${percent(laterShare, 1)}`,
          goal(firstShare <= laterShare),
        ],
        // a difference inside the later delta's own spread between rounds is this machine's noise, not a cost
        [
          "the first delta takes no longer than a later one (its median at most the later one's slowest round)",
          `first ${fixed(firstSeconds, 2)} s, later ${fixed(laterSeconds, 2)} s (rounds ${fixed(laterFastest, 2)}–${fixed(laterSlowest, 2)})`,
          goal(firstSeconds <= laterSlowest),
        ],
      ],
    ),
    "",
    `First delta against later ones: the *first* delta is the one-package delta above (1.0 running from slot A, with the repository's index as a machine's first image keeps it, → 1.1 into slot B, emptied); the *later* delta is 1.1 → 1.2 (the /etc changes on top of the upgrade, ${mb(chain.size)} MB) on the machine that install left: 1.1 running from slot B with the index its install recorded, and a spare that still holds 1.0 with its record and index (slot C, a whole install of 1.0 in every round, standing in for A); it copied from ${laterSources || "no local image"}. The two deltas carry different changes: like for like, the /etc changes alone from 1.0 fetch ${percent(configShare, 1)} of their image (the table above), the later delta ${percent(laterShare, 1)}. Per round, first / later: ${firstDeltas.map((sample, round) => `${mb(sample.bytesFetched)} MB in ${fixed(sample.seconds, 2)} s / ${mb(laterDeltas[round]?.bytesFetched ?? 0)} MB in ${fixed(laterDeltas[round]?.seconds ?? 0, 2)} s`).join("; ")}.`,
    "",
  ].join("\n");
}

await main();
