// The QEMU command line, built in one place so that tests, run.ts and the
// command line printed on failure are always the same.

export const QEMU_BINARY = "qemu-system-x86_64";

/** Where the guest reaches the host's forwarded ports (see VmNetwork). */
export const GUEST_FORWARD_ADDRESS = "10.0.2.100";

export const DEFAULT_MEMORY_MIB = 1536;

/** Connects one guest connection to a host port: busybox's nc (Debian's busybox-static, which scripts/setup installs). */
export const FORWARD_COMMAND = "busybox nc";

export interface VmNetwork {
  /**
   * Host TCP ports on 127.0.0.1 that the guest reaches at 10.0.2.100:PORT. User-mode
   * networking with restrict=on: the guest gets DHCP (10.0.2.15) from QEMU and can
   * reach these ports and nothing else. The NIC is virtio-net-pci, so the guest needs
   * the virtio_net driver.
   */
  readonly hostPorts: readonly number[];
}

export interface VmOptions {
  readonly kernel: string;
  readonly initrd: string;
  /** The kernel command line; must send the console to the serial port (console=ttyS0), which the harness reads. */
  readonly append: string;
  /** Raw disk images, attached as virtio-blk in this order: /dev/vda, /dev/vdb, ... */
  readonly disks?: readonly string[];
  /** Let the guest's writes reach the disk files. By default they go to a throw-away overlay (snapshot=on). */
  readonly writeDisks?: boolean;
  readonly memoryMiB?: number;
  /** No network unless given. */
  readonly network?: VmNetwork;
  /** Also write the console, as received, to this file. */
  readonly consoleLog?: string;
}

export function qemuArgv(options: VmOptions): string[] {
  if (!/(^|\s)console=ttyS0(\s|,|$)/.test(options.append)) {
    throw new Error(
      `the kernel command line must contain console=ttyS0 (the harness reads the serial console), got: ${JSON.stringify(options.append)}`,
    );
  }
  const memoryMiB = options.memoryMiB ?? DEFAULT_MEMORY_MIB;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 64) {
    throw new Error(`memoryMiB must be a whole number of at least 64, got ${memoryMiB}`);
  }
  const consoleChardev = ["stdio", "id=console"];
  if (options.consoleLog !== undefined) consoleChardev.push(`logfile=${optionValue(options.consoleLog)}`);

  return [
    QEMU_BINARY,
    // Nested KVM does not work on the CI machines; TCG with a CPU model it emulates completely does.
    "-accel",
    "tcg",
    "-cpu",
    "Nehalem",
    "-smp",
    "1",
    "-m",
    String(memoryMiB),
    // No default floppy, CD-ROM, VGA, NIC or monitor: the kernel does not spend seconds probing
    // them and blkid in the guest sees only our disks.
    "-nodefaults",
    "-nographic",
    // A guest that reboots (a panic, a failed boot) ends QEMU instead of booting again.
    "-no-reboot",
    // The serial console on QEMU's stdin and stdout: the harness reads it live and types into it,
    // and the same command pasted into a terminal is interactive (Ctrl-C ends QEMU).
    "-chardev",
    consoleChardev.join(","),
    "-serial",
    "chardev:console",
    ...networkArgs(options.network),
    ...(options.disks ?? []).flatMap((disk) => [
      "-drive",
      `file=${optionValue(disk)},format=raw,if=virtio,snapshot=${options.writeDisks === true ? "off" : "on"}`,
    ]),
    "-kernel",
    options.kernel,
    "-initrd",
    options.initrd,
    "-append",
    options.append,
  ];
}

function networkArgs(network: VmNetwork | undefined): string[] {
  if (network === undefined) return ["-nic", "none"];
  const forwards = network.hostPorts.map((port) => {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`not a TCP port: ${port}`);
    // cmd: runs the command once per guest connection, its stdin and stdout
    // being that connection; tcp: would feed every guest connection into one
    // host connection opened when QEMU starts (see README.md).
    return `guestfwd=tcp:${GUEST_FORWARD_ADDRESS}:${port}-cmd:${FORWARD_COMMAND} 127.0.0.1 ${port}`;
  });
  return ["-netdev", ["user", "id=n0", "restrict=on", ...forwards].join(","), "-device", "virtio-net-pci,netdev=n0"];
}

/** QEMU splits option values at commas; a literal comma is written twice. */
function optionValue(value: string): string {
  return value.replaceAll(",", ",,");
}
