// The GRUB disk without booting it: the partition table, the MBR's boot code
// and core.img where they belong, and BOOTEXT's files and links. Booting it is
// test/qemu/grub.test.ts. Needs Debian's grub-pc-bin (scripts/setup).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../../../qemu-harness/command.ts";
import { addGrubFiles, buildGrubDisk, GRUB_I386_PC, GRUB_X86_64_EFI } from "../../../qemu-harness/grub-disk.ts";

const hasGrub = await Bun.file(join(GRUB_I386_PC, "boot.img")).exists();
const hasGrubEfi = (await Bun.file(join(GRUB_X86_64_EFI, "linux.mod")).exists()) && Bun.which("mcopy") !== null && Bun.which("mkfs.vfat") !== null;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "harness-grub-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function bootext(name: string, firmware: "bios" | "efi" = "bios"): Promise<string> {
  const root = join(dir, name);
  await mkdir(root, { recursive: true });
  await writeFile(join(dir, "vmlinuz"), "kernel bytes");
  await writeFile(join(dir, "initrd.img"), "initrd bytes");
  await writeFile(join(dir, "old-initrd.img"), "old initrd bytes");
  await addGrubFiles(root, {
    active: { name: "new", kernel: join(dir, "vmlinuz"), initrd: join(dir, "initrd.img") },
    recovery: { name: "old", kernel: join(dir, "vmlinuz"), initrd: join(dir, "old-initrd.img") },
    append: "console=ttyS0 root=controller",
    grubenv: { next_entry: "recovery" },
    firmware,
  });
  return root;
}

describe.skipIf(!hasGrub)("GRUB disks", () => {
  test("BOOTEXT gets grub/ (grub.cfg, grubenv, the i386-pc modules) and Kernel/ with the four relative links", async () => {
    const root = await bootext("files");
    expect(await readFile(join(root, "grub/grub.cfg"), "utf8")).toContain("linux /Kernel/active-kernel console=ttyS0 root=controller\n");
    expect(await readFile(join(root, "grub/grubenv"), "utf8")).toContain("\nnext_entry=recovery\n");
    expect(await Bun.file(join(root, "grub/i386-pc/linux.mod")).exists()).toBe(true);
    expect(await Bun.file(join(root, "grub/i386-pc/command.lst")).exists()).toBe(true);
    expect(await readlink(join(root, "Kernel/active-kernel"))).toBe("vmlinuz-new");
    expect(await readlink(join(root, "Kernel/active-initrd"))).toBe("initrd-new.img");
    expect(await readlink(join(root, "Kernel/recovery-kernel"))).toBe("vmlinuz-old");
    expect(await readlink(join(root, "Kernel/recovery-initrd"))).toBe("initrd-old.img");
    expect(await readFile(join(root, "Kernel/recovery-initrd"), "utf8")).toBe("old initrd bytes");
  });

  test("the disk: a BIOS boot partition first holding core.img, GRUB's code in the MBR pointing at it, the table kept", async () => {
    const root = await bootext("disk");
    const path = join(dir, "grub.img");
    const layout = await buildGrubDisk(path, dir, [{ label: "SYSFS", sizeMiB: 4 }, { label: "BOOTEXT", sizeMiB: 8, content: root }]);
    expect(layout.biosBoot).toEqual({ offsetBytes: 1024 * 1024, sizeBytes: 1024 * 1024 });
    expect(layout.partitions.map((p) => p.offsetBytes / (1024 * 1024))).toEqual([2, 6]);

    const { stdout } = await runCommand(["sfdisk", "--json", path]);
    const table = (JSON.parse(stdout) as { partitiontable: { label: string; partitions: { start: number; type: string; name?: string }[] } }).partitiontable;
    expect(table.label).toBe("gpt");
    expect(table.partitions.map((p) => p.type)).toEqual(["21686148-6449-6E6F-744E-656564454649", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"]);

    const disk = new Uint8Array(await Bun.file(path).slice(0, 2 * 1024 * 1024).arrayBuffer());
    const view = new DataView(disk.buffer);
    const bootImg = new Uint8Array(await Bun.file(join(GRUB_I386_PC, "boot.img")).arrayBuffer());
    // GRUB's code, pointing at LBA 2048, the protective MBR's partition entry (type 0xEE) kept
    expect(disk.subarray(0x68, 0x1b8)).toEqual(bootImg.subarray(0x68, 0x1b8));
    expect(view.getBigUint64(0x5c, true)).toBe(2048n);
    expect(disk[0x1be + 4]).toBe(0xee);
    expect([disk[0x1fe], disk[0x1ff]]).toEqual([0x55, 0xaa]);
    // core.img's first sector is diskboot.img; its block list names the sectors after it
    const diskboot = new Uint8Array(await Bun.file(join(GRUB_I386_PC, "diskboot.img")).arrayBuffer());
    expect(disk.subarray(1024 * 1024, 1024 * 1024 + 0x1f4)).toEqual(diskboot.subarray(0, 0x1f4));
    expect(view.getBigUint64(1024 * 1024 + 0x1f4, true)).toBe(2049n);

    const label = await runCommand(["blkid", "-p", "-o", "value", "-s", "LABEL", "-O", String(layout.partitions[1]?.offsetBytes), path]);
    expect(label.stdout.trim()).toBe("BOOTEXT");
  });

  test("refuses a GRUB disk without BOOTEXT, where GRUB's files would be", async () => {
    await expect(buildGrubDisk(join(dir, "no-bootext.img"), dir, [{ label: "SYSFS", sizeMiB: 4 }])).rejects.toThrow("no partition is labelled BOOTEXT");
  });
});

describe.skipIf(!hasGrubEfi)("GRUB disks for UEFI", () => {
  test("an EFI System Partition first, FAT, holding EFI/BOOT/BOOTX64.EFI; BOOTEXT gets the x86_64-efi modules", async () => {
    const root = await bootext("efi", "efi");
    expect(await Bun.file(join(root, "grub/x86_64-efi/linux.mod")).exists()).toBe(true);
    expect(await Bun.file(join(root, "grub/i386-pc")).exists()).toBe(false);
    const path = join(dir, "efi.img");
    const layout = await buildGrubDisk(path, dir, [{ label: "SYSFS", sizeMiB: 4 }, { label: "BOOTEXT", sizeMiB: 8, content: root }], "efi");
    expect(layout.biosBoot).toBeUndefined();
    const { stdout } = await runCommand(["sfdisk", "--json", path]);
    const table = (JSON.parse(stdout) as { partitiontable: { partitions: { type: string }[] } }).partitiontable;
    expect(table.partitions.map((p) => p.type)).toEqual(["C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"]);
    const esp = layout.partitions[0];
    if (esp === undefined) throw new Error("no ESP");
    const fat = await runCommand(["blkid", "-p", "-o", "export", "-O", String(esp.offsetBytes), path]);
    expect(fat.stdout).toContain("TYPE=vfat");
    // mtools reads the FAT inside the disk image at the ESP's offset, without mounting
    const listing = await runCommand(["mdir", "-b", "-i", `${path}@@${esp.offsetBytes}`, "::/EFI/BOOT"]);
    expect(listing.stdout).toContain("BOOTX64.EFI");
  });
});
