// Boots a scenario disk with the console attached and a shell in the test
// system at the end. Options:
//   --systemd          boot the systemd initrd instead of dracut's shell init
//   --disk NAME        standard (default: SYSFS, BACKUPFS, BOOTEXT with DIRS),
//                      brokenConfig, backupOnly or nothingBootable
// Other arguments are added to the kernel command line, e.g. real_init=/sbin/alt-init.

import { formatArgv } from "../controller/exec.ts";
import { runAttached } from "../qemu-harness/command.ts";
import { qemuArgv } from "../qemu-harness/qemu-args.ts";
import { type Disks, scenarioDisks, vmOptions } from "../test/qemu/fixtures.ts";

const args = process.argv.slice(2);
const flavour = args.includes("--systemd") ? "systemd" : "shell";
const diskIndex = args.indexOf("--disk");
const diskName = diskIndex >= 0 ? args[diskIndex + 1] : "standard";
const extra = args.filter((arg, index) => arg !== "--systemd" && index !== diskIndex && index !== diskIndex + 1);

const disks = await scenarioDisks();
if (diskName === undefined || !Object.hasOwn(disks, diskName)) {
  console.error(`Cannot boot disk ${JSON.stringify(diskName)}: expected one of ${Object.keys(disks).join(", ")}`);
  process.exit(2);
}
const disk = disks[diskName as keyof Disks];
const argv = qemuArgv(vmOptions({ flavour, disk, append: ["test.shell", "test.cat=/srv/marker,/etc/issue", ...extra].join(" ") }));
console.log(`Booting the demo machine (${flavour} initramfs, disk ${diskName}). The QEMU command line:\n\n${formatArgv(argv)}\n`);
console.log("In the test system's shell: `controller status`, `cat /proc/mounts`; `exit` powers the machine off.\n");
process.exitCode = await runAttached(argv);
