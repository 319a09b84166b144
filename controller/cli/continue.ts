// `controller continue`: in an ssh login to the initramfs, ends the wait
// before the handoff (boot/services-wait.ts) so the boot goes on.

import { CONTINUE_FILE, INITRD_RELEASE, RUN_DIR } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import { print } from "./output.ts";
import { thisMachine } from "./this-machine.ts";

/** `controller continue`: ends the wait stage's wait. Only in the initramfs, where the wait runs. */
export async function runContinueCommand(system: System, print: (line: string) => void, fail: (line: string) => void): Promise<number> {
  if ((await system.lstat(INITRD_RELEASE)) === undefined) {
    fail(`Cannot continue: this is not the initramfs (there is no ${INITRD_RELEASE}); \`controller continue\` ends the wait before the handoff, in an ssh login to the initramfs`);
    return 2;
  }
  await system.mkdir(RUN_DIR);
  await system.writeText(CONTINUE_FILE, `${system.wallClock().toISOString()}\n`);
  print(`Wrote ${CONTINUE_FILE}: the controller goes on with the boot within a second; log out, the SSH server stops before the handoff`);
  return 0;
}

export function continueCommand(): Promise<number> {
  return runContinueCommand(thisMachine().system, print, (line) => process.stderr.write(`${line}\n`));
}
