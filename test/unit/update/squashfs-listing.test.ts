import { describe, expect, test } from "bun:test";
import { checkImageKernel, locateImageKernel } from "../../../controller/update/image-kernel.ts";
import { parseSquashfsListing } from "../../../controller/update/squashfs-listing.ts";

/** `unsquashfs -lls` (4.5.1) of a small squashfs made with mksquashfs: a kernel, Debian's links, merged /usr, a device, a FIFO, a name with " -> " in it. */
const REAL = `drwxr-xr-x root/root                75 2026-12-04 19:54 squashfs-root
drwxr-xr-x root/root                64 2026-12-04 19:54 squashfs-root/boot
-rw-r--r-- root/root                 2 2026-12-04 19:54 squashfs-root/boot/a name -> b
-rw-r--r-- root/root                 2 2026-12-04 19:54 squashfs-root/boot/vmlinuz-6.1.0-57-amd64
drwxr-xr-x root/root                39 2026-12-04 19:54 squashfs-root/dev
prw-r--r-- root/root                 0 2026-12-04 19:54 squashfs-root/dev/fifo
crw-r--r-- root/root             1,  3 2026-12-04 19:54 squashfs-root/dev/null
lrwxrwxrwx root/root                 7 2026-12-04 19:54 squashfs-root/lib -> usr/lib
drwxr-xr-x root/root                26 2026-12-04 19:54 squashfs-root/usr
drwxr-xr-x root/root                30 2026-12-04 19:54 squashfs-root/usr/lib
drwxr-xr-x root/root                37 2026-12-04 19:54 squashfs-root/usr/lib/modules
drwxr-xr-x root/root                34 2026-12-04 19:54 squashfs-root/usr/lib/modules/6.1.0-57-amd64
-rw-r--r-- root/root                 0 2026-12-04 19:54 squashfs-root/usr/lib/modules/6.1.0-57-amd64/modules.dep
lrwxrwxrwx root/root                27 2026-12-04 19:54 squashfs-root/vmlinuz -> boot/vmlinuz-6.1.0-57-amd64
`;

describe("parseSquashfsListing", () => {
  test("a real listing: every kind of entry, the root left out", () => {
    const parsed = parseSquashfsListing(REAL);
    if (!parsed.ok) throw new Error(parsed.problem);
    expect([...parsed.tree]).toEqual([
      ["/boot", { type: "directory" }],
      ["/boot/a name -> b", { type: "file", size: 2 }],
      ["/boot/vmlinuz-6.1.0-57-amd64", { type: "file", size: 2 }],
      ["/dev", { type: "directory" }],
      ["/dev/fifo", { type: "other" }],
      ["/dev/null", { type: "other" }],
      ["/lib", { type: "symlink", target: "usr/lib" }],
      ["/usr", { type: "directory" }],
      ["/usr/lib", { type: "directory" }],
      ["/usr/lib/modules", { type: "directory" }],
      ["/usr/lib/modules/6.1.0-57-amd64", { type: "directory" }],
      ["/usr/lib/modules/6.1.0-57-amd64/modules.dep", { type: "file", size: 0 }],
      ["/vmlinuz", { type: "symlink", target: "boot/vmlinuz-6.1.0-57-amd64" }],
    ]);
    // and the convention reads it: the kernel, no initrd (which publish would refuse)
    const located = locateImageKernel(parsed.tree);
    expect(located).toMatchObject({ kind: "kernel", kernel: { foundAs: "/vmlinuz", path: "/boot/vmlinuz-6.1.0-57-amd64", size: 2 } });
    if (located.kind === "kernel") expect(checkImageKernel(parsed.tree, located, "6.1.0-57-amd64")).toEqual([expect.stringContaining("but no initrd")]);
  });

  test("a symlink whose name holds an arrow: the size says where the target starts", () => {
    const parsed = parseSquashfsListing("drwxr-xr-x root/root 1 2026-12-04 19:54 squashfs-root\nlrwxrwxrwx root/root 3 2026-12-04 19:54 squashfs-root/a -> b -> c/d\n");
    expect(parsed).toEqual({ ok: true, tree: new Map([["/a -> b", { type: "symlink", target: "c/d" }]]) });
  });

  test("what is refused", () => {
    const root = "drwxr-xr-x root/root 1 2026-12-04 19:54 squashfs-root\n";
    expect(parseSquashfsListing("")).toEqual({ ok: false, problem: "Cannot read the image's listing: expected an entry for its root, squashfs-root, got no entries at all" });
    expect(parseSquashfsListing("Parallel unsquashfs: Using 2 processors\n")).toEqual({
      ok: false,
      problem: 'Cannot read the image\'s listing: line 1 is not an entry of `unsquashfs -lls`: "Parallel unsquashfs: Using 2 processors"',
    });
    expect(parseSquashfsListing(`${root}lrwxrwxrwx root/root 9 2026-12-04 19:54 squashfs-root/a -> b\n`)).toEqual({
      ok: false,
      problem: "Cannot read the image's listing: line 2 is a symlink whose target is not the 9 characters its size says",
    });
    expect(parseSquashfsListing(`${root}-rw-r--r-- root/root 1 2026-12-04 19:54 /etc/shadow\n`)).toEqual({
      ok: false,
      problem: 'Cannot read the image\'s listing: line 2 names "/etc/shadow", expected a path under squashfs-root',
    });
    // a name with a line break that forges a second entry for a path
    const forged = `${root}-rw-r--r-- root/root 1 2026-12-04 19:54 squashfs-root/boot/vmlinuz\n-rw-r--r-- root/root 1 2026-12-04 19:54 squashfs-root/boot/vmlinuz\n`;
    expect(parseSquashfsListing(forged)).toEqual({ ok: false, problem: 'Cannot read the image\'s listing: line 3 lists "/boot/vmlinuz" a second time' });
    expect(parseSquashfsListing(`-rw-r--r-- root/root 1 2026-12-04 19:54 squashfs-root/x\n`)).toMatchObject({ ok: false, problem: expect.stringContaining("got none") });
  });
});
