// Manifest format 2: the optional `kernel` section (issue 14). Format 1 stays
// exactly as it was: its tests are in manifest.test.ts, unchanged but for the
// message that now names both known formats.

import { describe, expect, test } from "bun:test";
import { INITRD_MAX_BYTES, KERNEL_MAX_BYTES, MANIFEST_FORMAT, MANIFEST_FORMAT_KERNEL, parseManifest } from "../../../controller/update/manifest.ts";

const SOURCE = "http://repo/channels/stable/manifest.json";
const HASH_A = "a".repeat(128);
const HASH_B = "b".repeat(128);
const HASH_C = "c".repeat(128);

function kernelSection(): Record<string, any> {
  return {
    release: "6.1.0-57-amd64",
    build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)",
    vmlinuz: { path: "/boot/vmlinuz-6.1.0-57-amd64", size: 8247232, sha512: HASH_B },
    initrd: { path: "/boot/initrd.img-6.1.0-57-amd64", size: 31457280, sha512: HASH_C },
  };
}

function input(format: number, kernel?: Record<string, any>): Record<string, any> {
  return {
    format,
    channel: "stable",
    version: "2.0",
    created: "2026-11-23T10:00:00.000Z",
    expires: "2026-12-23T10:00:00.000Z",
    image: { url: `images/${HASH_A}.squashfs`, size: 123456, sha512: HASH_A, format: "squashfs" },
    ...(kernel === undefined ? {} : { kernel }),
    config: { fleet: [], machines: [] },
  };
}

