// QEMU scenarios: a real Debian kernel, an initramfs built by the real dracut
// with this project's module, and the test system, whose init prints what it
// finds (test/image/init). Each scenario is its own boot; (a) and (g) follow it
// to the poweroff, the others end at the boot report (fixtures.ts, BootEnd).

import { beforeAll, describe, expect, test } from "bun:test";
import type { BootReport } from "../../controller/boot/report.ts";
import type { TestMarkers } from "../../qemu-harness/test-markers.ts";
import { withVm } from "../../qemu-harness/vm.ts";
import { BOOT_TIMEOUT_MS, bootToTestSystem, type Disks, type Flavour, SCENARIO_TIMEOUT_MS, scenarioDisks, vmOptions } from "./fixtures.ts";

let disks: Disks;
beforeAll(async () => {
  disks = await scenarioDisks();
}, 120_000);

const STAGES = ["cmdline", "config", "disks", "bootext", "heddle", "slots", "health", "network", "check", "mounts", "overmounts", "attempt", "kernel", "handoff"];

function reportOf(markers: TestMarkers): BootReport {
  expect(markers.reportState).toBe("printed");
  return markers.report as BootReport;
}

function mountAt(markers: TestMarkers, target: string) {
  return markers.mounts.findLast((mount) => mount.target === target);
}

function fileContent(markers: TestMarkers, path: string): string | undefined {
  const file = markers.files.get(path);
  return file?.state === "content" ? file.content : file?.state;
}

/** What the test system found in /etc/machine-id: the id, "empty" or "missing". */
function machineIdOf(markers: TestMarkers): string | undefined {
  return markers.lines.find((line) => line.startsWith("machine-id "))?.slice("machine-id ".length);
}

/** (a) and (g): SYSFS boots through the controller, whichever dracut flavour runs it. */
async function expectStandardBoot(flavour: Flavour) {
  await bootToTestSystem({ flavour, disk: disks.standard, append: "test.status test.cat=/etc/os-release,/run/mount/utab" }, ({ markers, console }) => {
    expect(markers.initStarted?.path).toBe("/sbin/init");
    expect(markers.imageId).toBe("system-a");
    // / is the read-only image, loop-mounted from the SYSFS partition
    expect(markers.root).toBe("ro");
    expect(mountAt(markers, "/")).toMatchObject({ fstype: "squashfs", source: expect.stringMatching(/^\/dev\/loop\d+$/) });
    expect(mountAt(markers, "/")?.options).toContain("ro");
    // /etc is a writable tmpfs holding the image's files; /var/log and /tmp are tmpfs
    expect(markers.etc).toEqual({ fstype: "tmpfs", writable: true });
    expect(fileContent(markers, "/etc/os-release")).toContain("ID=controller-test");
    expect(markers.varLog).toEqual({ fstype: "tmpfs", writable: true });
    expect(markers.tmp).toEqual({ fstype: "tmpfs", writable: true });
    // BOOTEXT's config.d set /var/log to 32m
    expect(mountAt(markers, "/var/log")?.options).toContain("size=32768k");

    const report = reportOf(markers);
    expect(report.outcome).toBe("handed-off");
    expect(report.boot.booted).toMatchObject({ label: "SYSFS", role: "system", device: "/dev/vda1" });
    expect(report.cmdline.root).toBe("controller");
    expect(report.partitions.map((p) => p.label).sort()).toEqual(["BACKUPFS", "BOOTEXT", "SYSFS"]);
    expect(report.config.provenance['tmpfs."/var/log".size']).toBe("bootext:config.d/50-site.toml");
    expect(report.config.provenance["labels.system"]).toBe("built-in defaults");
    expect(report.mounts.map((m) => m.target)).toEqual(expect.arrayContaining(["/sysroot", "/sysroot/etc", "/sysroot/var/log", "/sysroot/tmp"]));
    expect(report.stages.map((s) => s.stage)).toEqual(STAGES);
    expect(report.stages.every((s) => s.outcome === "ok" && s.durationMs >= 0)).toBe(true);
    expect(report.handoff?.init).toEqual({ path: "/sbin/init", source: "boot.real_init from built-in defaults" });
    // the image ships an empty /etc/machine-id; the scenario's BOOTEXT has none yet: one is made, kept there and put on /etc
    expect(machineIdOf(markers)).toMatch(/^[0-9a-f]{32}$/);
    expect(report.machineId).toMatchObject({ source: "generated", id: machineIdOf(markers) });

    // issue 14 (g): the test image carries no kernel and no /lib/modules at all: it boots on the
    // running kernel, and the kernel stage says loudly that its modules are missing
    const release = report.kernel?.running?.release ?? "unknown";
    expect(report.kernel).toMatchObject({ outcome: "boot-on", mode: "kexec", running: { release: expect.stringMatching(/^\d+\.\d+\.\d+-\d+-amd64$/) }, errors: [] });
    expect(report.kernel?.slotKernel).toBeUndefined();
    expect(report.kernel?.warnings).toEqual([expect.stringContaining(`its image has no /lib/modules/${release} (it has none at all): every module the system loads after the handoff will fail`)]);
    expect(console).toContain(`controller: kernel: WARNING: SYSFS on /dev/vda1 runs on the running kernel ${release}, but its image has no /lib/modules/${release}`);

    // `controller status` in the booted system prints the report for a person
    expect(markers.status?.exitCode).toBe(0);
    expect(markers.status?.output).toContain("booted: SYSFS (system) on /dev/vda1");
    expect(markers.status?.output).toContain(`kernel: ${release} `);
    expect(markers.status?.output).toContain('; the image carries none (boot.kernel_switch "kexec": boot-on)');
    // every stage spoke on the console and in the kernel log, with one prefix
    for (const stage of STAGES) expect(console).toMatch(new RegExp(`controller: ${stage}: `));
    expect(markers.kmsgControllerLines).toBeGreaterThanOrEqual(STAGES.length);

    // The shutdown: the controller recorded x-initrd.mount for the slot and BOOTEXT in utab, in
    // libmount's format (mount-calls.ts utabEntry), so a booted
    // systemd leaves them mounted until its end; then the test init, as systemd-shutdown does,
    // runs the shutdown environment in /run/initramfs, which unmounts the root, the slot and
    // BOOTEXT, with nothing failing through power-off.
    const utab = fileContent(markers, "/run/mount/utab") ?? "";
    expect(utab).toMatch(/TARGET=\/run\/controller\/slots\/SYSFS ROOT=\S+ OPTS=[^ \\]*x-initrd\.mount/);
    expect(utab).toMatch(/TARGET=\/run\/controller\/bootext ROOT=\S+ OPTS=[^ \\]*x-initrd\.mount/);
    expect(console).toContain("@@TEST mark-shutdown exit=0");
    const shutdown = console.slice(console.indexOf("@@TEST mark-shutdown"));
    expect(shutdown).toMatch(/^controller: shutdown: unmounted \/oldroot\r?$/m);
    expect(shutdown).toContain("controller: shutdown: unmounted /oldsys/run/controller/slots/SYSFS");
    expect(shutdown).toContain("controller: shutdown: unmounted /oldsys/run/controller/bootext");
    expect(shutdown).not.toMatch(/FAILED|Failed unmounting|Not all loop devices detached|Cannot |shutdown-pivot-failed/);
  });
}

