// publish and verify with images that carry their kernel (issue 14): format 2
// with the signed kernel section, format 1 as before without one, refusals
// that write nothing; on real squashfs images made with mksquashfs.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cp, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MANIFEST_FORMAT, MANIFEST_FORMAT_KERNEL, parseManifest } from "../../../controller/update/manifest.ts";
import { keygen, publish, type PublishOptions, verifyRepo } from "../../../controller/update/repository.ts";
import { sha512Hex } from "../../../controller/update/signing.ts";
import { fakeBzImage } from "../../bzimage.ts";
import { debianImage, type ImageSpec, newSquashfs, without } from "../../squashfs-image.ts";

const NOW = new Date("2026-11-23T10:00:00.000Z");
const RELEASE = "6.1.0-57-amd64";
const KERNEL = fakeBzImage();
const INITRD = new TextEncoder().encode("an initrd with this project's dracut module\n".repeat(100));
const DEBIAN = debianImage(RELEASE, KERNEL, INITRD);

let dir: string;
let publicKey: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "repo-kernel-test-"));
  publicKey = await keygen(join(dir, "signing"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function options(repo: string, imageFile: string): PublishOptions {
  return { repo, channel: "stable", version: "1.0", image: imageFile, fleetConfig: [], machineConfig: [], expiresInDays: 30, secretKeyFile: join(dir, "signing.secret"), now: NOW };
}

describe("publish an image with its kernel", () => {
  test("format 2 with the kernel section: the files Debian's links resolve to, sizes and sha512s right; it parses and verifies", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    const result = await publish(options(repo, await newSquashfs(dir, DEBIAN)));
    if (!result.ok) throw new Error(result.problems.join("\n"));
    expect(result.warnings).toEqual([]);
    const bytes = await readFile(result.manifestFile);
    const parsed = parseManifest(bytes, result.manifestFile);
    if (!parsed.ok) throw new Error(parsed.problems.join("\n"));
    expect(parsed.manifest.format).toBe(MANIFEST_FORMAT_KERNEL);
    expect(parsed.manifest.kernel).toEqual({
      release: RELEASE,
      build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)",
      vmlinuz: { path: `/boot/vmlinuz-${RELEASE}`, size: KERNEL.length, sha512: sha512Hex(KERNEL) },
      initrd: { path: `/boot/initrd.img-${RELEASE}`, size: INITRD.length, sha512: sha512Hex(INITRD) },
    });
    expect(result.notes).toEqual([
      `Signed the image's kernel ${RELEASE} (#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)): /boot/vmlinuz-${RELEASE}, ${KERNEL.length} bytes, ` +
        `and its initrd /boot/initrd.img-${RELEASE}, ${INITRD.length} bytes; manifest format 2 (controllers older than it refuse it and keep booting what they have)`,
    ]);
    const check = await verifyRepo({ repo, channel: "stable", trustedKeys: [publicKey], now: NOW });
    expect(check.problems).toEqual([]);
    expect(check.summary).toEndWith("; checked 2 files and the kernel and initrd in the image");
  });

  test("no kernel: format 1 exactly as before, no kernel key; no /lib/modules at all is a loud warning naming the image", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    const bare = await newSquashfs(dir, { "etc/hostname": "lab\n" });
    const result = await publish(options(repo, bare));
    if (!result.ok) throw new Error(result.problems.join("\n"));
    expect(result.manifest.format).toBe(MANIFEST_FORMAT);
    expect(new TextDecoder().decode(await readFile(result.manifestFile))).not.toContain('"kernel"');
    expect(result.warnings).toEqual([
      `WARNING: ${bare}: the image has no /boot/vmlinuz, /vmlinuz or /boot/vmlinuz-KVER and no /lib/modules at all: ` +
        "it boots on whatever kernel the machine runs; its modules will be missing, so every module the system asks for after the handoff fails to load. " +
        "Put the kernel, its initrd and /lib/modules/RELEASE into the image (docs/issue-14/kernel-convention.md)",
    ]);
    expect(result.notes).toEqual(["No kernel signed: the image has no /boot/vmlinuz, /vmlinuz or /boot/vmlinuz-KVER; manifest format 1, as before: it boots on the kernel each machine runs"]);
    const check = await verifyRepo({ repo, channel: "stable", trustedKeys: [publicKey], now: NOW });
    expect(check).toMatchObject({ problems: [], summary: expect.stringMatching(/; checked 2 files$/) });

    const withModules = await publish(options(await mkdtemp(join(dir, "repo-")), await newSquashfs(dir, { [`lib/modules/${RELEASE}/modules.dep`]: "" })));
    expect(withModules).toMatchObject({
      ok: true,
      warnings: [],
      manifest: { format: MANIFEST_FORMAT },
      notes: [`No kernel signed: the image has no /boot/vmlinuz, /vmlinuz or /boot/vmlinuz-KVER; manifest format 1, as before: it boots on the kernel each machine runs, which must be one it has modules for: ${RELEASE}`],
    });
  });

  test("a file unsquashfs cannot read: format 1 with a warning that nothing in it was checked", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    const fake = join(dir, "fake.squashfs");
    await Bun.write(fake, `hsqs${"x".repeat(5000)}`);
    const result = await publish(options(repo, fake));
    expect(result).toMatchObject({ ok: true, manifest: { format: MANIFEST_FORMAT } });
    expect(result.warnings).toEqual([expect.stringMatching(new RegExp(`^WARNING: Cannot look inside the image ${fake}, so its kernel was not checked or signed: Cannot run .*Can't find a valid SQUASHFS superblock`))]);
  });

  test("refused, with every problem and nothing written: modules of another release, no initrd, two kernels and no link", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    const refusedBy = async (spec: ImageSpec) => {
      const path = await newSquashfs(dir, spec);
      const result = await publish(options(repo, path));
      if (result.ok) throw new Error("expected a refused publish");
      return { path, problems: result.problems };
    };
    const otherModules = await refusedBy({
      ...without(DEBIAN, `usr/lib/modules/${RELEASE}/modules.dep`),
      "usr/lib/modules/6.1.0-56-amd64/modules.dep": "",
    });
    expect(otherModules.problems).toEqual([
      `Cannot publish the image ${otherModules.path}: the kernel is ${RELEASE} but the image has no /lib/modules/${RELEASE} (its modules are for 6.1.0-56-amd64): the kernel and the modules disagree`,
    ]);
    const noInitrd = await refusedBy({ "boot/vmlinuz": KERNEL, [`lib/modules/${RELEASE}/modules.dep`]: "" });
    expect(noInitrd.problems).toEqual([
      `Cannot publish the image ${noInitrd.path}: the image has a kernel (/boot/vmlinuz) but no initrd (/boot/initrd.img, /initrd.img or /boot/initrd.img-KVER): ` +
        "expected one built with this project's dracut module, which holds the controller",
    ]);
    const twoKernels = await refusedBy({
      [`boot/vmlinuz-${RELEASE}`]: KERNEL,
      "boot/vmlinuz-6.1.0-56-amd64": KERNEL,
      [`boot/initrd.img-${RELEASE}`]: INITRD,
      [`lib/modules/${RELEASE}/modules.dep`]: "",
    });
    expect(twoKernels.problems).toEqual([
      `Cannot publish the image ${twoKernels.path}: the image has 2 kernels (/boot/vmlinuz-6.1.0-56-amd64, /boot/vmlinuz-${RELEASE}) and no /boot/vmlinuz or /vmlinuz link that says which boots`,
    ]);
    expect(await readdir(repo)).toEqual([]);
  });

  test("refused together with the other problems of the publish", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    const path = await newSquashfs(dir, { "boot/vmlinuz": KERNEL, [`lib/modules/${RELEASE}/modules.dep`]: "" });
    const result = await publish({ ...options(repo, path), fleetConfig: [join(dir, "none.toml")] });
    expect(result).toMatchObject({
      ok: false,
      problems: [expect.stringContaining(`Cannot publish the image ${path}: the image has a kernel (/boot/vmlinuz) but no initrd`), `Cannot publish ${join(dir, "none.toml")} in the fleet config: there is no such file`],
    });
    expect(await readdir(repo)).toEqual([]);
  });
});

