// Boots a real kernel and dracut initramfs to check the harness itself: the
// console can be read and typed into, disks reach the guest, a poweroff ends
// QEMU, and QEMU is gone afterwards whatever happened. It breaks into dracut's
// shell (rd.break=pre-mount), so the controller is never run and any dracut
// initramfs for root=controller will do: it boots the shell flavour that
// scripts/setup builds.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildDisk } from "../../qemu-harness/disk.ts";
import { PVH_KERNEL_DIR } from "../../qemu-harness/pvh-kernel.ts";
import { VmError, withVm } from "../../qemu-harness/vm.ts";
import { ARTIFACTS, isRunning, requireArtifacts } from "./fixtures.ts";

const kernel = ARTIFACTS.kernel;
const initrd = ARTIFACTS.initramfs.shell;

/** A boot to dracut's shell takes about 25 s under TCG; several VMs at once on a small machine take longer. */
const BOOT_TIMEOUT_MS = 180_000;
const COMMAND_TIMEOUT_MS = 30_000;

test("QEMU failing to start is reported with its stderr and the command line", async () => {
  const missing = join(tmpdir(), "harness-no-such-kernel");
  const failing = withVm({ kernel: missing, kernelEntry: "bzimage", initrd: missing, append: "console=ttyS0" }, (vm) =>
    vm.waitFor("Linux version", 30_000),
  );
  const error: unknown = await failing.catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(VmError);
  const message = (error as VmError).message;
  expect(message).toMatch(/^QEMU exited \(code 1\) before "Linux version" appeared on the console\n/);
  expect(message).toContain(`--- QEMU stderr ---\nqemu: could not open kernel file '${missing}'`);
  expect(message).toContain(`--- QEMU command line ---\nqemu-system-x86_64 `);
});

describe("the QEMU harness on a real kernel", () => {
  let dir: string;
  beforeAll(async () => {
    await requireArtifacts();
    dir = await mkdtemp(join(tmpdir(), "harness-boot-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test(
    "boots to dracut's shell, runs a typed command, sees the disk's labels, and ends with the guest's poweroff",
    async () => {
      const disk = join(dir, "disk.img");
      await buildDisk({ path: disk, partitions: [{ label: "SYSFS", sizeMiB: 8 }, { label: "BOOTEXT", sizeMiB: 8 }] });
      const options = {
        kernel,
        initrd,
        append: "console=ttyS0 root=controller rd.break=pre-mount panic=-1",
        disks: [disk],
        consoleLog: join(dir, "console.log"),
      };
      let pid = 0;
      let commandLine = "";
      const exitCode = await withVm(options, async (vm) => {
        pid = vm.pid;
        commandLine = vm.commandLine;
        // dracut's shell init prompts "pre-mount:/# "; its systemd flavour first has sulogin ask for Enter.
        const prompt = await vm.waitFor(/(?:pre-mount:\/# |Control-D to continue\): )$/, BOOT_TIMEOUT_MS);
        if (prompt[0].startsWith("Control-D")) {
          await vm.send("\n");
          await vm.waitFor(/# $/, COMMAND_TIMEOUT_MS);
        }
        // The typed line is echoed back; only the shell's arithmetic produces "42MARK".
        await vm.send("echo $((6*7))MARK\n");
        await vm.waitFor("42MARK", COMMAND_TIMEOUT_MS);
        await vm.send("blkid -s LABEL -o value /dev/vda1 /dev/vda2\n");
        await vm.waitFor("SYSFS\nBOOTEXT\n", COMMAND_TIMEOUT_MS);
        // a minimal initramfs may have no poweroff; the kernel's sysrq always works
        await vm.send("echo o > /proc/sysrq-trigger\n");
        return await vm.waitForExit(COMMAND_TIMEOUT_MS);
      });
      expect(exitCode).toBe(0);
      expect(isRunning(pid)).toBe(false);
      // the PVH entry by default: QEMU was given the kernel's ELF, unpacked from the bzImage
      expect(commandLine).toContain(` -kernel ${PVH_KERNEL_DIR}/`);
    },
    BOOT_TIMEOUT_MS + 3 * COMMAND_TIMEOUT_MS,
  );

  test("a wait that fails shows the console and the command line, and QEMU is killed", async () => {
    let pid = 0;
    const failing = withVm(
      // the bzImage entry, which bench/boot.ts uses, boots too
      { kernel, kernelEntry: "bzimage", initrd, append: "console=ttyS0 root=controller rd.break=pre-mount" },
      async (vm) => {
        pid = vm.pid;
        await vm.waitFor("Linux version", BOOT_TIMEOUT_MS);
        await vm.waitFor("text that never appears", 1000);
      },
    );
    const error: unknown = await failing.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(VmError);
    const message = (error as VmError).message;
    expect(message).toStartWith('timed out after 1000 ms waiting for "text that never appears" on the console');
    expect(message).toMatch(/\n--- last 60 console lines ---\n\[\s*\d+\.\d+\] /);
    expect(message).toContain(`--- QEMU command line ---\nqemu-system-x86_64 -accel tcg -cpu Nehalem,+rdrand`);
    expect(message).toContain(` -kernel ${kernel} `);
    expect(isRunning(pid)).toBe(false);
  }, BOOT_TIMEOUT_MS);
});
