// QEMU scenarios for Heddle's updates (issue 5, test c). One disk: SYSFS with
// system-a and a BOOTEXT whose updates/ holds update2 and update10 (the real
// Debian kernel and this project's initramfs, each with a cmdline that names
// it), update11 without BOOT, and `unsigned`, which has BOOT but no signature.
// The checksums are made by sha512sum and signed by `controller sign`, with a
// key BOOTEXT's config.d trusts. A kexec shows as a second "Linux version"
// banner on the console and as the marker in the booted system's /proc/cmdline.

import { beforeAll, describe, expect, test } from "bun:test";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BootReport } from "../../controller/boot/report.ts";
import { runCommand } from "../../qemu-harness/command.ts";
import { buildDisk } from "../../qemu-harness/disk.ts";
import type { TestMarkers } from "../../qemu-harness/test-markers.ts";
import { parseTestMarkers } from "../../qemu-harness/test-markers.ts";
import { withVm } from "../../qemu-harness/vm.ts";
import { ARTIFACTS, type Boot, BOOT_TIMEOUT_MS, bootToTestSystem, requireArtifacts, runFolder, SCENARIO_CMDLINE, SCENARIO_TIMEOUT_MS, SHUTDOWN_TIMEOUT_MS, vmOptions } from "./fixtures.ts";

const FLAVOUR = "shell";
/** What an update's cmdline file holds besides its name: what vmOptions gives every boot, and the file to print. */
const UPDATE_CMDLINE = `${SCENARIO_CMDLINE} test.cat=/proc/cmdline`;

let disk: string;

async function update(dir: string, name: string, options: { boot: boolean; sign: boolean; realFiles: boolean }, secretKey: string) {
  const folder = join(dir, "updates", name);
  await mkdir(folder, { recursive: true });
  if (options.realFiles) {
    await copyFile(ARTIFACTS.kernel, join(folder, "kernel"));
    await copyFile(ARTIFACTS.initramfs[FLAVOUR], join(folder, "initrd"));
  } else {
    // never loaded: a BOOT-less or refused update only has to be listed and checked
    await writeFile(join(folder, "kernel"), `not a kernel: ${name}\n`);
    await writeFile(join(folder, "initrd"), `not an initrd: ${name}\n`);
  }
  await writeFile(join(folder, "cmdline"), `${UPDATE_CMDLINE} test.heddle=${name}\n`);
  const sums = await runCommand(["sh", "-c", 'cd "$1" && sha512sum kernel initrd cmdline', "sh", folder]);
  await writeFile(join(folder, "SHA512SUMS"), sums.stdout);
  // the signature names the folder (the update's name) and a version
  if (options.sign) await runCommand([ARTIFACTS.controller, "sign", "--key", secretKey, "--purpose", "heddle", "--version", `1.${name.replace(/\D/g, "")}`, join(folder, "SHA512SUMS")]);
  if (options.boot) await writeFile(join(folder, "BOOT"), "");
}

beforeAll(async () => {
  await requireArtifacts();
  const work = join(await runFolder(), "heddle");
  await mkdir(work, { recursive: true });
  const key = join(work, "heddle-key");
  await runCommand([ARTIFACTS.controller, "keygen", key]);
  const publicKey = (await Bun.file(`${key}.pub`).text()).trim();

  const sysfs = join(work, "sysfs");
  await mkdir(sysfs, { recursive: true });
  await copyFile(ARTIFACTS.systemA, join(sysfs, "system.squashfs"));
  const bootext = join(work, "bootext");
  await mkdir(join(bootext, "config.d"), { recursive: true });
  await writeFile(join(bootext, "config.d", "50-keys.toml"), `[update]\ntrusted_keys = ["${publicKey}"]\n`);
  await update(bootext, "update2", { boot: true, sign: true, realFiles: true }, `${key}.secret`);
  await update(bootext, "update10", { boot: true, sign: true, realFiles: true }, `${key}.secret`);
  await update(bootext, "update11", { boot: false, sign: true, realFiles: false }, `${key}.secret`);
  await update(bootext, "unsigned", { boot: true, sign: false, realFiles: false }, `${key}.secret`);
  disk = join(work, "heddle.img");
  // two kernels and initramfs images of about 90 MB each
  await buildDisk({ path: disk, partitions: [{ label: "SYSFS", sizeMiB: 120, content: sysfs }, { label: "BOOTEXT", sizeMiB: 320, content: bootext }] });
}, 300_000);

/** bootToTestSystem for a boot that kexecs: two kernels and two controllers, so twice the time to the last marker. */
async function bootWithKexec(boot: Boot, check: (result: { markers: TestMarkers; console: string }) => void): Promise<void> {
  await withVm(vmOptions(boot), async (vm) => {
    await vm.waitFor("@@TEST done", 2 * BOOT_TIMEOUT_MS);
    await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
    check({ markers: parseTestMarkers(vm.console()), console: vm.console() });
  });
}

