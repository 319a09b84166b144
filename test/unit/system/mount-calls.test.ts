import { describe, expect, test } from "bun:test";
import { inUtab, LOOP, LOOP_CONFIG_SIZE, loopConfig, loopMount, MS, mountCalls, remountCall, utabEntry, withoutUtabEntry } from "../../../controller/system/mount-calls.ts";

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

  test("a loop device, or an option of fstab's or of a mount helper's, is left to mount(8)", () => {
    expect(mountCalls({ kind: "filesystem", source: "/s/system.squashfs", target: "/sysroot", fsType: "squashfs", options: ["ro", "loop"] })).toBeUndefined();
    expect(mountCalls({ kind: "filesystem", source: "/i.img", target: "/b", fsType: "ext4", options: ["loop=/dev/loop3"] })).toBeUndefined();
    expect(mountCalls({ kind: "filesystem", source: "/dev/vda3", target: "/b", fsType: "ext4", options: ["X-mount.mkdir"] })).toBeUndefined();
    expect(mountCalls({ kind: "filesystem", source: "/dev/vda3", target: "/b", fsType: "ext4", options: ["nofail"] })).toBeUndefined();
  });

  test("a userspace option (x-) is no part of the call: utab keeps it", () => {
    expect(mountCalls({ kind: "filesystem", source: "/dev/vda3", target: "/b", fsType: "ext4", options: ["rw", "x-initrd.mount", "noatime"] })).toEqual([
      { source: "/dev/vda3", target: "/b", fsType: "ext4", flags: MS.NOATIME, data: "" },
    ]);
  });

  test("a private bind is a bind, then its propagation type on its own", () => {
    expect(mountCalls({ kind: "bind", source: "/sysroot/etc", target: "/run/controller/staging/etc", private: true })).toEqual([
      { source: "/sysroot/etc", target: "/run/controller/staging/etc", fsType: "", flags: MS.BIND, data: "" },
      { source: "", target: "/run/controller/staging/etc", fsType: "", flags: MS.PRIVATE, data: "" },
    ]);
    expect(mountCalls({ kind: "bind", source: "/a", target: "/b" })).toEqual([{ source: "/a", target: "/b", fsType: "", flags: MS.BIND, data: "" }]);
  });
});

