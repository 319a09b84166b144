// QEMU scenarios for diskless boots. (a) is a real PXE boot: QEMU's NIC ROM
// (iPXE) gets DHCP from QEMU's user network, boot.ipxe and then the kernel and
// the initramfs by TFTP from a folder scripts/build-pxe made; the controller
// fetches the update server's signed image over HTTP (the server on the host's
// 127.0.0.1, reached through guestfwd) into RAM and boots it, and the disk the
// VM has, with real slots and writes reaching the file, is byte for byte what
// it was. (b) publishes an image larger than the VM's RAM allows: it is refused
// before its download, with the numbers, and nothing boots (the server no
// longer even holds the image).

import { beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { copyFile, mkdir, rm, truncate, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { BootReport } from "../../controller/boot/report.ts";
import { repoHandler } from "../../controller/update/dev-server.ts";
import { type Manifest, manifestPath } from "../../controller/update/manifest.ts";
import { runCommand } from "../../qemu-harness/command.ts";
import { GUEST_FORWARD_ADDRESS } from "../../qemu-harness/qemu-args.ts";
import { parseTestMarkers } from "../../qemu-harness/test-markers.ts";
import { withVm } from "../../qemu-harness/vm.ts";
import { ARTIFACTS, BOOT_TIMEOUT_MS, disklessAppend, SCENARIO_TIMEOUT_MS, SHUTDOWN_TIMEOUT_MS, TCG_KERNEL_PARAMS } from "./fixtures.ts";
import { type UpdateWorld, updateWorld } from "./update-fixtures.ts";

const BUILD_PXE = resolve(import.meta.dir, "../../scripts/build-pxe");
/** TFTP of a ~80 MB initramfs through QEMU's user network takes most of a minute under TCG. */
const PXE_BOOT_TIMEOUT_MS = BOOT_TIMEOUT_MS + 120_000;
/** the VM of (b): too small for the published 2 GiB image */
const SMALL_MEMORY_MIB = 1024;

let world: UpdateWorld;
let serverUrl: string;
let pxeDir: string;
/** serves a repository like "newer", but its 2.0 image is a 2 GiB file */
let hugeServer: { port: number; accessLog: string[] };

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of Bun.file(path).stream()) hash.update(chunk);
  return hash.digest("hex");
}

beforeAll(async () => {
  world = await updateWorld();
  serverUrl = `http://${GUEST_FORWARD_ADDRESS}:${world.server.port}/`;
  pxeDir = join(world.work, "pxe");
  await runCommand([BUILD_PXE, "--server", serverUrl, "--key", world.publicKey, "--append", `console=ttyS0 panic=-1 ${TCG_KERNEL_PARAMS}`, "--initramfs", ARTIFACTS.initramfs.shell, pxeDir]);

  const huge = join(world.work, "huge.squashfs");
  // a squashfs magic, then 2 GiB of holes: publish takes it, no VM here can hold it
  await writeFile(huge, "hsqs");
  await truncate(huge, 2 * 1024 ** 3);
  const hugeRepo = join(world.work, "repo-huge");
  await mkdir(hugeRepo, { recursive: true });
  await runCommand([ARTIFACTS.controller, "publish", "--repo", hugeRepo, "--channel", "stable", "--version", "2.0", "--image", huge, "--key", join(world.work, "fleet.secret")]);
  await rm(huge);
  // The machine must refuse from the manifest's numbers alone, so the repository's 2 GiB copy goes too (a run that kept
  // such files filled a CI machine's disk); a request for it would still be in the access log, which (b) reads.
  const manifest = (await Bun.file(join(hugeRepo, manifestPath("stable"))).json()) as Manifest;
  await rm(join(hugeRepo, manifest.image.url));
  const accessLog: string[] = [];
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 120, fetch: repoHandler(hugeRepo, (line: string) => accessLog.push(line)) });
  server.unref();
  hugeServer = { port: server.port as number, accessLog };
}, 600_000);

function reportOf(markersReport: unknown, state: string): BootReport {
  expect(state).toBe("printed");
  return markersReport as BootReport;
}

