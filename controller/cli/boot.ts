// `controller boot`: what the dracut mount hook runs to mount the system to
// boot at /sysroot; the boot itself is boot/run-boot.ts.

import { isInitramfs, runBoot } from "../boot/run-boot.ts";
import { INITRD_RELEASE } from "../system/paths.ts";
import { thisMachine } from "./this-machine.ts";

/**
 * How many times later than normal JavaScriptCore compiles a function with its JIT.
 * A boot runs most of its code a few times only: compiling it costs more than
 * interpreting it, natively (the config stage's parse and resolve took 15 ms of CPU
 * instead of 25) and far more under QEMU's TCG, which must translate every piece of
 * machine code the JIT writes. Loops that run for long, such as an image download,
 * still get compiled, a little later.
 */
const BOOT_JIT_POLICY = 10;

/** Exit status 0 when a system was handed off, 1 when nothing is bootable, 2 outside an initramfs. */
export async function bootCommand(): Promise<number> {
  Bun.unsafe.setJITPolicy(BOOT_JIT_POLICY);
  const { system, log } = thisMachine();
  if (!(await isInitramfs(system))) {
    process.stderr.write(`Cannot boot: this is not an initramfs (there is no ${INITRD_RELEASE}); the dracut mount hook runs \`controller boot\`\n`);
    return 2;
  }
  const { outcome } = await runBoot(system, log);
  return outcome === "handed-off" ? 0 : 1;
}
