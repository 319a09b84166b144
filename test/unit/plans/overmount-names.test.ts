import { describe, expect, test } from "bun:test";
import { orderOvermounts, parseOvermountEntry, targetFromSpec } from "../../../controller/plans/overmount-names.ts";

function target(entry: string, type: "file" | "directory" = "directory") {
  const parsed = parseOvermountEntry(entry, type);
  if (parsed.status !== "overmount") throw new Error(`${entry}: ${parsed.status}: ${parsed.reason}`);
  return parsed.overmount;
}

function refusal(entry: string, type: "file" | "directory" | "symlink" | "other" = "directory"): string {
  const parsed = parseOvermountEntry(entry, type);
  if (parsed.status !== "refused") throw new Error(`${entry} was not refused but ${parsed.status}`);
  return parsed.reason;
}

describe("overmount names (AnthillaOS DIRS syntax)", () => {
  test("DIR_ folders map underscores to slashes", () => {
    expect(target("DIR_etc_ssh")).toEqual({ entry: "DIR_etc_ssh", kind: "folder", target: "/etc/ssh" });
    expect(target("DIR_opt").target).toBe("/opt");
    expect(target("DIR_lib64_firmware").target).toBe("/lib64/firmware");
  });

  test("DIR_ images by extension, as in AnthillaOS's DIR_lib64_firmware.squashfs.xz", () => {
    expect(target("DIR_lib64_firmware.squashfs.xz", "file")).toEqual({
      entry: "DIR_lib64_firmware.squashfs.xz",
      kind: "squashfs.xz",
      target: "/lib64/firmware",
    });
    expect(target("DIR_opt_tools.squashfs", "file")).toMatchObject({ kind: "squashfs", target: "/opt/tools" });
  });

  test("a folder keeps a dot in its name: only files are images", () => {
    expect(target("DIR_etc_foo.d").target).toBe("/etc/foo.d");
    expect(target("DIR_srv_x.squashfs", "directory")).toMatchObject({ kind: "folder", target: "/srv/x.squashfs" });
  });

  test("FILE_ entries map to a file path", () => {
    expect(target("FILE_etc_hosts", "file")).toEqual({ entry: "FILE_etc_hosts", kind: "file", target: "/etc/hosts" });
    expect(target("FILE_etc_motd.txt", "file").target).toBe("/etc/motd.txt");
  });

  test("a literal underscore is written %5F, a literal % as %25", () => {
    expect(target("DIR_usr_lib_python3_site%5Fpackages").target).toBe("/usr/lib/python3/site_packages");
    expect(target("FILE_etc_100%25", "file").target).toBe("/etc/100%");
    expect(target("DIR_a_%5Fb").target).toBe("/a/_b");
    expect(target("DIR_a%5F_b").target).toBe("/a_/b");
    expect(target("DIR_my%20dir").target).toBe("/my dir");
  });

  test("names that would leave the new root or mean nothing are refused", () => {
    expect(refusal("DIR_")).toContain("names no path");
    expect(refusal("DIR__etc")).toContain("empty path component");
    expect(refusal("DIR_etc_")).toContain("empty path component");
    expect(refusal("DIR_etc__ssh")).toContain("empty path component");
    expect(refusal("DIR_.._etc")).toContain('".." path component');
    expect(refusal("DIR_etc_..")).toContain('".." path component');
    expect(refusal("DIR_%2E%2E_etc")).toContain('".." path component');
    expect(refusal("DIR_._etc")).toContain('"." path component');
    expect(refusal("DIR_etc%2F..%2Fx")).toContain("containing /");
    expect(refusal("DIR_%2Fetc")).toContain("containing /");
    expect(refusal("DIR_etc_%0A")).toContain("control character");
    expect(refusal("DIR_etc_%zz")).toContain("two hex digits");
    expect(refusal("DIR_etc_50%")).toContain("two hex digits");
    expect(refusal("DIR_%2E.squashfs", "file")).toContain('"." path component');
  });

  test("sources must be real folders or files of the right kind", () => {
    expect(refusal("DIR_etc_ssh", "symlink")).toContain("symbolic link");
    expect(refusal("FILE_etc_hosts", "symlink")).toContain("symbolic link");
    expect(refusal("DIR_dev_x", "other")).toContain("device, socket or pipe");
    expect(refusal("FILE_etc_hosts", "directory")).toContain("must be a file");
    expect(refusal("DIR_etc_hosts", "file")).toContain("must end in .squashfs or .squashfs.xz");
    expect(refusal("DIR_opt.xz", "file")).toContain("must end in .squashfs");
    expect(refusal("DIR_.squashfs", "file")).toContain("names no path");
  });

  test("other names are ignored, not refused", () => {
    for (const entry of ["README", "dir_etc", "DIRetc", "FILE", "config.d"]) {
      expect(parseOvermountEntry(entry, "file").status).toBe("ignored");
    }
  });

  test("targetFromSpec decodes without the prefix", () => {
    expect(targetFromSpec("a_b_c")).toEqual({ target: "/a/b/c" });
    expect(targetFromSpec("")).toHaveProperty("error");
  });
});

describe("orderOvermounts", () => {
  test("parents come before their children, whatever the names' order", () => {
    const names = [target("DIR_etc_ssh_keys"), target("DIR_etc"), target("DIR_etc_ssh"), target("DIR_a")];
    expect(orderOvermounts(names).ordered.map((n) => n.target)).toEqual(["/a", "/etc", "/etc/ssh", "/etc/ssh/keys"]);
  });

  test("a second entry for one target is refused and names the first", () => {
    const { ordered, duplicates } = orderOvermounts([target("DIR_opt_x.squashfs", "file"), target("DIR_opt_x")]);
    expect(ordered.map((n) => n.entry)).toEqual(["DIR_opt_x"]);
    expect(duplicates).toEqual([{ status: "refused", entry: "DIR_opt_x.squashfs", reason: "DIR_opt_x already overmounts /opt/x" }]);
  });
});
