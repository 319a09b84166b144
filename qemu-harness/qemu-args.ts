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
  /**
   * Host ports on 127.0.0.1 forwarded to guest ports on the first NIC (hostfwd): how the
   * host reaches a server in the guest, such as ssh. Only 127.0.0.1 listens.
   */
  readonly hostForwards?: readonly HostForward[];
  /**
   * NICs after the first, each its own restricted user network with its own DHCP
   * server: NIC i (from 1) is on 10.0.(2+i).0/24 and gets 10.0.(2+i).15. Default 0.
   */
  readonly extraNics?: number;
}

export interface HostForward {
  readonly hostPort: number;
  readonly guestPort: number;
}

/** NICs in one VM at most: each is a PCI slot and a user network. */
export const MAX_NICS = 8;

/**
 * Boot as a PXE machine does: the NIC's option ROM (QEMU's iPXE, Debian's
 * ipxe-qemu) gets its address by DHCP from QEMU and fetches `bootfile` by
 * TFTP from QEMU's built-in server, which serves `tftpDir`.
 */
export interface PxeBoot {
  readonly tftpDir: string;
  /** a file in tftpDir, such as an iPXE script (boot.ipxe) that loads the kernel and initramfs and sets the command line */
  readonly bootfile: string;
}

/** The kernel and initramfs given to QEMU, or a network boot (PXE) that fetches them. */
export type VmBoot =
  | {
      readonly kernel: string;
      readonly initrd: string;
      /** The kernel command line; must send the console to the serial port (console=ttyS0), which the harness reads. */
      readonly append: string;
      /**
       * How QEMU enters the kernel: "pvh" (the default) boots its uncompressed ELF, which
       * startVm unpacks from the bzImage (pvh-kernel.ts says why); "bzimage" boots the
       * file as given, through SeaBIOS and the kernel's decompressor, as a real machine does.
       */
      readonly kernelEntry?: "pvh" | "bzimage";
      readonly pxe?: undefined;
      readonly fromDisk?: undefined;
    }
  /** The command line is in what the bootfile loads; it too must say console=ttyS0. PXE needs a network. */
  | {
      readonly pxe: PxeBoot;
      readonly network: VmNetwork;
      readonly kernel?: undefined;
      readonly initrd?: undefined;
      readonly append?: undefined;
      readonly kernelEntry?: undefined;
      readonly fromDisk?: undefined;
    }
  /**
   * As a real machine boots: the BIOS (SeaBIOS) runs the first disk's boot code,
   * GRUB from qemu-harness/grub-disk.ts. The command line is in its grub.cfg and
   * must say console=ttyS0 there.
   */
  | {
      readonly fromDisk: true;
      /** "bios" (SeaBIOS, QEMU's default) unless "efi": OVMF, Debian's ovmf package, with no persistent variables. */
      readonly firmware?: "bios" | "efi";
      readonly pxe?: undefined;
      readonly kernel?: undefined;
      readonly initrd?: undefined;
      readonly append?: undefined;
      readonly kernelEntry?: undefined;
    };

/** Debian's ovmf: code and variables in one image, for -bios; variables written at run time are not kept. */
export const OVMF_IMAGE = "/usr/share/ovmf/OVMF.fd";

export type VmOptions = VmBoot & VmDevices;

export interface VmDevices {
  /** Disk images, attached as virtio-blk in this order: /dev/vda, /dev/vdb, ... */
  readonly disks?: readonly string[];
  /**
   * The disks' format: "raw" (the default) or "qcow2", the one QEMU keeps a VM's
   * saved state in (savevm, for Vm.saveState and resumeState).
   */
  readonly diskFormat?: "raw" | "qcow2";
  /** Let the guest's writes reach the disk files. By default they go to a throw-away overlay (snapshot=on). */
  readonly writeDisks?: boolean;
  /** A unix socket for QEMU's human monitor, which Vm.saveState talks to. */
  readonly monitorSocket?: string;
  /**
   * Start from the VM state saved under this name in the qcow2 disks (QEMU's
   * -loadvm): the guest goes on from the instant it was saved instead of
   * booting. The rest of the options must be those of the VM that saved it.
   */
  readonly resumeState?: string;
  readonly memoryMiB?: number;
  /** No network unless given. */
  readonly network?: VmNetwork;
  /** Also write the console, as received, to this file. */
  readonly consoleLog?: string;
}