describe("QEMU scenarios", () => {
  test("(a) boot SYSFS with dracut's shell init", () => expectStandardBoot("shell"), SCENARIO_TIMEOUT_MS);

  test(
    "(b) DIR_ folder, DIR_ squashfs, DIR_ squashfs.xz and FILE_ overmounts are visible at their targets",
    async () => {
      const cat = ["/srv/marker", "/opt/squashfs-marker", "/mnt/xz-marker", "/etc/issue", "/etc/site_conf/marker", "/usr/share/not-in-image/marker"];
      await bootToTestSystem({ flavour: "shell", disk: disks.standard, append: `test.cat=${cat.join(",")}` }, ({ markers }) => {
        expect(fileContent(markers, "/srv/marker")).toBe("from DIR_srv");
        expect(fileContent(markers, "/opt/squashfs-marker")).toBe("from DIR_opt.squashfs");
        expect(fileContent(markers, "/mnt/xz-marker")).toBe("from DIR_mnt.squashfs.xz");
        expect(fileContent(markers, "/etc/issue")).toBe("from FILE_etc_issue");
        // %5F is a literal underscore; the target did not exist and was created on the tmpfs /etc
        expect(fileContent(markers, "/etc/site_conf/marker")).toBe("from DIR_etc_site%5Fconf");
        expect(fileContent(markers, "/usr/share/not-in-image/marker")).toBe("missing");
        expect(mountAt(markers, "/opt")).toMatchObject({ fstype: "squashfs" });
        expect(mountAt(markers, "/mnt")).toMatchObject({ fstype: "squashfs" });

        const outcomes = Object.fromEntries(reportOf(markers).overmounts.map((o) => [o.entry, o]));
        expect(outcomes["DIR_srv"]?.status).toBe("mounted");
        expect(outcomes["DIR_opt.squashfs"]?.status).toBe("mounted");
        expect(outcomes["DIR_mnt.squashfs.xz"]?.status).toBe("mounted");
        expect(outcomes["FILE_etc_issue"]?.status).toBe("mounted");
        expect(outcomes["DIR_etc_site%5Fconf"]).toMatchObject({ status: "mounted", target: "/etc/site_conf" });
        expect(outcomes["DIR_usr_share_not-in-image"]).toMatchObject({ status: "skipped", detail: expect.stringContaining("does not exist in the read-only image") });
        expect(outcomes["DIR_.._escape"]?.status).toBe("refused");
        expect(outcomes["README"]?.status).toBe("ignored");
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(c) real_init= is honoured",
    async () => {
      await bootToTestSystem({ flavour: "shell", disk: disks.standard, append: "real_init=/sbin/alt-init" }, ({ markers }) => {
        expect(markers.initStarted?.path).toBe("/sbin/alt-init");
        expect(reportOf(markers).handoff?.init).toEqual({ path: "/sbin/alt-init", source: "cmdline real_init=" });
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(d) broken TOML in config.d: boots on the defaults for that file, error on the console and in the report",
    async () => {
      await bootToTestSystem({ flavour: "shell", disk: disks.brokenConfig }, ({ markers, console }) => {
        expect(markers.imageId).toBe("system-a");
        expect(console).toMatch(/controller: bootext: ERROR: bootext:config.d\/40-broken.toml: TOML syntax error at line 3/);
        const report = reportOf(markers);
        expect(report.config.layers.find((l) => l.source === "bootext:config.d/40-broken.toml")?.status).toBe("rejected");
        expect(report.config.problems.join("\n")).toContain("40-broken.toml: TOML syntax error");
        // the broken file's /tmp size is not applied; the good file beside it is
        expect(mountAt(markers, "/tmp")?.options.some((o) => o === "size=16384k")).toBe(false);
        expect(mountAt(markers, "/var/log")?.options).toContain("size=32768k");
        expect(report.config.provenance['tmpfs."/tmp".size']).toBe("built-in defaults");
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(e) no SYSFS: BACKUPFS is booted read-only, loudly, and reported",
    async () => {
      await bootToTestSystem({ flavour: "shell", disk: disks.backupOnly, append: "controller.timeouts.devices_seconds=3" }, ({ markers, console }) => {
        expect(markers.imageId).toBe("system-b");
        expect(markers.root).toBe("ro");
        expect(console).toContain("BOOTING THE BACKUP SYSTEM BACKUPFS on /dev/vda1");
        const report = reportOf(markers);
        expect(report.boot.booted).toMatchObject({ label: "BACKUPFS", role: "backup" });
        expect(report.decisions.join("\n")).toContain("boot the backup BACKUPFS on /dev/vda1 because no partition is labelled SYSFS");
        expect(report.config.provenance["timeouts.devices_seconds"]).toBe("cmdline:controller.timeouts.devices_seconds");
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );

  test(
    "(f) nothing bootable: a message listing the disks and labels seen, then dracut's emergency shell",
    async () => {
      await withVm(vmOptions({ flavour: "shell", disk: disks.nothingBootable, append: "controller.timeouts.devices_seconds=2" }), async (vm) => {
        await vm.waitFor("NOTHING TO BOOT.", BOOT_TIMEOUT_MS);
        await vm.waitFor("Looked for partitions labelled SYSFS or BACKUPFS.", 10_000);
        await vm.waitFor("Filesystems seen: /dev/vda1 (ext4, label DATA).", 10_000);
        await vm.waitFor("controller:/# ", 60_000);
        // a live shell: only the shell's arithmetic prints 42 (and a minimal initramfs has no grep)
        await vm.send('echo $((6*7))MARK; while read -r line; do case $line in *nothing-bootable*) echo "REPORT-$((1+1))";; esac; done < /run/controller/report.json\n');
        await vm.waitFor(/42MARK\nREPORT-2\n/, 30_000);
        await vm.kill();
      });
    },
    SCENARIO_TIMEOUT_MS,
  );

  test("(g) boot SYSFS with the systemd initrd", () => expectStandardBoot("systemd"), SCENARIO_TIMEOUT_MS);

  test(
    "(h) real_init= with the systemd initrd: its switch-root takes the controller's choice",
    async () => {
      await bootToTestSystem({ flavour: "systemd", disk: disks.standard, append: "real_init=/sbin/alt-init" }, ({ markers }) => {
        expect(markers.initStarted?.path).toBe("/sbin/alt-init");
      }, "report");
    },
    SCENARIO_TIMEOUT_MS,
  );
});
