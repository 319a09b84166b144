// The cut boots of the power-cut tables, resumed from one saved VM state instead
// of each booting from the start. Until the controller starts, every row's cut
// boot is the same boot: firmware, kernel, dracut and udev, 10-14 s under TCG.
// So that boot is made once per table and disk, stopped at dracut's pre-mount
// break (rd.break=pre-mount: before the mount hook that runs the controller),
// and saved whole, memory and devices, with QEMU's savevm into a qcow2 copy of
// the disk. Each row resumes a copy of that (-loadvm), puts its cut point on
// the command line the controller reads (a bind mount over /proc/cmdline, typed
// into dracut's shell), and leaves the shell: the boot goes on as it would have,
// into the controller, which stops dead at the row's point, and the VM is
// killed there. What a row proves comes after: the cut on its own disk, and
// the boots that follow it, which start from nothing.

import { copyFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CutPoint, cutMarker } from "../../controller/system/cut-points.ts";
import { runCommand } from "../../qemu-harness/command.ts";
import { type VmOptions, withVm } from "../../qemu-harness/vm.ts";

/** A disk holding the VM state saved at the break, and the options of the VM that saved it. */
export interface SavedCutBoot {
  readonly disk: string;
  readonly options: VmOptions;
}

const STATE = "before-the-controller";
/** dracut's shell at rd.break=pre-mount, waiting on the console */
const BREAK_PROMPT = "pre-mount:/#";
/** savevm writes the guest's memory (about 420 MiB of 1.5 GiB in use there) into the qcow2 file */
const SAVE_TIMEOUT_MS = 120_000;

/**
 * Boots `options` (one raw disk, a kernel and initrd given to QEMU, no cut point)
 * from a qcow2 copy of its disk in `work` to dracut's pre-mount break, and
 * saves the VM there.
 */
export async function saveCutBoot(options: VmOptions, work: string, name: string, timeoutMs: number): Promise<SavedCutBoot> {
  const raw = options.disks?.[0];
  if (options.kernel === undefined || raw === undefined || options.disks?.length !== 1) {
    throw new Error(`Cannot save a cut boot for ${name}: expected a boot of a kernel and initrd from one disk`);
  }
  const disk = join(work, `${name}.qcow2`);
  await runCommand(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, disk]);
  // in /tmp: a unix socket's path has room for 107 bytes, and the run folder may be deep
  const monitorSocket = join(tmpdir(), `qemu-monitor-${process.pid}-${name}.sock`);
  const saving: VmOptions = { ...options, append: `${options.append} rd.break=pre-mount`, disks: [disk], diskFormat: "qcow2", writeDisks: true, monitorSocket };
  try {
    await withVm(saving, async (vm) => {
      await vm.waitFor(BREAK_PROMPT, timeoutMs);
      await vm.saveState(STATE, SAVE_TIMEOUT_MS);
    });
  } finally {
    await rm(monitorSocket, { force: true });
  }
  return { disk, options: saving };
}

/**
 * A row's cut boot: `rowDisk` (qcow2) becomes a copy of the saved disk, the VM
 * resumes at the break, goes on with rd.controller.cut=`point` and is killed
 * (SIGKILL, no shutdown of any kind) once the controller says it stopped there.
 * The boots after it use `rowDisk` as qcow2.
 */
export async function cutFromSavedBoot(saved: SavedCutBoot, rowDisk: string, point: CutPoint, timeoutMs: number): Promise<void> {
  await copyFile(saved.disk, rowDisk);
  // the saving VM's monitor is not needed, and two rows resuming at once must not share its socket
  const { monitorSocket: _, ...options } = saved.options;
  await withVm({ ...options, disks: [rowDisk], resumeState: STATE }, async (vm) => {
    await vm.send(`echo "$(cat /proc/cmdline) rd.controller.cut=${point}" > /run/cut-cmdline && mount --bind /run/cut-cmdline /proc/cmdline && exit\n`);
    await vm.waitFor(cutMarker(point), timeoutMs);
    await vm.kill();
  });
}