describe("loop mounts made in this process", () => {
  test("an image with ro,loop: the file, read-only, and the mount(2) call once the device is known", () => {
    const loop = loopMount({ kind: "filesystem", source: "/s/system.squashfs", target: "/sysroot", fsType: "squashfs", options: ["ro", "loop"] });
    expect(loop?.file).toBe("/s/system.squashfs");
    expect(loop?.readOnly).toBe(true);
    expect(loop?.call("/dev/loop3")).toEqual({ source: "/dev/loop3", target: "/sysroot", fsType: "squashfs", flags: MS.RDONLY, data: "" });
    const writable = loopMount({ kind: "filesystem", source: "/i.img", target: "/m", fsType: "ext4", options: ["loop", "nosuid", "data=ordered"] });
    expect(writable?.readOnly).toBe(false);
    expect(writable?.call("/dev/loop0")).toEqual({ source: "/dev/loop0", target: "/m", fsType: "ext4", flags: MS.NOSUID, data: "data=ordered" });
  });

  test("no loop option, a bind, or what only mount(8) does (a named device, an offset, a utab option): not a loop mount of ours", () => {
    expect(loopMount({ kind: "filesystem", source: "/dev/vda1", target: "/x", fsType: "ext4", options: ["ro"] })).toBeUndefined();
    expect(loopMount({ kind: "bind", source: "/a", target: "/b" })).toBeUndefined();
    for (const extra of ["loop=/dev/loop3", "offset=4096", "sizelimit=1048576", "x-initrd.mount"]) {
      expect(loopMount({ kind: "filesystem", source: "/i.img", target: "/b", fsType: "squashfs", options: ["ro", "loop", extra] })).toBeUndefined();
    }
  });

  test("struct loop_config: the file's descriptor, autoclear and read-only in lo_flags, the name cut to 63 bytes and NUL-ended", () => {
    const bytes = loopConfig(7, true, "/run/controller/slots/SYSFS/system.squashfs");
    const view = new DataView(bytes.buffer);
    expect(bytes.length).toBe(LOOP_CONFIG_SIZE);
    expect(view.getUint32(0, true)).toBe(7);
    expect(view.getUint32(4, true)).toBe(0); // block size: the kernel's default
    expect(view.getUint32(8 + 52, true)).toBe(LOOP.FLAGS_AUTOCLEAR | LOOP.FLAGS_READ_ONLY);
    expect(new TextDecoder().decode(bytes.subarray(64, 64 + 43))).toBe("/run/controller/slots/SYSFS/system.squashfs");
    expect(new DataView(loopConfig(3, false, "/i.img").buffer).getUint32(60, true)).toBe(LOOP.FLAGS_AUTOCLEAR);
    const long = loopConfig(3, true, `/${"x".repeat(100)}`);
    expect(long[64 + 62]).toBe("x".charCodeAt(0));
    expect(long[64 + 63]).toBe(0);
    // everything after lo_file_name (crypt name, key, init, reserved) stays zero
    expect(long.subarray(64 + 64).every((byte) => byte === 0)).toBe(true);
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
  test("an entry as libmount writes it, for a filesystem with userspace options only", () => {
    expect(utabEntry({ kind: "filesystem", source: "/dev/vda1", target: "/run/controller/slots/SYSFS", fsType: "ext4", options: ["ro", "x-initrd.mount"] })).toBe(
      "SRC=/dev/vda1 TARGET=/run/controller/slots/SYSFS ROOT=/ OPTS=x-initrd.mount\n",
    );
    expect(utabEntry({ kind: "filesystem", source: "/dev/vda3", target: "/run/a b", fsType: "ext4", options: ["x-initrd.mount", "rw", "x-a=b\\c"] })).toBe(
      "SRC=/dev/vda3 TARGET=/run/a\\040b ROOT=/ OPTS=x-initrd.mount,x-a=b\\134c\n",
    );
    expect(utabEntry({ kind: "filesystem", source: "/dev/vda3", target: "/b", fsType: "ext4", options: ["rw"] })).toBeUndefined();
    expect(utabEntry({ kind: "bind", source: "/a", target: "/b" })).toBeUndefined();
  });

  test("an unmount takes out the target's entry, the last one when it is mounted twice, and leaves the others", () => {
    const bootext = "SRC=/dev/vda3 TARGET=/run/controller/bootext ROOT=/ OPTS=x-initrd.mount";
    const slot = "SRC=/dev/vda1 TARGET=/run/a\\040b ROOT=/ OPTS=x-initrd.mount";
    const again = "SRC=/dev/vda2 TARGET=/run/a\\040b ROOT=/ OPTS=x-initrd.mount";
    expect(withoutUtabEntry(`${bootext}\n${slot}\n`, "/run/a b")).toBe(`${bootext}\n`);
    expect(withoutUtabEntry(`${slot}\n${bootext}\n${again}\n`, "/run/a b")).toBe(`${slot}\n${bootext}\n`);
    expect(withoutUtabEntry(`${bootext}\n`, "/run/controller")).toBe(`${bootext}\n`);
    expect(withoutUtabEntry("", "/run/controller/bootext")).toBe("");
  });

  test("a target mount(8) keeps an entry for, escaped as libmount writes it", () => {
    const utab = "SRC=/dev/vda3 TARGET=/run/controller/bootext ROOT=/ OPTIONS=x-initrd.mount\nSRC=/dev/vda1 TARGET=/run/a\\040b ROOT=/ OPTIONS=x-initrd.mount\n";
    expect(inUtab(utab, "/run/controller/bootext")).toBe(true);
    expect(inUtab(utab, "/run/a b")).toBe(true);
    expect(inUtab(utab, "/run/controller/inspect/0")).toBe(false);
    expect(inUtab("", "/run/controller/bootext")).toBe(false);
  });
});