function reportOf(markers: TestMarkers): BootReport {
  expect(markers.reportState).toBe("printed");
  return markers.report as BootReport;
}

/** How many kernels started on this console: each prints its banner once. */
function kernelBanners(console: string): number {
  return console.match(/Linux version \d/g)?.length ?? 0;
}

function procCmdline(markers: TestMarkers): string | undefined {
  const file = markers.files.get("/proc/cmdline");
  return file?.state === "content" ? file.content : undefined;
}

describe("Heddle updates booted with kexec", () => {
  test(
    "no flag: update10 (last by natural sort, not update2) boots by kexec exactly once, and the booted system sees the marker",
    async () => {
      await bootWithKexec({ flavour: FLAVOUR, disk }, ({ markers, console }) => {
        expect(console).toContain("controller: heddle: WARNING: update update11 has no BOOT file (its copy is not finished?): skipped");
        expect(console).toContain("controller: heddle: booting update update10 (version 1.10, signed by ");
        expect(kernelBanners(console)).toBe(2);
        expect(procCmdline(markers)).toBe(`${UPDATE_CMDLINE} test.heddle=update10 rd.controller.kexec=update10`);
        const report = reportOf(markers);
        expect(report.heddle).toMatchObject({ status: "booted-by-kexec", kexecFrom: "update10", reason: "booted by kexec from update update10: no second kexec" });
        expect(report.heddle?.updates.map((u) => [u.name, u.hasBoot, u.hasSignature])).toEqual([
          ["unsigned", true, false],
          ["update2", true, true],
          ["update10", true, true],
          ["update11", false, true],
        ]);
        expect(report.outcome).toBe("handed-off");
        expect(markers.imageId).toBe("system-a");
      });
    },
    SCENARIO_TIMEOUT_MS * 2,
  );

  test(
    "heddle_update=update2 boots that one by kexec",
    async () => {
      await bootWithKexec({ flavour: FLAVOUR, disk, append: "heddle_update=update2" }, ({ markers, console }) => {
        expect(kernelBanners(console)).toBe(2);
        expect(procCmdline(markers)).toBe(`${UPDATE_CMDLINE} test.heddle=update2 rd.controller.kexec=update2`);
        expect(reportOf(markers).heddle?.kexecFrom).toBe("update2");
      });
    },
    SCENARIO_TIMEOUT_MS * 2,
  );

  test(
    "heddle_boot=dist: the installed system, no kexec",
    async () => {
      await bootToTestSystem({ flavour: FLAVOUR, disk, append: "heddle_boot=dist test.cat=/proc/cmdline" }, ({ markers, console }) => {
        expect(kernelBanners(console)).toBe(1);
        expect(procCmdline(markers)).not.toContain("rd.controller.kexec");
        expect(reportOf(markers).heddle).toMatchObject({ status: "installed", reason: "heddle_boot=dist: booting the installed system, updates ignored" });
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "heddle_update=update11 (no BOOT) with heddle_fallback=1: the installed system without asking",
    async () => {
      await bootToTestSystem({ flavour: FLAVOUR, disk, append: "heddle_update=update11 heddle_fallback=1" }, ({ markers, console }) => {
        expect(kernelBanners(console)).toBe(1);
        expect(console).not.toContain("Boot the installed system instead?");
        expect(reportOf(markers).heddle).toMatchObject({
          status: "installed",
          questions: [],
          reason: "heddle_update=update11: it has no BOOT file, its copy may be incomplete; heddle_fallback=1: booting the installed system",
        });
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "heddle_update=/: the list on the serial console; a wrong name is asked again; the unsigned update typed is refused",
    async () => {
      await withVm(vmOptions({ flavour: FLAVOUR, disk, append: "heddle_update=/" }), async (vm) => {
        await vm.waitFor("Type the name of the update to boot", BOOT_TIMEOUT_MS);
        await vm.send("update99\n");
        await vm.waitFor("Type the name of the update to boot", 60_000);
        await vm.send("unsigned\n");
        await vm.waitFor("@@TEST done", BOOT_TIMEOUT_MS);
        await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
        const console = vm.console();
        expect(console).toContain("  update2 (BOOT, signed, version 1.2)\n  update10 (BOOT, signed, version 1.10)\n  update11 (no BOOT, signed, version 1.11)\n");
        expect(console).toContain('there is no update "update99"');
        expect(console).toContain(
          "controller: heddle: ERROR: Cannot boot update unsigned: it is not signed: no SHA512SUMS.sig, and heddle.allow_unsigned is false",
        );
        expect(kernelBanners(console)).toBe(1);
        const markers = parseTestMarkers(console);
        const heddle = reportOf(markers).heddle;
        expect(heddle).toMatchObject({ status: "refused", chosen: "unsigned" });
        expect(heddle?.questions.map((q) => q.answer)).toEqual(["update99", "unsigned"]);
        expect(markers.imageId).toBe("system-a");
      });
    },
    SCENARIO_TIMEOUT_MS,
  );
});
