// Boot one VM by hand, with its serial console on this terminal: what a boot test
// does, but interactive. Prints the QEMU command line first. Ctrl-C ends QEMU.
//
//   bun qemu-harness/run.ts --kernel VMLINUZ --initrd INITRD [--disk IMG]... \
//     [--append "console=ttyS0 root=controller"] [--memory MiB] [--write-disks] \
//     [--host-port PORT]... [--console-log FILE]
//   bun qemu-harness/run.ts --from-disk [--efi] --disk IMG [options]   (a disk made by grub-disk.ts)

import { parseArgs } from "node:util";
import { formatArgv } from "../controller/system/exec.ts";
import { runAttached } from "./command.ts";
import { DEFAULT_MEMORY_MIB, GUEST_FORWARD_ADDRESS, qemuArgv, type VmBoot, type VmOptions } from "./qemu-args.ts";

const DEFAULT_APPEND = "console=ttyS0 root=controller";

const USAGE = `usage: bun qemu-harness/run.ts --kernel VMLINUZ --initrd INITRD [options]
       bun qemu-harness/run.ts --from-disk [--efi] --disk IMG [options]
  --from-disk         boot the first disk's bootloader (GRUB, see grub-disk.ts), no --kernel/--initrd/--append
  --efi               with --from-disk: UEFI firmware (OVMF) instead of SeaBIOS
  --disk IMG          attach a raw disk image (repeatable; first is /dev/vda)
  --append CMDLINE    kernel command line (default: "${DEFAULT_APPEND}")
  --memory MiB        guest memory (default: ${DEFAULT_MEMORY_MIB})
  --write-disks       let the guest's writes reach the disk images (default: discarded)
  --host-port PORT    let the guest reach 127.0.0.1:PORT at ${GUEST_FORWARD_ADDRESS}:PORT (repeatable;
                      something must already listen there when QEMU starts)
  --console-log FILE  also write the console to FILE`;

function parseOptions(args: string[]): VmOptions {
  const { values } = parseArgs({
    args,
    options: {
      kernel: { type: "string" },
      initrd: { type: "string" },
      "from-disk": { type: "boolean" },
      efi: { type: "boolean" },
      disk: { type: "string", multiple: true },
      append: { type: "string" },
      memory: { type: "string" },
      "write-disks": { type: "boolean" },
      "host-port": { type: "string", multiple: true },
      "console-log": { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help === true) {
    console.log(USAGE);
    process.exit(0);
  }
  let boot: VmBoot;
  if (values["from-disk"] === true) {
    if (values.kernel !== undefined || values.initrd !== undefined || values.append !== undefined) {
      throw new Error(`--from-disk boots what the disk's grub.cfg says: give no --kernel, --initrd or --append\n${USAGE}`);
    }
    boot = { fromDisk: true, firmware: values.efi === true ? "efi" : "bios" };
  } else {
    if (values.efi === true) throw new Error(`--efi goes with --from-disk\n${USAGE}`);
    if (values.kernel === undefined || values.initrd === undefined) {
      throw new Error(`--kernel and --initrd are required\n${USAGE}`);
    }
    boot = { kernel: values.kernel, initrd: values.initrd, append: values.append ?? DEFAULT_APPEND };
  }
  return {
    ...boot,
    disks: values.disk ?? [],
    writeDisks: values["write-disks"] === true,
    memoryMiB: values.memory === undefined ? DEFAULT_MEMORY_MIB : wholeNumber("--memory", values.memory),
    ...(values["host-port"] === undefined
      ? {}
      : { network: { hostPorts: values["host-port"].map((port) => wholeNumber("--host-port", port)) } }),
    ...(values["console-log"] === undefined ? {} : { consoleLog: values["console-log"] }),
  };
}

function wholeNumber(option: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`${option} expects a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

try {
  const argv = qemuArgv(parseOptions(process.argv.slice(2)));
  process.stderr.write(`${formatArgv(argv)}\n(Ctrl-C ends QEMU)\n`);
  process.exit(await runAttached(argv));
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(2);
}
