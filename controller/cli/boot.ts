// `controller boot`: what the dracut mount hook runs to mount the system to
// boot at /sysroot; the boot itself is boot/run-boot.ts.

import { isInitramfs, runBoot } from "../boot/run-boot.ts";
import { INITRD_RELEASE } from "../system/paths.ts";
import { thisMachine } from "./this-machine.ts";

/** Exit status 0 when a system was handed off, 1 when nothing is bootable, 2 outside an initramfs. */
export async function bootCommand(): Promise<number> {
  const { system, log } = thisMachine();
  if (!(await isInitramfs(system))) {
    process.stderr.write(`Cannot boot: this is not an initramfs (there is no ${INITRD_RELEASE}); the dracut mount hook runs \`controller boot\`\n`);
    return 2;
  }
  const { outcome } = await runBoot(system, log);
  return outcome === "handed-off" ? 0 : 1;
}
