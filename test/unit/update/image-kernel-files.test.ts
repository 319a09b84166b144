// readImageKernel and checkSignedKernel on real squashfs images made with
// mksquashfs: what publish signs of an image's kernel, and what verify reads
// out of it again.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkSignedKernel, readImageKernel } from "../../../controller/update/image-kernel-files.ts";
import { sha512Hex } from "../../../controller/update/signing.ts";
import { fakeBzImage } from "../../bzimage.ts";
import { debianImage, newSquashfs, without } from "../../squashfs-image.ts";

const RELEASE = "6.1.0-57-amd64";
const BUILD = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)";
const KERNEL = fakeBzImage();
const INITRD = new TextEncoder().encode("an initrd with this project's dracut module\n".repeat(100));
const DEBIAN = debianImage(RELEASE, KERNEL, INITRD);

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "image-kernel-files-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("readImageKernel", () => {
  test("Debian's names and links: the regular files they resolve to, with size and sha512, and the release and build from the header", async () => {
    expect(await readImageKernel(await newSquashfs(dir, DEBIAN))).toEqual({
      kind: "kernel",
      kernel: {
        release: RELEASE,
        build: BUILD,
        vmlinuz: { path: `/boot/vmlinuz-${RELEASE}`, size: KERNEL.length, sha512: sha512Hex(KERNEL) },
        initrd: { path: `/boot/initrd.img-${RELEASE}`, size: INITRD.length, sha512: sha512Hex(INITRD) },
      },
      notes: [],
    });
  });

  test("a 3 MiB kernel, many pieces of unsquashfs's output: hashed whole, its version string read 64 KiB in", async () => {
    const big = fakeBzImage({ setupSects: 255, pointer: 0xfe00, length: 3 << 20, text: `${RELEASE} (me@host) #7 SMP\u0000` });
    const found = await readImageKernel(await newSquashfs(dir, { ...DEBIAN, [`boot/vmlinuz-${RELEASE}`]: big }));
    expect(found).toMatchObject({ kind: "kernel", kernel: { release: RELEASE, build: "#7 SMP", vmlinuz: { size: big.length, sha512: sha512Hex(big) } } });
  });

  test("an image built by hand: /boot/vmlinuz and /boot/initrd.img; a previous kernel beside them is named in a note", async () => {
    const found = await readImageKernel(
      await newSquashfs(dir, {
        "boot/vmlinuz": KERNEL,
        "boot/initrd.img": INITRD,
        "boot/vmlinuz-6.1.0-56-amd64": "old",
        "boot/vmlinuz-6.1.0-55-amd64": "older",
        [`lib/modules/${RELEASE}/modules.dep`]: "",
      }),
    );
    expect(found).toMatchObject({ kind: "kernel", kernel: { vmlinuz: { path: "/boot/vmlinuz" }, initrd: { path: "/boot/initrd.img" } } });
    expect(found.kind === "kernel" && found.notes).toEqual(["the image has 2 kernels; /boot/vmlinuz says /boot/vmlinuz boots"]);
  });

  test("no kernel: a valid image, with the module releases it has (none, or some)", async () => {
    const why = "the image has no /boot/vmlinuz, /vmlinuz or /boot/vmlinuz-KVER";
    expect(await readImageKernel(await newSquashfs(dir, { "etc/hostname": "lab\n" }))).toEqual({ kind: "none", why, moduleReleases: [] });
    expect(await readImageKernel(await newSquashfs(dir, { [`lib/modules/${RELEASE}/modules.dep`]: "" }))).toEqual({ kind: "none", why, moduleReleases: [RELEASE] });
  });

  test("kernel and modules disagree: refused, naming the image, both releases and the paths", async () => {
    const path = await newSquashfs(dir, { ...without(DEBIAN, `usr/lib/modules/${RELEASE}/modules.dep`), "usr/lib/modules/6.1.0-56-amd64/modules.dep": "" });
    expect(await readImageKernel(path)).toEqual({
      kind: "refused",
      problems: [
        `Cannot publish the image ${path}: the kernel is ${RELEASE} but the image has no /lib/modules/${RELEASE} (its modules are for 6.1.0-56-amd64): the kernel and the modules disagree`,
      ],
    });
  });

  test("a kernel without an initrd, two kernels and no link, a file that is no bzImage: each refused with why", async () => {
    const noInitrd = await newSquashfs(dir, without(DEBIAN, `boot/initrd.img-${RELEASE}`, "initrd.img"));
    expect(await readImageKernel(noInitrd)).toEqual({
      kind: "refused",
      problems: [
        `Cannot publish the image ${noInitrd}: the image has a kernel (/boot/vmlinuz-${RELEASE}) but no initrd (/boot/initrd.img, /initrd.img or /boot/initrd.img-${RELEASE}): ` +
          "expected one built with this project's dracut module, which holds the controller",
      ],
    });
    const twoKernels = await newSquashfs(dir, { ...without(DEBIAN, "vmlinuz"), "boot/vmlinuz-6.1.0-56-amd64": KERNEL });
    expect(await readImageKernel(twoKernels)).toEqual({
      kind: "refused",
      problems: [
        `Cannot publish the image ${twoKernels}: the image has 2 kernels (/boot/vmlinuz-6.1.0-56-amd64, /boot/vmlinuz-${RELEASE}) and no /boot/vmlinuz or /vmlinuz link that says which boots`,
      ],
    });
    const notKernel = await newSquashfs(dir, { ...DEBIAN, [`boot/vmlinuz-${RELEASE}`]: "#!/bin/sh\n" });
    expect(await readImageKernel(notKernel)).toEqual({
      kind: "refused",
      problems: [
        `Cannot publish the image ${notKernel}: /boot/vmlinuz-${RELEASE}: Cannot read the kernel release: expected an x86 bzImage (at least 530 bytes for its setup header), got 10 bytes`,
      ],
    });
  });

  test("a file unsquashfs cannot read: unreadable, with unsquashfs's own words", async () => {
    const path = join(dir, "not-really.squashfs");
    await writeFile(path, `hsqs${"x".repeat(5000)}`);
    expect(await readImageKernel(path)).toEqual({ kind: "unreadable", problem: expect.stringContaining(`Cannot run \`unsquashfs -lls ${path}\`: exit status 1: FATAL ERROR: Can't find a valid SQUASHFS superblock`) });
  });
});

