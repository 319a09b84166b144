import { describe, expect, test } from "bun:test";
import { runBoot } from "../../../controller/boot/run-boot.ts";
import { labMachine } from "../../fake-machine.ts";
import type { Tree } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

async function bootWithDirs(dirs: Tree, extra: Tree = {}) {
  const fake = labMachine({ bootext: { ...Object.fromEntries(Object.entries(dirs).map(([k, v]) => [`DIRS/${k}`, v])), ...extra } });
  const { log, sink } = memoryLogger();
  const { report } = await runBoot(fake, log);
  const byEntry = Object.fromEntries(report.overmounts.map((o) => [o.entry, o]));
  return { fake, sink, report, byEntry };
}

describe("overmounts stage", () => {
  test("DIR_ folder, DIR_ squashfs, DIR_ squashfs.xz and FILE_ land on their targets", async () => {
    const { fake, byEntry } = await bootWithDirs({
      "DIR_opt/hello.txt": "from a folder",
      "DIR_srv.squashfs": { image: { "data.txt": "from squashfs" } },
      "DIR_usr_share_fw.squashfs.xz": { image: { "fw.bin": "from xz" }, xz: true },
      FILE_etc_hostname: "overmounted-host",
    });
    expect(byEntry["DIR_opt"]).toEqual({ entry: "DIR_opt", kind: "folder", target: "/opt", status: "mounted", detail: "" });
    expect(fake.peek("/sysroot/opt/hello.txt")).toBe("from a folder");
    expect(fake.peek("/sysroot/srv/data.txt")).toBe("from squashfs");
    expect(fake.peek("/sysroot/usr/share/fw/fw.bin")).toBe("from xz");
    expect(fake.peek("/sysroot/etc/hostname")).toBe("overmounted-host");
    expect(fake.mountAt("/sysroot/usr/share/fw")).toMatchObject({ fsType: "squashfs", source: "/run/controller/overmount-images/DIR_usr_share_fw.squashfs", readOnly: true });
    expect(fake.mountAt("/sysroot/etc/hostname")).toMatchObject({ fsType: "bind", source: "/run/controller/bootext/DIRS/FILE_etc_hostname" });
    expect(fake.commands).toContainEqual(["xz", "--decompress", "--stdout", "/run/controller/bootext/DIRS/DIR_usr_share_fw.squashfs.xz"]);
  });

  test("a target missing from the image is created on tmpfs, and skipped elsewhere", async () => {
    const { fake, byEntry } = await bootWithDirs({
      "DIR_etc_newdir/a": "a",
      "DIR_var_log_app/b": "b",
      FILE_etc_new_deep_file: "deep",
      "DIR_opt_missing/c": "c",
      "DIR_nonexistent_top/d": "d",
    });
    expect(byEntry["DIR_etc_newdir"]).toMatchObject({ status: "mounted", detail: "created /etc/newdir on tmpfs first" });
    expect(fake.peek("/sysroot/etc/newdir/a")).toBe("a");
    expect(fake.peek("/sysroot/var/log/app/b")).toBe("b");
    expect(fake.peek("/sysroot/etc/new/deep/file")).toBe("deep");
    // /opt exists in the image but is read-only squashfs: nothing may be created there
    expect(byEntry["DIR_opt_missing"]).toMatchObject({
      status: "skipped",
      detail: "/opt/missing does not exist in the read-only image and /opt is not on a tmpfs where it could be created",
    });
    expect(byEntry["DIR_nonexistent_top"]?.status).toBe("skipped");
    expect(fake.peek("/sysroot/opt/missing")).toBeUndefined();
  });

  test("nothing is created inside a persistent overmount", async () => {
    const { byEntry } = await bootWithDirs({ "DIR_etc_ssh/x": "keys", "FILE_etc_ssh_extra": "y" });
    expect(byEntry["DIR_etc_ssh"]?.status).toBe("mounted");
    expect(byEntry["FILE_etc_ssh_extra"]).toMatchObject({ status: "skipped", detail: expect.stringContaining("/etc/ssh is not on a tmpfs") });
  });

  test("targets whose links climb out of the new root are refused", async () => {
    const { log } = memoryLogger();
    // the image gets its links as it is mounted
    const tampered = labMachine({ bootext: { "DIRS/DIR_opt_escape/x": "x", "DIRS/DIR_opt_abs/y": "y" } });
    const original = tampered.mount.bind(tampered);
    tampered.mount = async (request) => {
      await original(request);
      if (request.kind === "filesystem" && request.target === "/sysroot") {
        tampered.addTree("/sysroot/opt", { escape: { symlink: "../../../run/controller" }, abs: { symlink: "/etc" } });
      }
    };
    const { report } = await runBoot(tampered, log);
    const byEntry = Object.fromEntries(report.overmounts.map((o) => [o.entry, o]));
    expect(byEntry["DIR_opt_escape"]).toMatchObject({ status: "refused", detail: "/opt/escape leads above the new root" });
    // an absolute link points into the new root: /opt/abs is /etc of the image (on tmpfs by now)
    expect(byEntry["DIR_opt_abs"]).toMatchObject({ status: "mounted", target: "/etc" });
    expect(tampered.peek("/run/controller/x")).toBeUndefined();
  });

  test("bad entries are refused or ignored with reasons, the good ones still mount", async () => {
    const { report, byEntry, sink } = await bootWithDirs(
      {
        README: "notes",
        "DIR_.._etc/x": "x",
        DIR_etc_hosts: "a file named like a folder",
        "FILE_etc_dir/inner": "a folder named like a file",
        DIR_etc_link: { symlink: "/etc" },
        "DIR_opt/z": "z",
        "DIR_opt.squashfs": { image: {} },
        FILE_etc_test: "ok",
      },
      {},
    );
    expect(byEntry["README"]?.status).toBe("ignored");
    expect(byEntry["DIR_.._etc"]?.status).toBe("refused");
    expect(byEntry["DIR_etc_hosts"]).toMatchObject({ status: "refused", detail: "a DIR_ entry that is a file must end in .squashfs or .squashfs.xz" });
    expect(byEntry["FILE_etc_dir"]?.status).toBe("refused");
    expect(byEntry["DIR_etc_link"]).toMatchObject({ status: "refused", detail: expect.stringContaining("symbolic link") });
    expect(byEntry["DIR_opt"]?.status).toBe("mounted");
    expect(byEntry["DIR_opt.squashfs"]).toMatchObject({ status: "refused", detail: "DIR_opt already overmounts /opt" });
    expect(byEntry["FILE_etc_test"]?.status).toBe("mounted");
    expect(report.overmounts).toHaveLength(8);
    expect(sink.text()).toContain("WARNING: Refused DIR_etc_link");
  });

  test("a FILE_ entry over a folder, or a DIR_ over a file, is skipped", async () => {
    const { byEntry } = await bootWithDirs({ FILE_etc: "x", "DIR_etc_hostname/x": "y" });
    expect(byEntry["FILE_etc"]).toMatchObject({ status: "skipped", detail: "/etc is not a file in the new root, so a FILE_ entry cannot cover it" });
    expect(byEntry["DIR_etc_hostname"]).toMatchObject({ status: "skipped", detail: "/etc/hostname is not a folder in the new root, so a DIR_ entry cannot cover it" });
  });

  test("a mount that fails is reported and the others go on", async () => {
    const fake = labMachine({ bootext: { "DIRS/DIR_opt/a": "a", "DIRS/DIR_srv.squashfs.xz": { image: {}, xz: false } } });
    const { report } = await runBoot(fake, memoryLogger().log);
    const byEntry = Object.fromEntries(report.overmounts.map((o) => [o.entry, o]));
    expect(byEntry["DIR_srv"]).toBeUndefined();
    expect(byEntry["DIR_srv.squashfs.xz"]).toMatchObject({ status: "failed", detail: expect.stringContaining("File format not recognized") });
    expect(byEntry["DIR_opt"]?.status).toBe("mounted");
  });

  test("disabled, no BOOTEXT, no DIRS: nothing to do, said once", async () => {
    const disabled = labMachine({ cmdline: "root=controller controller.overmounts.enabled=false", bootext: { "DIRS/DIR_opt/a": "a" } });
    const one = memoryLogger();
    expect((await runBoot(disabled, one.log)).report.overmounts).toEqual([]);
    expect(one.sink.text()).toContain("overmounts are disabled (overmounts.enabled = false)");

    const noBootext = labMachine({ labels: ["SYSFS"] });
    const two = memoryLogger();
    await runBoot(noBootext, two.log);
    expect(two.sink.text()).toContain("no BOOTEXT partition, so no overmounts");

    const noDirs = labMachine({ bootext: {} });
    const three = memoryLogger();
    await runBoot(noDirs, three.log);
    expect(three.sink.text()).toContain("no DIRS folder on BOOTEXT, so no overmounts");
  });
});