export function qemuArgv(options: VmOptions): string[] {
  if (options.kernel !== undefined && !/(^|\s)console=ttyS0(\s|,|$)/.test(options.append)) {
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
    // RDRAND as every x86 lab machine since 2012 has it: the kernel seeds its random pool at once.
    // Without it the pool is ready only seconds into the boot, and the controller (bun reads
    // getrandom() as it starts) waited for it, about 1.6 s of every boot under TCG.
    "-accel",
    "tcg",
    "-cpu",
    "Nehalem,+rdrand",
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
    ...withPxe(networkArgs(options.network), options.pxe),
    ...(options.disks ?? []).flatMap((disk) => [
      "-drive",
      `file=${optionValue(disk)},format=${options.diskFormat ?? "raw"},if=virtio,snapshot=${options.writeDisks === true ? "off" : "on"}`,
    ]),
    ...(options.monitorSocket === undefined ? [] : ["-monitor", `unix:${optionValue(options.monitorSocket)},server=on,wait=off`]),
    ...(options.resumeState === undefined ? [] : resumeArgs(options, options.resumeState)),
    ...bootArgs(options),
  ];
}

/** QEMU saves a VM's state into its qcow2 disks, written to: the VM that resumes it needs the same. */
function resumeArgs(options: VmOptions, name: string): string[] {
  if (options.diskFormat !== "qcow2" || options.writeDisks !== true || (options.disks ?? []).length === 0) {
    throw new Error(`Cannot resume the VM state "${name}": it lives in qcow2 disks the VM writes to; give diskFormat "qcow2" and writeDisks`);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`Cannot resume the VM state ${JSON.stringify(name)}: expected a name of letters, digits, ".", "_" and "-"`);
  return ["-loadvm", name];
}

function bootArgs(options: VmOptions): string[] {
  if (options.kernel !== undefined) return ["-kernel", options.kernel, "-initrd", options.initrd, "-append", options.append];
  if (options.pxe !== undefined) return ["-boot", "n"];
  if ((options.disks ?? []).length === 0) throw new Error("a boot from disk needs a disk: give the VM one, made by qemu-harness/grub-disk.ts");
  return [...(options.firmware === "efi" ? ["-bios", OVMF_IMAGE] : []), "-boot", "c"];
}

/** The first NIC's user network also serves tftpDir by TFTP and names the bootfile in its DHCP answers. */
function withPxe(args: string[], pxe: PxeBoot | undefined): string[] {
  if (pxe === undefined) return args;
  const index = args.indexOf("-netdev") + 1;
  if (index === 0) throw new Error("a PXE boot needs a network: give the VM one");
  if (!/^[A-Za-z0-9._-]+$/.test(pxe.bootfile)) throw new Error(`the PXE bootfile must be a plain file name in tftpDir, got ${JSON.stringify(pxe.bootfile)}`);
  return args.map((arg, at) => (at === index ? `${arg},tftp=${optionValue(pxe.tftpDir)},bootfile=${pxe.bootfile}` : arg));
}

function requirePort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`not a TCP port: ${port}`);
  return port;
}

function networkArgs(network: VmNetwork | undefined): string[] {
  if (network === undefined) return ["-nic", "none"];
  const forwards = network.hostPorts.map((port) => {
    requirePort(port);
    // cmd: runs the command once per guest connection, its stdin and stdout
    // being that connection; tcp: would feed every guest connection into one
    // host connection opened when QEMU starts (see README.md).
    return `guestfwd=tcp:${GUEST_FORWARD_ADDRESS}:${port}-cmd:${FORWARD_COMMAND} 127.0.0.1 ${port}`;
  });
  const hostForwards = (network.hostForwards ?? []).map(
    ({ hostPort, guestPort }) => `hostfwd=tcp:127.0.0.1:${requirePort(hostPort)}-:${requirePort(guestPort)}`,
  );
  const extra = network.extraNics ?? 0;
  if (!Number.isInteger(extra) || extra < 0 || extra > MAX_NICS - 1) {
    throw new Error(`extraNics must be a whole number from 0 to ${MAX_NICS - 1}, got ${extra}`);
  }
  const nics = Array.from({ length: extra }, (_, index) => {
    const id = `n${index + 1}`;
    // a subnet of its own: two NICs on one subnet would leave the guest's answers to the first one's routes
    return ["-netdev", `user,id=${id},restrict=on,net=10.0.${3 + index}.0/24`, "-device", `virtio-net-pci,netdev=${id}`];
  });
  return [
    "-netdev",
    ["user", "id=n0", "restrict=on", ...forwards, ...hostForwards].join(","),
    "-device",
    "virtio-net-pci,netdev=n0",
    ...nics.flat(),
  ];
}

/** QEMU splits option values at commas; a literal comma is written twice. */
function optionValue(value: string): string {
  return value.replaceAll(",", ",,");
}
