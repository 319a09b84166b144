// What the update scenarios need, built once per test run: signed repositories
// made with the controller binary's own keygen and publish, an update server
// on 127.0.0.1 (the controller's serve code) that the VM reaches only through
// guestfwd, and a disk whose SYSFS runs version 1.0 with its signed record.

import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { HEALTH_FILE } from "../../controller/boot/slot-health.ts";
import { RECORD_INDEX } from "../../controller/boot/slot-records.ts";
import { formatHealth, type HealthRecord } from "../../controller/plans/slot-health.ts";
import { repoHandler } from "../../controller/update/dev-server.ts";
import { manifestPath, signaturePath } from "../../controller/update/manifest.ts";
import { publish } from "../../controller/update/repository.ts";
import { sha512Hex } from "../../controller/update/signing.ts";
import { runCommand } from "../../qemu-harness/command.ts";
import { buildDisk } from "../../qemu-harness/disk.ts";
import { GUEST_FORWARD_ADDRESS } from "../../qemu-harness/qemu-args.ts";
import { cutOff } from "../cut-off.ts";
import { publishWithoutChunks } from "../unchunked-manifest.ts";
import { ARTIFACTS, deadPort, requireArtifacts, runFolder } from "./fixtures.ts";

export const REPOS = ["newer", "unchunked", "unknownKey", "corrupt", "downgrade", "expired", "same", "rollout0", "rollout100"] as const;
export type RepoName = (typeof REPOS)[number];

/** The config file every release of the "newer" repository carries: a value the booted system sees in /proc/mounts. */
export const FLEET_CONFIG = { name: "50-fleet.toml", text: '[tmpfs."/var/log"]\nsize = "24m"\n' };

export interface UpdateWorld {
  readonly repos: Readonly<Record<RepoName, string>>;
  /** SYSFS: system-a as version 1.0 with its signed record, marked good; BACKUPFS: system-b, no record; BOOTEXT: config.d naming the server and key */
  readonly disk: string;
  /** the repository SYSFS's record comes from: system-a as version 1.0 */
  readonly localRepo: string;
  /** BOOTEXT's files: config.d naming the server and key */
  readonly bootext: string;
  readonly server: UpdateServer;
  /** a forwarded port where nothing listens: a server that is down */
  readonly deadPort: number;
  readonly work: string;
  /** the key every repository but unknownKey is signed with */
  readonly publicKey: string;
}

export interface UpdateServer {
  readonly port: number;
  /** the repository served from now on */
  serve(repo: RepoName): void;
  /** the next GET of an image file (without Range, or with one when `ranged`) is cut off after this many bytes */
  dropNextImageAfter(bytes: number, ranged?: boolean): void;
  /** every manifest request gets this answer instead (still in the access log) until the next serve() */
  answerManifestsWith(answer: () => Response): void;
  /** access log lines since the last serve() */
  readonly accessLog: string[];
}

async function controller(...args: string[]): Promise<string> {
  const { stdout } = await runCommand([ARTIFACTS.controller, ...args]);
  return stdout;
}

function startServer(repos: Readonly<Record<RepoName, string>>): UpdateServer {
  let current: RepoName = "newer";
  let dropAfter: { bytes: number; ranged: boolean } | undefined;
  let manifestAnswer: (() => Response) | undefined;
  const accessLog: string[] = [];
  const handlers = new Map(REPOS.map((name) => [name, repoHandler(repos[name], (line: string) => accessLog.push(line))]));
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    // a VM under TCG may pause long between requests on one connection
    idleTimeout: 120,
    async fetch(request, server) {
      const handler = handlers.get(current);
      if (handler === undefined) return new Response("no repository", { status: 500 });
      const response = await handler(request, server);
      const path = new URL(request.url).pathname;
      if (manifestAnswer !== undefined && path.endsWith("/manifest.json")) {
        await response.body?.cancel();
        return manifestAnswer();
      }
      // images only: the chunk index beside each image is fetched first
      if (dropAfter !== undefined && path.startsWith("/images/") && path.endsWith(".squashfs") && request.headers.has("range") === dropAfter.ranged && response.body !== null) {
        const { bytes } = dropAfter;
        dropAfter = undefined;
        // a VM under TCG reads slowly: a second for the bytes before the cut to reach it
        return new Response(cutOff(response.body, bytes, 1000), { status: response.status, headers: response.headers });
      }
      return response;
    },
  });
  // other test files of the run use the same server: it lives as long as the process, without keeping it alive
  server.unref();
  return {
    port: server.port as number,
    serve(repo) {
      current = repo;
      dropAfter = undefined;
      manifestAnswer = undefined;
      accessLog.length = 0;
    },
    dropNextImageAfter(bytes, ranged = false) {
      dropAfter = { bytes, ranged };
    },
    answerManifestsWith(answer) {
      manifestAnswer = answer;
    },
    accessLog,
  };
}

