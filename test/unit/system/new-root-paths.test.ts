import { describe, expect, test } from "bun:test";
import { coveringMount, type MountRecord, mayCreateBelow, resolveInRoot } from "../../../controller/system/new-root-paths.ts";
import { FakeSystem } from "../../fake-system.ts";

const ROOT = "/sysroot";

function machine(): FakeSystem {
  return new FakeSystem().addTree(ROOT, {
    "etc/hosts": "127.0.0.1 localhost",
    "etc/ssh": { dir: true },
    "usr/lib/os-release": "ID=test",
    "lib": { symlink: "usr/lib" },
    "lib64": { symlink: "/usr/lib" },
    "var/run": { symlink: "../run" },
    "run": { dir: true },
    "etc/mtab": { symlink: "/proc/self/mounts" },
    "opt/up": { symlink: "../../../../etc" },
    "opt/abs-up": { symlink: "/../../etc" },
    "opt/loop": { symlink: "loop" },
    "opt/dangling": { symlink: "/nowhere/x" },
    "opt/back": { symlink: "missing/../etc" },
  });
}

describe("resolveInRoot", () => {
  test("plain paths", async () => {
    const fake = machine();
    expect(await resolveInRoot(fake, ROOT, "/etc/ssh")).toEqual({ status: "exists", path: "/etc/ssh", type: "directory" });
    expect(await resolveInRoot(fake, ROOT, "/etc/hosts")).toEqual({ status: "exists", path: "/etc/hosts", type: "file" });
    expect(await resolveInRoot(fake, ROOT, "/")).toEqual({ status: "exists", path: "/", type: "directory" });
    expect(await resolveInRoot(fake, ROOT, "//etc/./ssh/")).toEqual({ status: "exists", path: "/etc/ssh", type: "directory" });
  });

  test("relative and absolute links resolve inside the new root, not the initramfs", async () => {
    const fake = machine();
    expect(await resolveInRoot(fake, ROOT, "/lib/os-release")).toEqual({ status: "exists", path: "/usr/lib/os-release", type: "file" });
    expect(await resolveInRoot(fake, ROOT, "/lib64/os-release")).toEqual({ status: "exists", path: "/usr/lib/os-release", type: "file" });
    expect(await resolveInRoot(fake, ROOT, "/var/run")).toEqual({ status: "exists", path: "/run", type: "directory" });
    // /proc is not in the image: the link's target is missing in the new root, whatever the initramfs has
    expect(await resolveInRoot(fake, ROOT, "/etc/mtab")).toEqual({ status: "missing", existing: "/", missing: ["proc", "self", "mounts"] });
  });

  test("missing paths say where the existing part ends", async () => {
    const fake = machine();
    expect(await resolveInRoot(fake, ROOT, "/etc/ssh/keys/a")).toEqual({ status: "missing", existing: "/etc/ssh", missing: ["keys", "a"] });
    expect(await resolveInRoot(fake, ROOT, "/opt/dangling")).toEqual({ status: "missing", existing: "/", missing: ["nowhere", "x"] });
  });

  test("links that climb above the root, loops and paths through files are refused", async () => {
    const fake = machine();
    expect(await resolveInRoot(fake, ROOT, "/opt/up/hosts")).toMatchObject({ status: "refused", reason: expect.stringContaining("above the new root") });
    expect(await resolveInRoot(fake, ROOT, "/opt/abs-up")).toMatchObject({ status: "refused" });
    expect(await resolveInRoot(fake, ROOT, "/opt/loop")).toMatchObject({ status: "refused", reason: expect.stringContaining("symbolic links") });
    expect(await resolveInRoot(fake, ROOT, "/etc/hosts/x")).toMatchObject({ status: "refused", reason: expect.stringContaining("/etc/hosts is a file") });
    expect(await resolveInRoot(fake, ROOT, "/opt/back")).toMatchObject({ status: "refused", reason: expect.stringContaining("back up") });
    expect(await resolveInRoot(fake, ROOT, "/../etc")).toMatchObject({ status: "refused" });
  });
});

describe("where a missing target may be created", () => {
  const mounts: MountRecord[] = [
    { target: "/sysroot", source: "img", fsType: "squashfs", options: ["ro"], purpose: "image" },
    { target: "/sysroot/etc", source: "tmpfs", fsType: "tmpfs", options: [], purpose: "tmpfs" },
    { target: "/sysroot/etc/ssh", source: "/run/controller/bootext/DIRS/DIR_etc_ssh", fsType: "bind", options: [], purpose: "overmount" },
    { target: "/sysroot/var/log", source: "tmpfs", fsType: "tmpfs", options: [], purpose: "tmpfs" },
  ];

  test("only on the controller's tmpfs, never in the image or a persistent overmount", () => {
    expect(mayCreateBelow(mounts, ROOT, "/etc")).toBe(true);
    expect(mayCreateBelow(mounts, ROOT, "/etc/x")).toBe(true);
    expect(mayCreateBelow(mounts, ROOT, "/var/log")).toBe(true);
    expect(mayCreateBelow(mounts, ROOT, "/etc/ssh")).toBe(false);
    expect(mayCreateBelow(mounts, ROOT, "/etc/ssh/keys")).toBe(false);
    expect(mayCreateBelow(mounts, ROOT, "/var")).toBe(false);
    expect(mayCreateBelow(mounts, ROOT, "/")).toBe(false);
    expect(mayCreateBelow(mounts, ROOT, "/etcetera")).toBe(false);
  });

  test("the latest mount on a place wins", () => {
    const later: MountRecord[] = [...mounts, { target: "/sysroot/etc", source: "x", fsType: "bind", options: [], purpose: "overmount" }];
    expect(coveringMount(later, "/sysroot/etc/a")?.fsType).toBe("bind");
  });
});
