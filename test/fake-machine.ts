// A typical lab machine in the fake: a disk with SYSFS, BACKUPFS and BOOTEXT
// partitions, each slot holding a system image, and an initramfs around it.

import { NETWORK_DIR, SYS_CLASS_NET, TOOLS } from "../controller/system/paths.ts";
import { FakeSystem, type Tree } from "./fake-system.ts";

export function systemImage(id: string): Tree {
  return {
    "sbin/init": { text: "#!/bin/sh\n", mode: 0o755 },
    "sbin/alt-init": { text: "#!/bin/sh\n", mode: 0o755 },
    "bin/sh": { text: "busybox", mode: 0o755 },
    "etc/test-image-id": id,
    "etc/hostname": "lab",
    "etc/os-release": "ID=test",
    "var/log": { dir: true },
    tmp: { dir: true },
    opt: { dir: true },
    srv: { dir: true },
    "usr/share/fw": { dir: true },
    proc: { dir: true },
    sys: { dir: true },
    dev: { dir: true },
    run: { dir: true },
  };
}

export interface MachineOptions {
  readonly cmdline?: string;
  /** partitions by label; default SYSFS, BACKUPFS and BOOTEXT */
  readonly labels?: readonly string[];
  readonly bootext?: Tree;
  readonly initramfsConfig?: Tree;
  /** a slot's files by label, instead of a system image without a record */
  readonly slots?: Readonly<Record<string, Tree>>;
}

export function labMachine(options: MachineOptions = {}): FakeSystem {
  const fake = new FakeSystem()
    .addTree("/", {
      "proc/cmdline": `${options.cmdline ?? "root=controller console=ttyS0"}\n`,
      "proc/uptime": "3.14 2.00\n",
      "etc/initrd-release": { symlink: "../usr/lib/initrd-release" },
      "usr/lib/initrd-release": "NAME=dracut\n",
    })
    .addTree("/sysroot", {})
    .addTree("/run", {})
    .addTree("/etc/controller/config.d", options.initramfsConfig ?? {});
  const labels = options.labels ?? ["SYSFS", "BACKUPFS", "BOOTEXT"];
  labels.forEach((label, index) => {
    const device = `/dev/vda${index + 1}`;
    const tree: Tree =
      label === "BOOTEXT"
        ? (options.bootext ?? {})
        : (options.slots?.[label] ?? { "system.squashfs": { image: systemImage(label === "SYSFS" ? "system-a" : "system-b") } });
    fake.addDevice({ device, label, fsType: "ext4" }, tree);
  });
  return fake;
}

/**
 * One Ethernet interface, eth0, with a cable and a DHCP server: busybox's ip
 * and udhcpc do what the real ones do with controller-udhcpc.sh.
 */
export function connectToNetwork(fake: FakeSystem, mac = "52:54:00:12:34:56"): FakeSystem {
  fake.addTree(SYS_CLASS_NET, { "eth0/type": "1\n", "eth0/address": `${mac}\n` });
  fake.commandHandlers.set(TOOLS.busybox, async (argv) => {
    if (argv[1] === "ip") fake.addTree(`${SYS_CLASS_NET}/eth0`, { carrier: "1\n" });
    if (argv[1] === "udhcpc") {
      await fake.mkdir(NETWORK_DIR);
      await fake.writeText(`${NETWORK_DIR}/eth0.lease`, "interface=eth0\nip=10.0.2.15\nsubnet=255.255.255.0\nrouter=10.0.2.2\ndns=10.0.2.3\nhostname=lab-07\n");
    }
    return { stdout: "" };
  });
  return fake;
}

/** A lease file of interface `name` as dracut-module/90controller/controller-udhcpc.sh writes it, `extra` lines appended. */
export function leaseText(name: string, extra = ""): string {
  return `interface=${name}\nip=10.0.2.15\nsubnet=255.255.255.0\nrouter=10.0.2.2\ndns=10.0.2.3\nhostname=\ndomain=\nserverid=10.0.2.2\nlease=86400\n${extra}`;
}