export const MARKED_GOOD: HealthRecord = { attempts: 0, markedGood: true, cleanShutdown: true };

export interface SlotContent {
  readonly image: string;
  /** a repository whose channel "stable" manifest (and signature) the slot records as installed */
  readonly repo?: string;
  readonly health?: HealthRecord;
  /** flip one byte in the middle of the image after it is copied: a disk that went bad */
  readonly corruptImage?: boolean;
  /** keep the repository's chunk index of the image with the record, as an install does since delta updates */
  readonly index?: boolean;
}

/** A slot partition's files, in a folder for buildDisk: the image, its signed record, its health. */
export async function slotFolder(dir: string, content: SlotContent): Promise<string> {
  await mkdir(join(dir, "controller"), { recursive: true });
  const image = join(dir, "system.squashfs");
  await copyFile(content.image, image);
  if (content.corruptImage === true) {
    const bytes = new Uint8Array(await Bun.file(image).arrayBuffer());
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
    await Bun.write(image, bytes);
  }
  if (content.repo !== undefined) {
    const manifestBytes = new Uint8Array(await Bun.file(join(content.repo, manifestPath("stable"))).arrayBuffer());
    await Bun.write(join(dir, "controller/manifest.json"), manifestBytes);
    await copyFile(join(content.repo, signaturePath("stable", sha512Hex(manifestBytes))), join(dir, "controller/manifest.sig"));
    const index = (JSON.parse(new TextDecoder().decode(manifestBytes)) as { image: { index?: { url: string } } }).image.index;
    if (content.index === true && index !== undefined) await copyFile(join(content.repo, index.url), join(dir, RECORD_INDEX));
  }
  if (content.health !== undefined) await writeFile(join(dir, HEALTH_FILE), formatHealth(content.health));
  return dir;
}

/**
 * A disk like the world's, whose SYSFS keeps the chunk index of system-a with
 * its record, as every install since delta updates leaves it: an update to 2.0
 * is a delta install. `corruptImage` flips one byte of SYSFS's image.
 */
export async function indexedDisk(world: UpdateWorld, name: string, corruptImage = false): Promise<string> {
  const sysfs = await slotFolder(join(world.work, `${name}-sysfs`), { image: ARTIFACTS.systemA, repo: world.localRepo, health: MARKED_GOOD, index: true, corruptImage });
  const backupfs = await slotFolder(join(world.work, `${name}-backupfs`), { image: ARTIFACTS.systemB });
  const path = join(world.work, `${name}.img`);
  await buildDisk({ path, partitions: slotPartitions(sysfs, backupfs, world.bootext) });
  return path;
}

/** SYSFS and BACKUPFS with room for two images each (the new one is written beside the old), and BOOTEXT. */
function slotPartitions(sysfs: string, backupfs: string, bootext: string) {
  return [
    { label: "SYSFS", sizeMiB: 200, content: sysfs },
    { label: "BACKUPFS", sizeMiB: 200, content: backupfs },
    { label: "BOOTEXT", sizeMiB: 16, content: bootext },
  ];
}

let built: Promise<UpdateWorld> | undefined;

