import { describe, expect, test } from "bun:test";
import { devicePath, filesystemFromUdev } from "../../../controller/system/udev-devices.ts";

describe("filesystems from udev's database", () => {
  test("type and label, the label decoded from ID_FS_LABEL_ENC", () => {
    const db = ["S:disk/by-label/SYSFS", "W:4", "I:1234", "E:ID_FS_LABEL=SYSFS", "E:ID_FS_LABEL_ENC=SYSFS", "E:ID_FS_TYPE=ext4", "E:ID_FS_USAGE=filesystem", "G:systemd", ""].join("\n");
    expect(filesystemFromUdev("/dev/vda1", db)).toEqual({ device: "/dev/vda1", fsType: "ext4", label: "SYSFS" });
    // ID_FS_LABEL has "_" for a space; the encoded one keeps it, and "=" and non-ASCII bytes
    const spaced = "E:ID_FS_LABEL=my_disk=x\nE:ID_FS_LABEL_ENC=my\\x20disk=x\\xc3\\xa9\nE:ID_FS_TYPE=vfat\n";
    expect(filesystemFromUdev("/dev/sdb1", spaced)).toEqual({ device: "/dev/sdb1", fsType: "vfat", label: "my disk=xé" });
  });

  test("a filesystem without a label, a disk without a filesystem, no entry at all", () => {
    expect(filesystemFromUdev("/dev/vda2", "E:ID_FS_TYPE=squashfs\nE:ID_FS_LABEL_ENC=\n")).toEqual({ device: "/dev/vda2", fsType: "squashfs" });
    expect(filesystemFromUdev("/dev/vda", "E:ID_PART_TABLE_TYPE=gpt\nE:ID_PART_TABLE_UUID=1\n")).toBeUndefined();
    expect(filesystemFromUdev("/dev/vdb", "")).toBeUndefined();
  });

  test("a sysfs name with ! is a /dev path with /", () => {
    expect(devicePath("vda1")).toBe("/dev/vda1");
    expect(devicePath("cciss!c0d0p1")).toBe("/dev/cciss/c0d0p1");
  });
});