describe("checkSignedKernel", () => {
  test("the files a manifest signs, read out of the image again: nothing, then each difference by its key", async () => {
    const path = await newSquashfs(dir, DEBIAN);
    const found = await readImageKernel(path);
    if (found.kind !== "kernel") throw new Error("expected a kernel");
    const { kernel } = found;
    expect(await checkSignedKernel(path, kernel, "M")).toEqual([]);

    const rebuilt = await newSquashfs(dir, { ...DEBIAN, [`boot/vmlinuz-${RELEASE}`]: fakeBzImage({ text: `${RELEASE} (me@host) #2 SMP\u0000` }), [`boot/initrd.img-${RELEASE}`]: "short" });
    const problems = await checkSignedKernel(rebuilt, kernel, "M");
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(new RegExp(`^${rebuilt}: /boot/vmlinuz-${RELEASE} in it: expected sha512 ${kernel.vmlinuz.sha512} \\(kernel\\.vmlinuz\\.sha512 in M\\), got [0-9a-f]{128}$`));
    expect(problems[1]).toBe(`${rebuilt}: /boot/initrd.img-${RELEASE} in it: expected ${INITRD.length} bytes (kernel.initrd.size in M), got 5`);

    const elsewhere = { ...kernel, initrd: { ...kernel.initrd, path: "/boot/initrd.img" } };
    expect(await checkSignedKernel(path, elsewhere, "M")).toEqual([
      expect.stringMatching(new RegExp(`^${path}: Cannot read /boot/initrd.img \\(kernel\\.initrd\\.path in M\\) out of it: Cannot run .*no matches for /boot/initrd.img`)),
    ]);
  });
});
