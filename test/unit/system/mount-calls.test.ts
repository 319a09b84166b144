import { describe, expect, test } from "bun:test";
import { inUtab, MS, mountCalls, remountCall } from "../../../controller/system/mount-calls.ts";

describe("mount requests as mount(2) calls", () => {
  test("generic options become flags, the filesystem's own options its data", () => {
    expect(mountCalls({ kind: "filesystem", source: "tmpfs", target: "/sysroot/etc", fsType: "tmpfs", options: ["nosuid", "nodev", "mode=0755", "size=64m"] })).toEqual([
      { source: "tmpfs", target: "/sysroot/etc", fsType: "tmpfs", flags: MS.NOSUID | MS.NODEV, data: "mode=0755,size=64m" },
    ]);
    expect(mountCalls({ kind: "filesystem", source: "/dev/vda1", target: "/x", fsType: "ext4", options: ["ro"] })).toEqual([
      { source: "/dev/vda1", target: "/x", fsType: "ext4", flags: MS.RDONLY, data: "" },
    ]);
    // the last of ro and rw wins, as with mount(8)
    expect(mountCalls({ kind: "filesystem", source: "/dev/vda1", target: "/x", fsType: "ext4", options: ["ro", "rw"] })?.[0]?.flags).toBe(0);
    expect(mountCalls({ kind: "filesystem", source: "/dev/vda1", target: "/x", fsType: "ext4", options: [] })?.[0]?.flags).toBe(0);
  });

  test("a loop device or an option kept in utab is left to mount(8)", () => {
    expect(mountCalls({ kind: "filesystem", source: "/s/system.squashfs", target: "/sysroot", fsType: "squashfs", options: ["ro", "loop"] })).toBeUndefined();
    expect(mountCalls({ kind: "filesystem", source: "/dev/vda3", target: "/b", fsType: "ext4", options: ["rw", "x-initrd.mount"] })).toBeUndefined();
    expect(mountCalls({ kind: "filesystem", source: "/i.img", target: "/b", fsType: "ext4", options: ["loop=/dev/loop3"] })).toBeUndefined();
  });

  test("a private bind is a bind, then its propagation type on its own", () => {
    expect(mountCalls({ kind: "bind", source: "/sysroot/etc", target: "/run/controller/staging/etc", private: true })).toEqual([
      { source: "/sysroot/etc", target: "/run/controller/staging/etc", fsType: "", flags: MS.BIND, data: "" },
      { source: "", target: "/run/controller/staging/etc", fsType: "", flags: MS.PRIVATE, data: "" },
    ]);
    expect(mountCalls({ kind: "bind", source: "/a", target: "/b" })).toEqual([{ source: "/a", target: "/b", fsType: "", flags: MS.BIND, data: "" }]);
  });
});

describe("remount in place", () => {
  const mountinfo = [
    "22 1 0:21 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,mode=755",
    "40 22 254:1 / /run/controller/slots/SYSFS ro,relatime shared:20 - ext4 /dev/vda1 ro",
    "41 22 0:40 / /run/controller/diskless ro,nosuid,nodev,relatime shared:21 - tmpfs tmpfs ro,size=1024k",
    "42 22 0:41 / /run/with\\040space rw,relatime - tmpfs tmpfs rw",
    "43 41 0:42 / /run/controller/diskless rw,noexec,relatime - tmpfs tmpfs rw",
    "",
  ].join("\n");

  test("read-write or read-only, keeping the mount's nosuid, nodev and noexec", () => {
    expect(remountCall(mountinfo, "/run/controller/slots/SYSFS", false)).toEqual({ source: "", target: "/run/controller/slots/SYSFS", fsType: "", flags: MS.REMOUNT, data: "" });
    expect(remountCall(mountinfo, "/run/controller/slots/SYSFS", true)?.flags).toBe(MS.REMOUNT | MS.RDONLY);
    expect(remountCall(mountinfo, "/run", true)?.flags).toBe(MS.REMOUNT | MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC);
  });

  test("the mount on top counts; escaped mount points match; nothing mounted is undefined", () => {
    expect(remountCall(mountinfo, "/run/controller/diskless", true)?.flags).toBe(MS.REMOUNT | MS.RDONLY | MS.NOEXEC);
    expect(remountCall(mountinfo, "/run/with space", false)?.flags).toBe(MS.REMOUNT);
    expect(remountCall(mountinfo, "/run/controller/slots/BACKUPFS", false)).toBeUndefined();
  });
});

describe("utab", () => {
  test("a target mount(8) keeps an entry for, escaped as libmount writes it", () => {
    const utab = "SRC=/dev/vda3 TARGET=/run/controller/bootext ROOT=/ OPTIONS=x-initrd.mount\nSRC=/dev/vda1 TARGET=/run/a\\040b ROOT=/ OPTIONS=x-initrd.mount\n";
    expect(inUtab(utab, "/run/controller/bootext")).toBe(true);
    expect(inUtab(utab, "/run/a b")).toBe(true);
    expect(inUtab(utab, "/run/controller/inspect/0")).toBe(false);
    expect(inUtab("", "/run/controller/bootext")).toBe(false);
  });
});
