// Boots the standard scenario disk (SYSFS, BACKUPFS, BOOTEXT with DIRS) with
// the console attached, and a shell in the test system at the end.
// Extra arguments are added to the kernel command line, e.g. `real_init=/sbin/alt-init`
// or `--systemd` to boot the systemd initrd instead of dracut's shell init.

import { formatCommandLine, runAttached } from "../qemu-harness/command.ts";
import { qemuArgv } from "../qemu-harness/qemu-args.ts";
import { removeScenarioDisks, scenarioDisks, vmOptions } from "../test/qemu/fixtures.ts";

const args = process.argv.slice(2);
const flavour = args.includes("--systemd") ? "systemd" : "shell";
const extra = args.filter((arg) => arg !== "--systemd");

const disks = await scenarioDisks();
const argv = qemuArgv(vmOptions({ flavour, disk: disks.standard, append: ["test.shell", "test.cat=/srv/marker,/etc/issue", ...extra].join(" ") }));
console.log(`Booting the demo machine (${flavour} initramfs). The QEMU command line:\n\n${formatCommandLine(argv)}\n`);
console.log("In the test system's shell: `controller status`, `cat /proc/mounts`; `exit` powers the machine off.\n");
try {
  process.exitCode = await runAttached(argv);
} finally {
  await removeScenarioDisks();
}
