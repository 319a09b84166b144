// The install stage on this host, through the controller's own code: the
// check stage fetches and verifies the signed manifest from the server, then
// runInstallStage writes the image into the spare slot (a loop device with a
// BACKUPFS filesystem), verifying it as it does at boot. Prints one JSON line:
// what the stage reported, its peak RSS, the CPU time of the whole process
// (hashing threads included) and of the install stage alone, and which hashing
// its threads ran. With --running-image and --running-index, the image of
// the SYSFS that runs and its chunk index (a file of each, as the running
// slot's record keeps them) lend their chunks to a delta install; without
// them the whole image comes from the server, as on a machine's first update.
// The spare is read as the slots stage reads it at boot: empty after the
// benchmark's mkfs, or holding an earlier install (image, record, index),
// whose chunks the stage copies too.
// Usage: bun bench/install-entry.ts --server URL --channel NAME --key PUBLIC_KEY --device /dev/loopN
//        [--running-image FILE --running-index FILE]

import { parseArgs } from "node:util";
import type { LocalImage } from "../controller/boot/delta-sources.ts";
import type { NetworkResult } from "../controller/boot/network.ts";
import { reinspectSlot } from "../controller/boot/slots.ts";
import { runCheckStage } from "../controller/boot/update-check.ts";
import { runInstallStage } from "../controller/boot/update-install.ts";
import { DEFAULT_CONFIG } from "../controller/config/schema.ts";
import { LinuxSystem } from "../controller/system/linux-system.ts";
import { Logger, type LogSink } from "../controller/system/log.ts";
import { hashPool } from "../controller/system/hash-pool.ts";

const { values } = parseArgs({
  options: {
    server: { type: "string" },
    channel: { type: "string" },
    key: { type: "string" },
    device: { type: "string" },
    "running-image": { type: "string" },
    "running-index": { type: "string" },
  },
});
const { server, channel, key, device, "running-image": runningImage, "running-index": runningIndex } = values;
if (server === undefined || channel === undefined || key === undefined || device === undefined || (runningImage === undefined) !== (runningIndex === undefined)) {
  throw new Error("Cannot run the install benchmark entry: expected --server URL --channel NAME --key PUBLIC_KEY --device DEVICE [--running-image FILE --running-index FILE]");
}
const running: LocalImage | undefined = runningImage === undefined || runningIndex === undefined ? undefined : { name: "running", image: runningImage, index: runningIndex };

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
const spare = await reinspectSlot(
  system,
  {
    device: { device, label: config.labels.backup, fsType: config.slot.fs_type },
    role: "backup",
    record: { status: "none" },
    health: { status: "none" },
    fsck: { condition: "fsck", result: "skipped", detail: "benchmark" },
  },
  config,
);
const cpuOf = (usage: NodeJS.ResourceUsage) => (usage.userCPUTime + usage.systemCPUTime) / 1e6;
const beforeInstall = process.resourceUsage();
const result = await runInstallStage(system, log.forScope("install"), config, check.accepted, [], spare, running);
// maxRSS is in KiB and counts the hashing threads: they are this process
const usage = process.resourceUsage();
const cpuSeconds = cpuOf(usage);
// the install stage alone: without bun's start, the sources' transpiling and the check stage, which an image's size does not change
const installCpuSeconds = cpuSeconds - cpuOf(beforeInstall);
process.stdout.write(`${JSON.stringify({ ...result, peakRssKiB: usage.maxRSS, cpuSeconds, installCpuSeconds, engine: hashPool().engine })}\n`);
process.exit(result.status === "installed" ? 0 : 1);
