import { describe, expect, test } from "bun:test";
import { qemuArgv } from "../../../qemu-harness/qemu-args.ts";

const BASE = { kernel: "/k/vmlinuz", initrd: "/k/initrd.img", append: "console=ttyS0 root=controller" };

/** The value that follows each occurrence of `flag`. */
function valuesOf(argv: readonly string[], flag: string): string[] {
  return argv.flatMap((word, index) => (word === flag ? [argv[index + 1] ?? "<missing>"] : []));
}

describe("qemuArgv", () => {
  test("always uses TCG with Nehalem and RDRAND, one CPU, no graphics, no reboot, no default devices", () => {
    const argv = qemuArgv(BASE);
    expect(argv[0]).toBe("qemu-system-x86_64");
    expect(valuesOf(argv, "-accel")).toEqual(["tcg"]);
    expect(valuesOf(argv, "-cpu")).toEqual(["Nehalem,+rdrand"]);
    expect(valuesOf(argv, "-smp")).toEqual(["1"]);
    expect(valuesOf(argv, "-m")).toEqual(["1536"]);
    expect(argv).toContain("-nographic");
    expect(argv).toContain("-no-reboot");
    expect(argv).toContain("-nodefaults");
    expect(valuesOf(argv, "-kernel")).toEqual(["/k/vmlinuz"]);
    expect(valuesOf(argv, "-initrd")).toEqual(["/k/initrd.img"]);
    expect(valuesOf(argv, "-append")).toEqual(["console=ttyS0 root=controller"]);
  });

  test("puts the serial console on stdio, logged to a file when asked", () => {
    expect(valuesOf(qemuArgv(BASE), "-chardev")).toEqual(["stdio,id=console"]);
    expect(valuesOf(qemuArgv({ ...BASE, consoleLog: "/logs/a,b.log" }), "-chardev")).toEqual([
      "stdio,id=console,logfile=/logs/a,,b.log",
    ]);
    expect(valuesOf(qemuArgv(BASE), "-serial")).toEqual(["chardev:console"]);
  });

  test("attaches disks as virtio in order, discarding writes unless told otherwise", () => {
    expect(valuesOf(qemuArgv({ ...BASE, disks: ["/d/one.img", "/d/two,2.img"] }), "-drive")).toEqual([
      "file=/d/one.img,format=raw,if=virtio,snapshot=on",
      "file=/d/two,,2.img,format=raw,if=virtio,snapshot=on",
    ]);
    expect(valuesOf(qemuArgv({ ...BASE, disks: ["/d/one.img"], writeDisks: true }), "-drive")).toEqual([
      "file=/d/one.img,format=raw,if=virtio,snapshot=off",
    ]);
  });

  test("qcow2 disks, a monitor socket, and resuming a saved VM state", () => {
    const saving = { ...BASE, disks: ["/d/row.qcow2"], diskFormat: "qcow2" as const, writeDisks: true, monitorSocket: "/run/a,b.sock" };
    expect(valuesOf(qemuArgv(saving), "-drive")).toEqual(["file=/d/row.qcow2,format=qcow2,if=virtio,snapshot=off"]);
    expect(valuesOf(qemuArgv(saving), "-monitor")).toEqual(["unix:/run/a,,b.sock,server=on,wait=off"]);
    expect(valuesOf(qemuArgv(BASE), "-monitor")).toEqual([]);
    expect(valuesOf(qemuArgv(BASE), "-loadvm")).toEqual([]);
    expect(valuesOf(qemuArgv({ ...saving, resumeState: "before-the-controller" }), "-loadvm")).toEqual(["before-the-controller"]);
  });

  test("a saved state is resumed only from qcow2 disks the VM writes to, under a plain name", () => {
    const qcow2 = { ...BASE, disks: ["/d/row.qcow2"], diskFormat: "qcow2" as const, writeDisks: true };
    expect(() => qemuArgv({ ...qcow2, diskFormat: "raw", resumeState: "s" })).toThrow('Cannot resume the VM state "s": it lives in qcow2 disks the VM writes to');
    expect(() => qemuArgv({ ...qcow2, writeDisks: false, resumeState: "s" })).toThrow("give diskFormat \"qcow2\" and writeDisks");
    expect(() => qemuArgv({ ...qcow2, disks: [], resumeState: "s" })).toThrow("it lives in qcow2 disks");
    expect(() => qemuArgv({ ...qcow2, resumeState: "a b" })).toThrow('Cannot resume the VM state "a b": expected a name of letters, digits');
  });

  test("has no network by default, and restricted user networking with forwarded ports when asked", () => {
    expect(valuesOf(qemuArgv(BASE), "-nic")).toEqual(["none"]);
    const argv = qemuArgv({ ...BASE, network: { hostPorts: [8080, 9000] } });
    expect(valuesOf(argv, "-nic")).toEqual([]);
    expect(valuesOf(argv, "-netdev")).toEqual([
      "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:busybox nc 127.0.0.1 8080,guestfwd=tcp:10.0.2.100:9000-cmd:busybox nc 127.0.0.1 9000",
    ]);
    expect(valuesOf(argv, "-device")).toEqual(["virtio-net-pci,netdev=n0"]);
  });

  test("a PXE boot: no kernel, initrd or append, the NIC ROM boots (-boot n) from QEMU's TFTP server", () => {
    const argv = qemuArgv({ pxe: { tftpDir: "/srv/pxe,1", bootfile: "boot.ipxe" }, network: { hostPorts: [8080] } });
    expect(valuesOf(argv, "-kernel")).toEqual([]);
    expect(valuesOf(argv, "-initrd")).toEqual([]);
    expect(valuesOf(argv, "-append")).toEqual([]);
    expect(valuesOf(argv, "-boot")).toEqual(["n"]);
    expect(valuesOf(argv, "-netdev")).toEqual([
      "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:busybox nc 127.0.0.1 8080,tftp=/srv/pxe,,1,bootfile=boot.ipxe",
    ]);
    expect(valuesOf(argv, "-device")).toEqual(["virtio-net-pci,netdev=n0"]);
    expect(argv).toContain("-nodefaults");
  });

  test("a PXE bootfile must be a plain name in the TFTP folder", () => {
    for (const bootfile of ["../boot.ipxe", "a,b", "", "dir/boot.ipxe"]) {
      expect(() => qemuArgv({ pxe: { tftpDir: "/srv/pxe", bootfile }, network: { hostPorts: [] } })).toThrow(
        `the PXE bootfile must be a plain file name in tftpDir, got ${JSON.stringify(bootfile)}`,
      );
    }
  });

  test("forwards host ports on 127.0.0.1 to guest ports (hostfwd), and adds NICs each on a user network of its own", () => {
    const argv = qemuArgv({ ...BASE, network: { hostPorts: [8080], hostForwards: [{ hostPort: 2222, guestPort: 22 }], extraNics: 2 } });
    expect(valuesOf(argv, "-netdev")).toEqual([
      "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:busybox nc 127.0.0.1 8080,hostfwd=tcp:127.0.0.1:2222-:22",
      "user,id=n1,restrict=on,net=10.0.3.0/24",
      "user,id=n2,restrict=on,net=10.0.4.0/24",
    ]);
    expect(valuesOf(argv, "-device")).toEqual(["virtio-net-pci,netdev=n0", "virtio-net-pci,netdev=n1", "virtio-net-pci,netdev=n2"]);
    expect(valuesOf(qemuArgv({ ...BASE, network: { hostPorts: [], extraNics: 0 } }), "-netdev")).toEqual(["user,id=n0,restrict=on"]);
    expect(() => qemuArgv({ ...BASE, network: { hostPorts: [], hostForwards: [{ hostPort: 0, guestPort: 22 }] } })).toThrow("not a TCP port: 0");
    expect(() => qemuArgv({ ...BASE, network: { hostPorts: [], hostForwards: [{ hostPort: 2222, guestPort: 1e6 }] } })).toThrow("not a TCP port: 1000000");
    expect(() => qemuArgv({ ...BASE, network: { hostPorts: [], extraNics: 8 } })).toThrow("extraNics must be a whole number from 0 to 7, got 8");
    expect(() => qemuArgv({ ...BASE, network: { hostPorts: [], extraNics: -1 } })).toThrow("extraNics must be a whole number from 0 to 7, got -1");
  });

  test("takes the memory size", () => {
    expect(valuesOf(qemuArgv({ ...BASE, memoryMiB: 512 }), "-m")).toEqual(["512"]);
  });

  test("refuses options the harness could not work with, saying what it got", () => {
    expect(() => qemuArgv({ ...BASE, append: "console=tty0 root=controller" })).toThrow(
      'the kernel command line must contain console=ttyS0 (the harness reads the serial console), got: "console=tty0 root=controller"',
    );
    expect(() => qemuArgv({ ...BASE, append: "root=controller console=ttyS0,115200" })).not.toThrow();
    expect(() => qemuArgv({ ...BASE, memoryMiB: 1.5 })).toThrow("memoryMiB must be a whole number of at least 64, got 1.5");
    expect(() => qemuArgv({ ...BASE, network: { hostPorts: [70000] } })).toThrow("not a TCP port: 70000");
  });

  test("a boot from disk gives no -kernel, -initrd or -append and boots the first disk", () => {
    const argv = qemuArgv({ fromDisk: true, disks: ["/d/grub.img"] });
    expect(valuesOf(argv, "-boot")).toEqual(["c"]);
    expect(argv).not.toContain("-kernel");
    expect(argv).not.toContain("-initrd");
    expect(argv).not.toContain("-append");
    expect(valuesOf(argv, "-drive")).toEqual(["file=/d/grub.img,format=raw,if=virtio,snapshot=on"]);
    expect(() => qemuArgv({ fromDisk: true })).toThrow("a boot from disk needs a disk");
    expect(argv).not.toContain("-bios");
    // UEFI: OVMF instead of SeaBIOS
    expect(valuesOf(qemuArgv({ fromDisk: true, firmware: "efi", disks: ["/d/grub.img"] }), "-bios")).toEqual(["/usr/share/ovmf/OVMF.fd"]);
  });
});
