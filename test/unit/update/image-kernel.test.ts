import { describe, expect, test } from "bun:test";
import { checkImageKernel, type ImageTree, locateImageKernel, moduleReleases, resolveInImage, type TreeEntry } from "../../../controller/update/image-kernel.ts";

const K = "6.1.0-57-amd64";

const file = (size = 100): TreeEntry => ({ type: "file", size });
const link = (target: string): TreeEntry => ({ type: "symlink", target });
const dir: TreeEntry = { type: "directory" };

function tree(entries: Record<string, TreeEntry>): ImageTree {
  return new Map(Object.entries(entries));
}

/** A debootstrapped bookworm with linux-image-amd64: merged /usr, Debian's / links, versioned files in /boot. */
function debian(extra: Record<string, TreeEntry> = {}): Record<string, TreeEntry> {
  return {
    "/boot": dir,
    [`/boot/vmlinuz-${K}`]: file(8247232),
    [`/boot/initrd.img-${K}`]: file(30000000),
    [`/boot/config-${K}`]: file(),
    [`/boot/System.map-${K}`]: file(),
    "/vmlinuz": link(`boot/vmlinuz-${K}`),
    "/initrd.img": link(`boot/initrd.img-${K}`),
    "/vmlinuz.old": link(`boot/vmlinuz-${K}`),
    "/lib": link("usr/lib"),
    "/usr": dir,
    "/usr/lib": dir,
    "/usr/lib/modules": dir,
    [`/usr/lib/modules/${K}`]: dir,
    [`/usr/lib/modules/${K}/modules.dep`]: file(),
    ...extra,
  };
}

describe("resolveInImage", () => {
  const t = tree({ "/a": dir, "/a/b": link("../c"), "/c": dir, "/c/f": file(), "/abs": link("/c/f"), "/out": link("../../../c/f"), "/loop": link("loop"), "/f": file(), "/dangling": link("nowhere") });
  test("relative and absolute links, and .. that cannot leave the image", () => {
    expect(resolveInImage(t, "/a/b/f")).toEqual({ ok: true, path: "/c/f", entry: file() });
    expect(resolveInImage(t, "/abs")).toEqual({ ok: true, path: "/c/f", entry: file() });
    expect(resolveInImage(t, "/out")).toEqual({ ok: true, path: "/c/f", entry: file() });
    expect(resolveInImage(t, "/")).toEqual({ ok: true, path: "/", entry: dir });
  });
  test("missing, dangling, loops, a file used as a folder", () => {
    expect(resolveInImage(t, "/nothing")).toEqual({ ok: true, path: "/nothing", entry: undefined });
    expect(resolveInImage(t, "/dangling")).toEqual({ ok: true, path: "/nowhere", entry: undefined });
    expect(resolveInImage(t, "/nothing/x")).toEqual({ ok: true, path: "/nothing/x", entry: undefined });
    expect(resolveInImage(t, "/a/b/nothing/x")).toEqual({ ok: true, path: "/c/nothing/x", entry: undefined });
    expect(resolveInImage(t, "/loop")).toEqual({ ok: false, problem: "Cannot resolve /loop in the image: more than 16 symlinks (a loop?)" });
    expect(resolveInImage(t, "/f/x")).toEqual({ ok: false, problem: "Cannot resolve /f/x in the image: /f is a regular file, expected a folder" });
  });
});

