// QEMU scenario: a real distribution through the controller. The Debian test
// image debian-1.0 (scripts/build-debian-image: debootstrapped bookworm, systemd
// as init, its own kernel, pruned modules and an initrd of this project's dracut
// module inside, the controller's systemd units enabled) boots from SYSFS on the
// same kernel (build/kernel) and initramfs as every other scenario, not on its
// own; its debian-test-markers.service prints what it finds
// (test/debian-image/debian-test-markers) once systemd is up, then powers off.
//
// The machine also reports to a fleet server (issue 17), and its update
// server offers 2.0 rolled out to 0 % of the machines: the machine stays on
// 1.0, says why, and appears on the fleet's page with 1.0, marked good, and
// the decision "not-in-rollout". (kernel-switch.test.ts's (a) is the same at
// 100 %: the update reaches the machine, and the page shows 2.0.)
//
// This is groundwork for issue 14: the running kernel comes from build/kernel,
// not from the image, so when the two releases differ the image has no modules
// for the kernel that runs, and a `modprobe` of a module only the image has
// fails. The scenario states which case it saw instead of hiding it.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { access, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { repoHandler } from "../../controller/update/dev-server.ts";
import { runCommand } from "../../qemu-harness/command.ts";
import { buildDisk } from "../../qemu-harness/disk.ts";
import { GUEST_FORWARD_ADDRESS } from "../../qemu-harness/qemu-args.ts";
import { parseTestMarkers } from "../../qemu-harness/test-markers.ts";
import { withVm } from "../../qemu-harness/vm.ts";
import { seeFleet, withChromium } from "../browser/fleet-browser.ts";
import { bootEnvelope, HOSTILE, hostileReport } from "../fleet-envelopes.ts";
import { DEBIAN, marker } from "./debian-fixtures.ts";
import { ARTIFACTS, type Flavour, runFolder, SITE_CONFIG, vmOptions } from "./fixtures.ts";
import { startTestFleet, type TestFleet } from "./fleet-fixtures.ts";
import { slotFolder } from "./update-fixtures.ts";

const DEBIAN_IMAGE = DEBIAN.v1;
/**
 * To the markers: 176-212 s here with other VMs on the host (systemd's userspace alone
 * 2 min 12 s, the guest losing the CPU for up to 15 s at a time); a margin above that.
 */
const DEBIAN_BOOT_TIMEOUT_MS = 420_000;
/** From "@@TEST done" to QEMU's exit: systemd's shutdown, mark-shutdown, the shutdown environment. */
const DEBIAN_SHUTDOWN_TIMEOUT_MS = 180_000;

let disk: string;
let fleet: TestFleet;
let updatePort: number;
let stopUpdateServer: () => void;
beforeAll(async () => {
  try {
    await access(DEBIAN_IMAGE);
  } catch {
    throw new Error(`Cannot run the Debian scenario: ${DEBIAN_IMAGE} is missing; run scripts/build-debian-images`);
  }
  const work = join(await runFolder(), "debian");
  await mkdir(work, { recursive: true });
  // SYSFS runs 1.0 with its signed record; the channel then offers 2.0 (a small image: it is never fetched) to 0 % of the machines
  const key = join(work, "fleet-key");
  const keygen = await runCommand([ARTIFACTS.controller, "keygen", key]);
  const publicKey = keygen.stdout.split(/\s+/).find((word) => /^[A-Za-z0-9+/]{43}=$/.test(word));
  if (publicKey === undefined) throw new Error(`keygen printed no public key: ${keygen.stdout}`);
  const repo = join(work, "repo");
  const publish = (version: string, image: string, options: string[] = []) =>
    runCommand([ARTIFACTS.controller, "publish", "--repo", repo, "--channel", "stable", "--version", version, "--image", image, "--key", `${key}.secret`, ...options]);
  await publish("1.0", DEBIAN_IMAGE);
  const sysfs = await slotFolder(join(work, "sysfs"), { image: DEBIAN_IMAGE, repo });
  await publish("2.0", ARTIFACTS.systemC, ["--rollout", "0"]);
  const handler = repoHandler(repo, () => undefined);
  const updateServer = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 120, fetch: (request, server) => handler(request, server) });
  updatePort = updateServer.port as number;
  stopUpdateServer = () => updateServer.stop(true);
  fleet = await startTestFleet(work);

  const bootext = join(work, "bootext");
  await mkdir(join(bootext, "config.d"), { recursive: true });
  for (const [path, content] of Object.entries(SITE_CONFIG)) await Bun.write(join(bootext, path), content);
  const updateLines = ["[update]", `servers = ["http://${GUEST_FORWARD_ADDRESS}:${updatePort}/"]`, `trusted_keys = ["${publicKey}"]`];
  await writeFile(join(bootext, "config.d/60-fleet.toml"), [...updateLines, ...fleet.configLines, ""].join("\n"));
  const sizeMiB = Math.ceil(Bun.file(DEBIAN_IMAGE).size / 1024 / 1024) + 64;
  disk = join(work, "debian.img");
  await buildDisk({ path: disk, partitions: [{ label: "SYSFS", sizeMiB, content: sysfs }, { label: "BOOTEXT", sizeMiB: 16, content: bootext }] });
}, 300_000);

