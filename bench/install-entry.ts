// The install stage on this host, through the controller's own code: the
// check stage fetches and verifies the signed manifest from the server, then
// runInstallStage writes the image into the spare slot (a loop device with a
// BACKUPFS filesystem), verifying it as it does at boot. Prints one JSON line:
// what the stage reported, its peak RSS, the CPU time of the whole process
// (hashing threads included) and of the install stage alone, and which hashing
// its threads ran.
// Usage: bun bench/install-entry.ts --server URL --channel NAME --key PUBLIC_KEY --device /dev/loopN

import { parseArgs } from "node:util";
import type { NetworkResult } from "../controller/boot/network.ts";
import { runCheckStage } from "../controller/boot/update-check.ts";
import { runInstallStage } from "../controller/boot/update-install.ts";
import { DEFAULT_CONFIG } from "../controller/config/schema.ts";
import type { InspectedSlot } from "../controller/plans/slot.ts";
import { LinuxSystem } from "../controller/system/linux-system.ts";
import { Logger, type LogSink } from "../controller/system/log.ts";
import { hashPool } from "../controller/system/hash-pool.ts";

const { values } = parseArgs({ options: { server: { type: "string" }, channel: { type: "string" }, key: { type: "string" }, device: { type: "string" } } });
const { server, channel, key, device } = values;
if (server === undefined || channel === undefined || key === undefined || device === undefined) {
  throw new Error("Cannot run the install benchmark entry: expected --server URL --channel NAME --key PUBLIC_KEY --device DEVICE");
}

/** stderr, not the console and /dev/kmsg: this runs on a workstation, not in an initramfs. */
const stderrSink: LogSink = {
  write: (_priority, line) => process.stderr.write(`${line}\n`),
};
const log = new Logger(stderrSink, false);
const config = { ...DEFAULT_CONFIG, update: { ...DEFAULT_CONFIG.update, servers: [server], channel, trusted_keys: [key] } };
const system = new LinuxSystem(log, config.timeouts.command_seconds * 1000);
const network: NetworkResult = { status: "up", interface: "lo", address: "127.0.0.1", mac: "00:00:00:00:00:00", macs: [], hostname: "bench", detail: "loopback" };

const check = await runCheckStage(system, log.forScope("check"), config, network, { installed: undefined, floor: undefined }, [key]);
if (check.accepted === undefined) throw new Error(`Cannot benchmark the install: the check stage decided ${check.decision}: ${check.reason}`);
const spare: InspectedSlot = {
  device: { device, label: config.labels.backup, fsType: config.slot.fs_type },
  role: "backup",
  record: { status: "none" },
  health: { status: "none" },
  fsck: { condition: "fsck", result: "skipped", detail: "benchmark" },
};
const cpuOf = (usage: NodeJS.ResourceUsage) => (usage.userCPUTime + usage.systemCPUTime) / 1e6;
const beforeInstall = process.resourceUsage();
// no running system to copy chunks from: the whole image comes from the server, as on a machine's first update
const result = await runInstallStage(system, log.forScope("install"), config, check.accepted, [], spare, undefined);
// maxRSS is in KiB and counts the hashing threads: they are this process
const usage = process.resourceUsage();
const cpuSeconds = cpuOf(usage);
// the install stage alone: without bun's start, the sources' transpiling and the check stage, which an image's size does not change
const installCpuSeconds = cpuSeconds - cpuOf(beforeInstall);
process.stdout.write(`${JSON.stringify({ ...result, peakRssKiB: usage.maxRSS, cpuSeconds, installCpuSeconds, engine: hashPool().engine })}\n`);
process.exit(result.status === "installed" ? 0 : 1);