describe("locateImageKernel", () => {
  test("Debian: /vmlinuz and /initrd.img links to the versioned files; modules under merged /usr", () => {
    const t = tree(debian());
    const located = locateImageKernel(t);
    expect(located).toEqual({
      kind: "kernel",
      kernel: { foundAs: "/vmlinuz", path: `/boot/vmlinuz-${K}`, size: 8247232 },
      initrd: { foundAs: "/initrd.img", path: `/boot/initrd.img-${K}`, size: 30000000 },
      nameRelease: K,
      notes: [],
    });
    if (located.kind === "kernel") expect(checkImageKernel(t, located, K)).toEqual([]);
  });

  test("the project's convention: /boot/vmlinuz and /boot/initrd.img as plain files win over Debian's links", () => {
    const t = tree(debian({ "/boot/vmlinuz": file(5), "/boot/initrd.img": file(6) }));
    const located = locateImageKernel(t);
    expect(located).toEqual({
      kind: "kernel",
      kernel: { foundAs: "/boot/vmlinuz", path: "/boot/vmlinuz", size: 5 },
      initrd: { foundAs: "/boot/initrd.img", path: "/boot/initrd.img", size: 6 },
      notes: [],
    });
    // no name to check against: the header's release and /lib/modules decide
    if (located.kind === "kernel") expect(checkImageKernel(t, located, K)).toEqual([]);
  });

  test("only the versioned files (no links, as with do_symlinks = no): the one kernel and its initrd", () => {
    const t = tree(debian({ "/vmlinuz": undefined as never, "/initrd.img": undefined as never }));
    const entries = new Map([...t].filter(([, entry]) => entry !== undefined));
    expect(locateImageKernel(entries)).toMatchObject({ kind: "kernel", kernel: { foundAs: `/boot/vmlinuz-${K}` }, initrd: { foundAs: `/boot/initrd.img-${K}` }, nameRelease: K });
  });

  test("two kernels: the link says which; without one, refused", () => {
    const two = debian({ "/boot/vmlinuz-6.1.0-58-amd64": file(), "/boot/initrd.img-6.1.0-58-amd64": file() });
    expect(locateImageKernel(tree(two))).toMatchObject({ kind: "kernel", kernel: { path: `/boot/vmlinuz-${K}` }, notes: [`the image has 2 kernels; /vmlinuz says /boot/vmlinuz-${K} boots`] });
    delete two["/vmlinuz"];
    expect(locateImageKernel(tree(two))).toEqual({
      kind: "refused",
      problems: [`the image has 2 kernels (/boot/vmlinuz-${K}, /boot/vmlinuz-6.1.0-58-amd64) and no /boot/vmlinuz or /vmlinuz link that says which boots`],
    });
  });

  test("backup names are not kernels", () => {
    const t = debian({ [`/boot/vmlinuz-${K}.bak`]: file(), [`/boot/vmlinuz-${K}.old`]: file() });
    delete t["/vmlinuz"];
    expect(locateImageKernel(tree(t))).toMatchObject({ kind: "kernel", kernel: { path: `/boot/vmlinuz-${K}` } });
  });

  test("no kernel at all: a valid image that boots on the running kernel", () => {
    expect(locateImageKernel(tree({ "/sbin": dir, "/sbin/init": file() }))).toEqual({ kind: "none", why: "the image has no /boot/vmlinuz, /vmlinuz or /boot/vmlinuz-KVER" });
    expect(locateImageKernel(tree({ "/boot": dir }))).toMatchObject({ kind: "none" });
  });

  test("a broken link, a folder or a device where the kernel should be: refused, naming it", () => {
    expect(locateImageKernel(tree({ "/boot": dir, "/boot/vmlinuz": link("vmlinuz-9") }))).toEqual({ kind: "refused", problems: ["/boot/vmlinuz points to /boot/vmlinuz-9, which does not exist"] });
    expect(locateImageKernel(tree({ "/boot": dir, "/boot/vmlinuz": dir }))).toEqual({ kind: "refused", problems: ["/boot/vmlinuz is a folder, expected a regular file"] });
    expect(locateImageKernel(tree({ "/vmlinuz": link("dev/null"), "/dev": dir, "/dev/null": { type: "other" } }))).toEqual({
      kind: "refused",
      problems: ["/vmlinuz is a device, FIFO or socket (/dev/null), expected a regular file"],
    });
    expect(locateImageKernel(tree({ "/vmlinuz": link("vmlinuz") }))).toEqual({ kind: "refused", problems: ["Cannot resolve /vmlinuz in the image: more than 16 symlinks (a loop?)"] });
  });

  test("a broken initrd link is refused; a kernel without any initrd is located, and the check refuses it", () => {
    expect(locateImageKernel(tree(debian({ "/initrd.img": link("boot/initrd.img-9") })))).toEqual({
      kind: "refused",
      problems: ["/initrd.img points to /boot/initrd.img-9, which does not exist"],
    });
    const t = debian();
    delete t["/initrd.img"];
    delete t[`/boot/initrd.img-${K}`];
    const located = locateImageKernel(tree(t));
    expect(located).toMatchObject({ kind: "kernel" });
    expect(located).not.toHaveProperty("initrd");
    if (located.kind === "kernel") {
      expect(checkImageKernel(tree(t), located, K)).toEqual([
        `the image has a kernel (/boot/vmlinuz-${K}) but no initrd (/boot/initrd.img, /initrd.img or /boot/initrd.img-${K}): expected one built with this project's dracut module, which holds the controller`,
      ]);
    }
  });

  test("an unnamed kernel takes the one initrd there is; with several, none, and a note", () => {
    const one = tree({ "/boot": dir, "/boot/vmlinuz": file(), [`/boot/initrd.img-${K}`]: file(7) });
    expect(locateImageKernel(one)).toMatchObject({ kind: "kernel", initrd: { path: `/boot/initrd.img-${K}`, size: 7 } });
    const two = tree({ "/boot": dir, "/boot/vmlinuz": file(), [`/boot/initrd.img-${K}`]: file(), "/boot/initrd.img-6.1.0-58-amd64": file() });
    const located = locateImageKernel(two);
    expect(located).toMatchObject({ kind: "kernel", notes: ["the image has 2 initrds and no /boot/initrd.img link that says which goes with /boot/vmlinuz"] });
    expect(located).not.toHaveProperty("initrd");
  });
});