describe("verify the kernel section against the image", () => {
  test("an image rebuilt in place with another kernel: the image's sha512 and the kernel's, each by its key", async () => {
    const repo = await mkdtemp(join(dir, "repo-"));
    const result = await publish(options(repo, await newSquashfs(dir, DEBIAN)));
    if (!result.ok) throw new Error(result.problems.join("\n"));
    const stored = join(repo, result.manifest.image.url);
    // same names, same size, another build of the kernel
    const swapped = await newSquashfs(dir, { ...DEBIAN, [`boot/vmlinuz-${RELEASE}`]: fakeBzImage({ text: `${RELEASE} (me@host) #2 SMP\u0000` }) });
    await cp(swapped, stored);
    const check = await verifyRepo({ repo, channel: "stable", trustedKeys: [publicKey], now: NOW });
    const manifestFile = result.manifestFile;
    expect(check.problems).toEqual([
      expect.stringMatching(new RegExp(`^${stored}: expected (\\d+ bytes \\(image\\.size|sha512 [0-9a-f]{128} \\(image\\.sha512) in ${manifestFile}\\), got `)),
      expect.stringMatching(
        new RegExp(`^${stored}: /boot/vmlinuz-${RELEASE} in it: expected sha512 ${sha512Hex(KERNEL)} \\(kernel\\.vmlinuz\\.sha512 in ${manifestFile}\\), got [0-9a-f]{128}$`),
      ),
    ]);
  });
});