/** Builds the repositories, the disk and the server on first use; later calls get the same. */
export function updateWorld(): Promise<UpdateWorld> {
  built ??= (async () => {
    await requireArtifacts();
    const work = join(await runFolder(), "update");
    await mkdir(work, { recursive: true });
    const key = join(work, "fleet");
    const otherKey = join(work, "other");
    const publicKey = (await controller("keygen", key)).trim().split(/\s+/).find((word) => /^[A-Za-z0-9+/]{43}=$/.test(word));
    await controller("keygen", otherKey);
    if (publicKey === undefined) throw new Error("keygen printed no public key");
    const fleetConfig = join(work, FLEET_CONFIG.name);
    await writeFile(fleetConfig, FLEET_CONFIG.text);

    const repo = (name: string) => join(work, `repo-${name}`);
    const release = async (name: string, version: string, image: string, options: string[] = []) =>
      controller("publish", "--repo", repo(name), "--channel", "stable", "--version", version, "--image", image, "--key", `${key}.secret`, ...options);
    for (const name of ["newer", "local"]) await release(name, "1.0", ARTIFACTS.systemA);
    await release("newer", "2.0", ARTIFACTS.systemC, ["--config", fleetConfig]);
    await release("unchunked", "2.0", ARTIFACTS.systemC, ["--config", fleetConfig]);
    await publishWithoutChunks(repo("unchunked"), `${key}.secret`, "stable");
    await controller("publish", "--repo", repo("unknownKey"), "--channel", "stable", "--version", "2.0", "--image", ARTIFACTS.systemC, "--key", `${otherKey}.secret`);
    await release("corrupt", "2.0", ARTIFACTS.systemC);
    await release("downgrade", "0.5", ARTIFACTS.systemB);
    await release("same", "1.0", ARTIFACTS.systemA);
    // 2.0 rolled out to no machine; and to every machine, published at 0 % and raised by `controller rollout`
    await release("rollout0", "2.0", ARTIFACTS.systemC, ["--config", fleetConfig, "--rollout", "0"]);
    await release("rollout100", "2.0", ARTIFACTS.systemC, ["--config", fleetConfig, "--rollout", "0"]);
    await controller("rollout", "--repo", repo("rollout100"), "--channel", "stable", "--percent", "100", "--key", `${key}.secret`);
    const expired = await publish({
      repo: repo("expired"),
      channel: "stable",
      version: "2.0",
      image: ARTIFACTS.systemC,
      fleetConfig: [],
      machineConfig: [],
      expiresInDays: 30,
      secretKeyFile: `${key}.secret`,
      now: new Date(Date.now() - 40 * 24 * 3600 * 1000),
    });
    if (!expired.ok) throw new Error(`Cannot publish the expired release: ${expired.problems.join("; ")}`);
    // one flipped byte in the middle of the corrupt repository's image
    const corruptManifest = JSON.parse(await Bun.file(join(repo("corrupt"), manifestPath("stable"))).text()) as { image: { url: string; size: number } };
    const imageFile = join(repo("corrupt"), corruptManifest.image.url);
    const bytes = new Uint8Array(await Bun.file(imageFile).arrayBuffer());
    const middle = Math.floor(corruptManifest.image.size / 2);
    bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
    await Bun.write(imageFile, bytes);

    const repos = Object.fromEntries(REPOS.map((name) => [name, repo(name)])) as Record<RepoName, string>;
    const server = startServer(repos);

    // SYSFS runs 1.0 as the local repository recorded it, and came up healthy before:
    // updates only ever replace the backup of a system marked good
    const sysfs = await slotFolder(join(work, "sysfs"), { image: ARTIFACTS.systemA, repo: repo("local"), health: MARKED_GOOD });
    const backupfs = await slotFolder(join(work, "backupfs"), { image: ARTIFACTS.systemB });
    const bootext = join(work, "bootext");
    await mkdir(join(bootext, "config.d"), { recursive: true });
    await writeFile(
      join(bootext, "config.d/60-update.toml"),
      [
        "[update]",
        `servers = ["http://${GUEST_FORWARD_ADDRESS}:${server.port}/"]`,
        `trusted_keys = ["${publicKey}"]`,
        "[timeouts]",
        "server_seconds = 10",
        "",
      ].join("\n"),
    );
    const disk = join(work, "update.img");
    await buildDisk({ path: disk, partitions: slotPartitions(sysfs, backupfs, bootext) });
    return { repos, disk, localRepo: repo("local"), bootext, server, deadPort: await deadPort(), work, publicKey };
  })();
  return built;
}