describe("checkImageKernel: the kernel, its names and its modules must agree", () => {
  function check(entries: Record<string, TreeEntry>, release: string): string[] {
    const t = tree(entries);
    const located = locateImageKernel(t);
    if (located.kind !== "kernel") throw new Error(`expected a kernel, got ${JSON.stringify(located)}`);
    return checkImageKernel(t, located, release);
  }

  test("the header says another release than the file name", () => {
    expect(check(debian({ "/usr/lib/modules/6.1.0-99-amd64": dir, "/usr/lib/modules/6.1.0-99-amd64/modules.dep": file() }), "6.1.0-99-amd64")).toEqual([
      `the kernel /boot/vmlinuz-${K} is named for release ${K}, but its header says 6.1.0-99-amd64`,
      `the initrd /boot/initrd.img-${K} is named for release ${K}, but the kernel is 6.1.0-99-amd64`,
    ]);
  });

  test("modules for another kernel only, or none at all", () => {
    const other = debian();
    delete other[`/usr/lib/modules/${K}`];
    delete other[`/usr/lib/modules/${K}/modules.dep`];
    other["/usr/lib/modules/6.1.0-28-amd64"] = dir;
    expect(check(other, K)).toEqual([`the kernel is ${K} but the image has no /lib/modules/${K} (its modules are for 6.1.0-28-amd64): the kernel and the modules disagree`]);
    delete other["/usr/lib/modules/6.1.0-28-amd64"];
    delete other["/usr/lib/modules"];
    expect(check(other, K)).toEqual([`the kernel is ${K} but the image has no /lib/modules/${K} (its modules are for no kernel at all): the kernel and the modules disagree`]);
  });

  test("modules without modules.dep: modprobe would fail", () => {
    const t = debian();
    delete t[`/usr/lib/modules/${K}/modules.dep`];
    expect(check(t, K)).toEqual([`/lib/modules/${K} has no modules.dep: run depmod ${K} in the image before making it`]);
  });

  test("an unmerged /lib works the same", () => {
    const t: Record<string, TreeEntry> = { "/boot": dir, "/boot/vmlinuz": file(), "/boot/initrd.img": file(), "/lib": dir, "/lib/modules": dir, [`/lib/modules/${K}`]: dir, [`/lib/modules/${K}/modules.dep`]: file() };
    expect(check(t, K)).toEqual([]);
  });
});

describe("moduleReleases", () => {
  test("the folders under /lib/modules, links followed", () => {
    expect(moduleReleases(tree(debian({ "/usr/lib/modules/6.1.0-28-amd64": dir, "/usr/lib/modules/README": file() })))).toEqual(["6.1.0-28-amd64", K]);
    expect(moduleReleases(tree({}))).toEqual([]);
  });
});
