// A boot through GRUB from the disk (BIOS, and UEFI from its own disk) against
// QEMU's -kernel boot on the BIOS GRUB disk (test/qemu/grub-fixtures.ts),
// interleaved, one VM at a time. For
// each: seconds from QEMU's start to the kernel's banner, to the controller's
// first line, and to the test system's "@@TEST done"; the difference is what
// GRUB costs (reading the kernel and the initramfs through the BIOS under TCG).
// Usage: bun bench/grub-boot.ts [ROUNDS]   (default 2)

import { type Vm, type VmOptions, withVm } from "../qemu-harness/vm.ts";
import { ARTIFACTS, BOOT_TIMEOUT_MS, SHUTDOWN_TIMEOUT_MS } from "../test/qemu/fixtures.ts";
import { GRUB_APPEND, grubDisk } from "../test/qemu/grub-fixtures.ts";

const rounds = Number(process.argv[2] ?? "2");
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`Cannot bench: ROUNDS must be a whole number of at least 1, got ${process.argv[2]}`);

const disk = await grubDisk("bench");
const efiDisk = await grubDisk("bench-efi", undefined, "efi");
console.log(`GRUB disks built in ${disk.buildSeconds.toFixed(2)} s (BIOS), ${efiDisk.buildSeconds.toFixed(2)} s (UEFI)`);

async function timed(options: VmOptions): Promise<number[]> {
  return withVm(options, async (vm: Vm) => {
    const started = performance.now();
    const at = () => (performance.now() - started) / 1000;
    const marks: number[] = [];
    for (const pattern of ["Linux version", "controller: cmdline:", "@@TEST done"]) {
      await vm.waitFor(pattern, BOOT_TIMEOUT_MS);
      marks.push(at());
    }
    await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
    return marks;
  });
}

const kinds = {
  grub: { fromDisk: true, disks: [disk.layout.path] } as VmOptions,
  efi: { fromDisk: true, firmware: "efi", disks: [efiDisk.layout.path] } as VmOptions,
  kernel: { kernel: ARTIFACTS.kernel, initrd: ARTIFACTS.initramfs.shell, append: GRUB_APPEND, disks: [disk.layout.path] } as VmOptions,
};
console.log("kind    kernel  controller  done   (seconds from QEMU's start)");
for (let round = 0; round < rounds; round++) {
  for (const [kind, options] of Object.entries(kinds)) {
    const marks = await timed(options);
    console.log(`${kind.padEnd(6)}  ${marks.map((s) => s.toFixed(1).padStart(6)).join("  ")}`);
  }
}
