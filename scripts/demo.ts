// Boots a scenario disk with the console attached and a shell in the test
// system at the end. Options:
//   --systemd          boot the systemd initrd instead of dracut's shell init
//   --disk NAME        standard (default: SYSFS, BACKUPFS, BOOTEXT with DIRS),
//                      brokenConfig, backupOnly or nothingBootable
//   --update           an update server on 127.0.0.1 publishes version 2.0
//                      (system-c) for a machine that runs 1.0 (system-a): watch it
//                      download, verify, switch and boot the new version
// Other arguments are added to the kernel command line, e.g. real_init=/sbin/alt-init.

import { formatArgv } from "../controller/system/exec.ts";
import { runAttached } from "../qemu-harness/command.ts";
import { qemuArgv } from "../qemu-harness/qemu-args.ts";
import { type Disks, scenarioDisks, vmOptions } from "../test/qemu/fixtures.ts";
import { updateWorld } from "../test/qemu/update-fixtures.ts";

const args = process.argv.slice(2);
const flavour = args.includes("--systemd") ? "systemd" : "shell";
const diskIndex = args.indexOf("--disk");
const diskName = diskIndex >= 0 ? args[diskIndex + 1] : "standard";
const update = args.includes("--update");
const extra = args.filter((arg, index) => arg !== "--systemd" && arg !== "--update" && index !== diskIndex && index !== diskIndex + 1);

async function chosenDisk(): Promise<{ disk: string; hostPorts?: number[] }> {
  if (update) {
    const world = await updateWorld();
    world.server.serve("newer");
    return { disk: world.disk, hostPorts: [world.server.port] };
  }
  const disks = await scenarioDisks();
  if (diskName === undefined || !Object.hasOwn(disks, diskName)) {
    console.error(`Cannot boot disk ${JSON.stringify(diskName)}: expected one of ${Object.keys(disks).join(", ")}`);
    process.exit(2);
  }
  return { disk: disks[diskName as keyof Disks] };
}

const { disk, hostPorts } = await chosenDisk();
const append = ["test.shell", "test.cat=/srv/marker,/etc/issue", ...extra].join(" ");
const argv = qemuArgv(vmOptions({ flavour, disk, append, ...(hostPorts === undefined ? {} : { hostPorts }) }));
const what = update ? "a machine running 1.0 with version 2.0 on its update server" : `disk ${diskName}`;
console.log(`Booting the demo machine (${flavour} initramfs, ${what}). The QEMU command line:\n\n${formatArgv(argv)}\n`);
console.log("In the test system's shell: `controller status`, `cat /proc/mounts`; `exit` powers the machine off.\n");
process.exitCode = await runAttached(argv);
// the update server would keep the process alive
process.exit();