afterAll(async () => {
  stopUpdateServer?.();
  await fleet?.stop();
});

describe("Debian with systemd through the controller", () => {
  // The systemd initrd (it loads autofs4 itself, and it stays loaded). The same on dracut's shell
  // init, where binfmt_misc's automount fails, is kernel-switch.test.ts's (e): Debian 2.0 booted on a
  // kernel its image has no modules for, after a refused kexec.
  test.each([["(b)", "systemd"]] as const)(
    "%s %s initramfs: SYSFS holds a debootstrapped Debian; systemd reaches multi-user, marks the slot good, and the markers say which kernel runs",
    async (_name, flavour: Flavour) => {
      const started = Date.now();
      // test.blame: systemd-analyze blame's slowest units on the console too (here only: it costs seconds)
      await withVm(vmOptions({ flavour, disk, append: "test.blame", hostPorts: [updatePort, fleet.port] }), async (vm) => {
        await vm.waitFor("@@TEST done", DEBIAN_BOOT_TIMEOUT_MS);
        const upMs = Date.now() - started;
        await vm.waitForExit(DEBIAN_SHUTDOWN_TIMEOUT_MS);
        // The whole console, kept beside the disk: what systemd said is the point of this scenario.
        const consoleFile = join(await runFolder(), `debian-console-${flavour}.txt`);
        await Bun.write(consoleFile, vm.console());
        const markers = parseTestMarkers(vm.console());
        const running = marker(markers, "kernel-release");
        const imageKernels = marker(markers, "image-kernels");
        const modprobe = marker(markers, "modprobe");
        console.log(
          `debian (${flavour}): markers after ${(upMs / 1000).toFixed(1)} s, poweroff after ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
            `guest uptime at the markers ${marker(markers, "uptime")} s; running kernel ${running}, image kernels ${imageKernels}; ` +
            `modprobe ${modprobe}; system ${marker(markers, "system-running")}; failed units ${marker(markers, "failed-units")}; console in ${consoleFile}`,
        );
        expect(markers.imageId).toBe("debian-1.0");
        expect(marker(markers, "machine-id")).toMatch(/^[0-9a-f]{32}$/);
        expect(running).toMatch(/^\d+\.\d+\.\d+-\d+-amd64$/);
        expect(imageKernels).toMatch(/^\d+\.\d+\.\d+-\d+-amd64$/);
        // systemd finished starting up and the controller's unit marked the slot good
        expect(marker(markers, "system-running")).toMatch(/^(running|degraded)$/);
        expect(marker(markers, "mark-good-unit")).toBe("result=success exit=0 ran=yes");
        expect(markers.status?.exitCode).toBe(0);
        expect(markers.status?.output).toContain("booted: SYSFS (system) on /dev/vda1");
        // The issue-14 gap, stated exactly: the image's modules serve only its own kernel.
        const matches = running === imageKernels;
        expect(marker(markers, "modules-for-running-kernel")).toBe(matches ? "yes" : "no");
        expect(modprobe).toBe(matches ? "dummy exit=0" : "dummy exit=1");
        // Without the running kernel's modules systemd cannot load autofs4, and the binfmt_misc
        // automount fails (the failure the issue names) unless the initramfs already loaded it
        // (the systemd initrd does); with them nothing may fail.
        const allowedFailures = matches ? [] : ["proc-sys-fs-binfmt_misc.automount"];
        const failed = marker(markers, "failed-units");
        const failedUnits = failed === "none" ? [] : (failed ?? "missing").split(",");
        expect(failedUnits.filter((unit) => !allowedFailures.includes(unit))).toEqual([]);
        // The shutdown: systemd read the slot's x-initrd.mount from the utab entry the controller
        // wrote (mount-calls.ts utabEntry), so it left the slot its root sits on mounted instead of
        // failing to unmount it, and the shutdown environment unmounted it at the very end.
        const shutdown = vm.console().slice(vm.console().indexOf("@@TEST done"));
        expect(shutdown).not.toMatch(/Failed unmounting|Not all loop devices detached/);
        expect(shutdown).toContain("controller: shutdown: unmounted /oldsys/run/controller/slots/SYSFS");

        // 2.0 at 0 %: the machine stayed on 1.0 and said why
        expect(vm.console()).toContain("but version 2.0 is rolled out to 0 % of machines; this machine");
        // the fleet: the boot report and the mark-good left the machine before the markers ended
        expect(marker(markers, "fleet-outbox")).toMatch(/^empty after \d+ s$/);
        const machineId = marker(markers, "machine-id") ?? "";
        const seen = await fleet.machine(machineId);
        expect(seen?.machine).toMatchObject({
          hostname: "debian-test",
          lastBoot: { version: "1.0", slot: { label: "SYSFS", device: "/dev/vda1" }, update: { decision: "not-in-rollout" }, outcome: "handed-off" },
        });
        expect(seen?.machine.lastMarkGoodAt).toBeString();
        expect(seen?.machine.macs.length).toBeGreaterThan(0);
        expect(seen?.reports.map((report) => report.kind).sort()).toEqual(expect.arrayContaining(["boot", "mark-good"]));
        // the page a person opens, in chromium: this machine's row beside a hostile machine's, whose
        // HTML and script in every field show as text; how far 2.0's rollout went (nowhere)
        const hostileId = "d".repeat(32);
        expect(await fleet.post(bootEnvelope({ machine: { machineId: hostileId, macs: [], hostname: "lab-66" }, sentAt: new Date().toISOString(), report: hostileReport() }))).toBe(201);
        const screenshotPath = join(await runFolder(), `fleet-page-debian-${flavour}.png`);
        const page = await withChromium((browser) => seeFleet(browser, fleet.url, fleet.readToken, { screenshotPath }));
        const row = page.machines.find((candidate) => candidate["Machine"]?.startsWith("debian-test\n"));
        expect(row).toMatchObject({ Version: "1.0", Slot: "SYSFS\n/dev/vda1", Rollbacks: "0" });
        // good: its mark-good came after its boot report (mark-shutdown's may have come since, in its 2 s at the poweroff)
        expect(row?.["Health"]).toBe("good");
        expect(page.versions.find((version) => version["Version booted"] === "1.0")).toEqual({ "Version booted": "1.0", Machines: "1", Good: "1", "Rolled back": "0" });
        expect(row?.["Update check"]).toStartWith("not-in-rollout\n");
        expect(row?.["Update check"]).toContain("version 2.0 is rolled out to 0 % of machines");
        expect(page.rollouts.find((rollout) => rollout["Version offered"] === "2.0")).toMatchObject({ Share: "0 %", "Running it": "0 of 1", "Not in rollout": "1" });
        expect(page.machines.find((candidate) => candidate["Machine"]?.startsWith("lab-66\n"))?.["Version"]).toBe(`version ${HOSTILE}`);
        expect(page.runnable).toEqual({ scripts: 0, handlers: [], loaders: [], javascriptLinks: [] });
        expect(page.dialogs).toEqual([]);
        console.log(`debian (${flavour}): the fleet server took ${seen?.reports.length} reports of ${machineId}; the page in chromium: ${screenshotPath}`);
      });
    },
    DEBIAN_BOOT_TIMEOUT_MS + DEBIAN_SHUTDOWN_TIMEOUT_MS + 10_000,
  );
});