/** A message that starts with this literal text. */
function startsWith(text: string) {
  return expect.stringMatching(new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
}

function parse(value: unknown) {
  return parseManifest(new TextEncoder().encode(JSON.stringify(value)), SOURCE);
}

function problems(value: unknown): string[] {
  const parsed = parse(value);
  if (parsed.ok) throw new Error("expected a refused manifest");
  return parsed.problems.map((problem) => problem.slice(SOURCE.length + 2));
}

function kernelProblems(change: (kernel: Record<string, any>) => void): string[] {
  const kernel = kernelSection();
  change(kernel);
  return problems(input(MANIFEST_FORMAT_KERNEL, kernel));
}

describe("format 2: the kernel section", () => {
  test("the format numbers", () => {
    expect(MANIFEST_FORMAT).toBe(1);
    expect(MANIFEST_FORMAT_KERNEL).toBe(2);
  });

  test("a format-2 manifest with a kernel parses, every field kept", () => {
    const parsed = parse(input(2, kernelSection()));
    expect(parsed).toMatchObject({ ok: true });
    if (!parsed.ok) return;
    expect(parsed.manifest.format).toBe(2);
    expect(parsed.manifest.kernel).toEqual(kernelSection() as never);
  });

  test("the build is optional; unknown keys inside are dropped as everywhere", () => {
    const kernel = kernelSection();
    delete kernel["build"];
    kernel["compression"] = "zstd";
    kernel["vmlinuz"]["mode"] = "0644";
    const parsed = parse(input(2, kernel));
    if (!parsed.ok) throw new Error(parsed.problems.join("\n"));
    expect(parsed.manifest.kernel?.build).toBeUndefined();
    expect(Object.keys(parsed.manifest.kernel ?? {})).not.toContain("compression");
    expect(Object.keys(parsed.manifest.kernel?.vmlinuz ?? {})).not.toContain("mode");
  });

  test("a format-2 manifest without a kernel is valid: the image boots on the running kernel", () => {
    const parsed = parse(input(2));
    expect(parsed).toMatchObject({ ok: true });
    if (parsed.ok) expect(parsed.manifest.kernel).toBeUndefined();
  });

  test("format 1 is read exactly as before: a kernel key in it is an unknown key, dropped and never checked", () => {
    const good = parse(input(1, kernelSection()));
    expect(good).toMatchObject({ ok: true });
    if (good.ok) expect(good.manifest.kernel).toBeUndefined();
    // even a broken one: format 1 has no such key, so it cannot make a format-1 manifest invalid
    const broken = parse(input(1, { release: 42 }));
    expect(broken).toMatchObject({ ok: true });
    if (broken.ok) expect(Object.keys(broken.manifest)).not.toContain("kernel");
  });

  test("a kernel section that is not an object", () => {
    expect(problems(input(2, "vmlinuz" as never))).toEqual([
      'key kernel: expected an object with release, vmlinuz and initrd (each with path, size and sha512), and optionally build, got "vmlinuz"',
    ]);
    expect(problems({ ...input(2), kernel: null })).toEqual([
      "key kernel: expected an object with release, vmlinuz and initrd (each with path, size and sha512), and optionally build, got null",
    ]);
  });

  test("every missing key is named", () => {
    expect(problems(input(2, {}))).toEqual([
      'key kernel.release: expected a kernel release such as "6.1.0-28-amd64" (a letter or digit, then up to 63 letters, digits, ".", "_", "+", "~" or "-"), got nothing',
      "key kernel.vmlinuz: expected an object with path (the regular file inside the image, symlinks resolved), size and sha512 of the kernel, got nothing",
      "key kernel.initrd: expected an object with path (the regular file inside the image, symlinks resolved), size and sha512 of the initrd, got nothing",
    ]);
    expect(kernelProblems((kernel) => (kernel["initrd"] = {}))).toEqual([
      startsWith('key kernel.initrd.path: expected an absolute path inside the image such as "/boot/vmlinuz-6.1.0-28-amd64"'),
      "key kernel.initrd.size: expected the initrd's size in bytes: an integer from 1 to 2147483648, got nothing",
      "key kernel.initrd.sha512: expected 128 lowercase hex characters (a sha512), got nothing",
    ]);
  });

  const PATH_EXPECTED =
    'expected an absolute path inside the image such as "/boot/vmlinuz-6.1.0-28-amd64" (at most 255 characters; ' +
    'letters, digits, ".", "_", "+", "~", "-" and "/"; no "." or ".." parts, no "//", no trailing "/")';

  test("paths: absolute, normalised, inside the image", () => {
    for (const good of ["/vmlinuz", "/boot/vmlinuz-6.1.0-57-amd64", "/boot/efi/EFI/x+y~z_1.img", `/${"a".repeat(254)}`]) {
      expect(parse(input(2, { ...kernelSection(), vmlinuz: { ...kernelSection()["vmlinuz"], path: good } }))).toMatchObject({ ok: true });
    }
    for (const bad of ["boot/vmlinuz", "/", "/boot/", "//boot/vmlinuz", "/boot//vmlinuz", "/boot/../etc/shadow", "/boot/./vmlinuz", "/..", "/boot/vm linuz", "/boot/vmlinuz\n", "/boot/%2e%2e", "/boot\\vmlinuz", `/${"a".repeat(255)}`, ""]) {
      expect(kernelProblems((kernel) => (kernel["vmlinuz"]["path"] = bad))).toEqual([startsWith(`key kernel.vmlinuz.path: ${PATH_EXPECTED}, got "`)]);
    }
    expect(kernelProblems((kernel) => (kernel["vmlinuz"]["path"] = 7))).toEqual([`key kernel.vmlinuz.path: ${PATH_EXPECTED}, got 7`]);
  });

  test("the kernel and the initrd are two files", () => {
    expect(kernelProblems((kernel) => (kernel["initrd"]["path"] = kernel["vmlinuz"]["path"]))).toEqual([
      "key kernel.initrd.path: expected a file other than the kernel's (/boot/vmlinuz-6.1.0-57-amd64), got \"/boot/vmlinuz-6.1.0-57-amd64\"",
    ]);
  });

  test("sizes: at least 1 byte, at most the caps", () => {
    expect(kernelProblems((kernel) => (kernel["vmlinuz"]["size"] = 0))).toEqual([
      `key kernel.vmlinuz.size: expected the kernel's size in bytes: an integer from 1 to ${KERNEL_MAX_BYTES}, got 0`,
    ]);
    expect(kernelProblems((kernel) => (kernel["vmlinuz"]["size"] = KERNEL_MAX_BYTES + 1))).toHaveLength(1);
    expect(kernelProblems((kernel) => (kernel["initrd"]["size"] = INITRD_MAX_BYTES + 1))).toEqual([
      `key kernel.initrd.size: expected the initrd's size in bytes: an integer from 1 to ${INITRD_MAX_BYTES}, got ${INITRD_MAX_BYTES + 1}`,
    ]);
    expect(kernelProblems((kernel) => (kernel["initrd"]["size"] = 1.5))).toHaveLength(1);
    expect(kernelProblems((kernel) => (kernel["initrd"]["size"] = "10"))).toEqual([
      `key kernel.initrd.size: expected the initrd's size in bytes: an integer from 1 to ${INITRD_MAX_BYTES}, got "10"`,
    ]);
    expect(parse(input(2, { ...kernelSection(), vmlinuz: { ...kernelSection()["vmlinuz"], size: KERNEL_MAX_BYTES } }))).toMatchObject({ ok: true });
  });

  test("hashes: 128 lowercase hex characters", () => {
    for (const bad of ["A".repeat(128), "a".repeat(127), "a".repeat(129), "g".repeat(128)]) {
      expect(kernelProblems((kernel) => (kernel["initrd"]["sha512"] = bad))).toEqual([
        startsWith("key kernel.initrd.sha512: expected 128 lowercase hex characters (a sha512), got "),
      ]);
    }
  });

  test("release: what uname -r and /lib/modules name; build: printable ASCII", () => {
    for (const good of ["6.1.0-57-amd64", "6.12.1+deb13-cloud-amd64", "5.10.0-rc1~bpo11", "4.19.0_custom", "a".repeat(64)]) {
      expect(parse(input(2, { ...kernelSection(), release: good }))).toMatchObject({ ok: true });
    }
    for (const bad of ["", "-6.1", ".6.1", "6.1 amd64", "6.1/../x", "a".repeat(65), "6.1\n"]) {
      expect(kernelProblems((kernel) => (kernel["release"] = bad))).toEqual([startsWith('key kernel.release: expected a kernel release such as "6.1.0-28-amd64"')]);
    }
    for (const bad of ["", "#1\u0000", "é", "x".repeat(257)]) {
      expect(kernelProblems((kernel) => (kernel["build"] = bad))).toEqual([startsWith('key kernel.build: expected the kernel\'s build string such as "#1 SMP')]);
    }
  });

  test("problems in the kernel section come with those elsewhere, each naming its key", () => {
    const bad = input(2, { ...kernelSection(), release: "x y" });
    bad["version"] = "v2";
    expect(problems(bad)).toEqual([
      startsWith("key version: expected a version"),
      startsWith("key kernel.release: expected a kernel release"),
    ]);
  });
});