describe("diskless boots in QEMU", () => {
  test(
    "(a) PXE: iPXE loads kernel and initramfs by TFTP, the signed image runs from RAM, and the disk is not written",
    async () => {
      const disk = join(world.work, "pxe-disk.img");
      await copyFile(world.disk, disk);
      const before = await sha256(disk);
      world.server.serve("newer");
      await withVm(
        { pxe: { tftpDir: pxeDir, bootfile: "boot.ipxe" }, network: { hostPorts: [world.server.port] }, disks: [disk], writeDisks: true },
        async (vm) => {
          await vm.waitFor(/tftp:\/\/10\.0\.2\.2\/boot\.ipxe\.\.\. ok/, 120_000);
          await vm.waitFor("initramfs.img...", 60_000);
          await vm.waitFor("@@TEST done", PXE_BOOT_TIMEOUT_MS);
          await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
          const console = vm.console();
          const markers = parseTestMarkers(console);
          expect(markers.imageId).toBe("system-c");
          expect(markers.root).toBe("ro");
          // the root is the image in RAM; no disk is mounted anywhere
          expect(markers.mounts.find((mount) => mount.target === "/")?.fstype).toBe("squashfs");
          expect(markers.mounts.find((mount) => mount.target === "/run/controller/diskless")).toMatchObject({ fstype: "tmpfs", options: expect.arrayContaining(["ro"]) });
          expect(markers.mounts.filter((mount) => mount.source.startsWith("/dev/vd"))).toEqual([]);
          expect(markers.etc).toEqual({ fstype: "tmpfs", writable: true });
          const report = reportOf(markers.report, markers.reportState);
          expect(report.outcome).toBe("handed-off");
          expect(report.cmdline.configOverrides.map((override) => override.key)).toEqual(["diskless.mode", "update.servers", "update.trusted_keys"]);
          expect(report.diskless).toMatchObject({
            why: 'diskless.mode is "always" (from cmdline:controller.diskless)',
            status: "running-from-ram",
            version: "2.0",
            image: "/run/controller/diskless/system.squashfs",
          });
          expect(report.diskless?.bytesFetched).toBe(report.update.check.manifest?.image.size);
          expect(report.diskless?.ram?.availableMiB).toBeGreaterThan(report.diskless?.ram?.imageMiB ?? Infinity);
          expect(report.update.check).toMatchObject({ decision: "install", manifest: { version: "2.0", signedBy: world.publicKey } });
          expect(report.stages.map((stage) => stage.stage)).toEqual(expect.arrayContaining(["network", "check", "server-config", "diskless", "handoff"]));
          expect(report.stages.map((stage) => stage.stage)).not.toEqual(expect.arrayContaining(["bootext"]));
          expect(report.partitions.map((partition) => partition.label).sort()).toEqual(["BACKUPFS", "BOOTEXT", "SYSFS"]);
          // the booted system's own mark-good has nothing to write, and says so without failing
          expect(markers.markGood).toEqual({ state: "ran", exitCode: 0 });
          // the fleet config of version 2.0, on this boot only
          expect(markers.mounts.findLast((mount) => mount.target === "/var/log")?.options).toContain("size=24576k");
          expect(console).toContain("controller: diskless: version 2.0 verified in RAM");
          expect(world.server.accessLog.some((line) => line.includes("/images/") && line.includes(" 200 "))).toBe(true);
        },
      );
      expect(await sha256(disk)).toBe(before);
    },
    PXE_BOOT_TIMEOUT_MS + 120_000,
  );

  test(
    "(b) an image larger than RAM allows is refused before its download: the console says how much it needs, nothing boots",
    async () => {
      const append = disklessAppend(hugeServer.port, world.publicKey);
      await withVm({ kernel: ARTIFACTS.kernel, initrd: ARTIFACTS.initramfs.shell, append, memoryMiB: SMALL_MEMORY_MIB, network: { hostPorts: [hugeServer.port] } }, async (vm) => {
        await vm.waitFor("NOTHING TO BOOT FROM RAM.", BOOT_TIMEOUT_MS);
        const [message] = await vm.waitFor(
          /Cannot run version 2\.0 from RAM: the image needs 2048 MiB plus a margin of 256 MiB \(diskless\.ram_margin_mib\), but only (\d+) MiB is available \(MemAvailable in \/proc\/meminfo\)/,
          10_000,
        );
        const available = Number(/only (\d+) MiB/.exec(message)?.[1]);
        expect(available).toBeLessThan(SMALL_MEMORY_MIB);
        expect(available).toBeGreaterThan(0);
        await vm.waitFor("controller:/# ", 60_000);
        // dracut's emergency shell, live, and the report says nothing booted
        await vm.send('echo $((6*7))MARK; while read -r line; do case $line in *nothing-bootable*) echo "REPORT-$((1+1))";; esac; done < /run/controller/report.json\n');
        await vm.waitFor(/42MARK\nREPORT-2\n/, 30_000);
        await vm.kill();
      });
      expect(hugeServer.accessLog.some((line) => line.includes("/manifest.json"))).toBe(true);
      expect(hugeServer.accessLog.filter((line) => line.includes("/images/"))).toEqual([]);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
