import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  BZIMAGE_HEADER_BYTES,
  compareKernels,
  parseKernelVersionString,
  readBzImage,
  runningKernel,
  runningKernelFromProcVersion,
} from "../../../controller/update/kernel-release.ts";
import { DEBIAN_STRING, fakeBzImage } from "../../bzimage.ts";

/** The Debian kernel scripts/setup downloads into build/kernel: a real bzImage. */
const REAL_KERNEL = join(import.meta.dir, "../../../build/kernel/vmlinuz");

describe("readBzImage", () => {
  test.skipIf(!existsSync(REAL_KERNEL))("the real Debian kernel from build/kernel: release, build and protocol, from the whole file and from its first bytes", () => {
    const whole = new Uint8Array(readFileSync(REAL_KERNEL));
    const info = readBzImage(whole);
    expect(info).toEqual({
      ok: true,
      identity: { release: "6.1.0-57-amd64", build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)" },
      versionString: DEBIAN_STRING,
      protocol: "2.15",
    });
    expect(readBzImage(whole.subarray(0, BZIMAGE_HEADER_BYTES))).toEqual(info);
    // cut right after the string's NUL: still enough
    const end = whole.indexOf(0, 0x42c0 + 0x200);
    expect(readBzImage(whole.subarray(0, end + 1))).toEqual(info);
    // cut inside the string: no NUL
    expect(readBzImage(whole.subarray(0, 0x42c0 + 0x200 + 10))).toMatchObject({ ok: false, problem: expect.stringContaining("has no NUL") });
    // cut before the string
    expect(readBzImage(whole.subarray(0, 0x42c0 + 0x200))).toEqual({
      ok: false,
      problem: `Cannot read the kernel release: kernel_version points to 0x44c0, got only 17600 bytes (read at least ${BZIMAGE_HEADER_BYTES})`,
    });
  });

  test("a synthetic header gives the same answer", () => {
    expect(readBzImage(fakeBzImage())).toMatchObject({ ok: true, identity: { release: "6.1.0-57-amd64", build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)" }, protocol: "2.15" });
  });

  test("short inputs", () => {
    for (const length of [0, 1, 0x200, 0x211]) {
      expect(readBzImage(new Uint8Array(length))).toEqual({
        ok: false,
        problem: `Cannot read the kernel release: expected an x86 bzImage (at least 530 bytes for its setup header), got ${length} bytes`,
      });
    }
  });

  test("not a bzImage at all: zeros, an ELF vmlinux, a gzip, text", () => {
    expect(readBzImage(new Uint8Array(4096))).toEqual({
      ok: false,
      problem: 'Cannot read the kernel release: expected an x86 bzImage (boot flag 0xaa55 at 0x1fe and "HdrS" at 0x202), got 0x0000 and "\\u0000\\u0000\\u0000\\u0000"',
    });
    const elf = new Uint8Array(4096);
    elf.set([0x7f, 0x45, 0x4c, 0x46]);
    expect(readBzImage(elf)).toMatchObject({ ok: false, problem: expect.stringContaining("expected an x86 bzImage") });
    expect(readBzImage(new TextEncoder().encode("#!/bin/sh\n".repeat(100)))).toMatchObject({ ok: false, problem: expect.stringContaining('got 0x2123 and "in/s"') });
    expect(readBzImage(fakeBzImage({ flag: 0x55aa }))).toMatchObject({ ok: false, problem: expect.stringContaining("got 0x55aa and \"HdrS\"") });
    expect(readBzImage(fakeBzImage({ magic: "HdrT" }))).toMatchObject({ ok: false, problem: expect.stringContaining('got 0xaa55 and "HdrT"') });
  });

  test("a zImage is refused", () => {
    expect(readBzImage(fakeBzImage({ loadflags: 0x80, protocol: 0x0204 }))).toEqual({
      ok: false,
      problem: "Cannot read the kernel release: expected a bzImage (loadflags bit LOADED_HIGH set), got a zImage (boot protocol 2.04)",
    });
  });

  test("no kernel_version: a zero pointer, or setup_sects below 15 (the protocol says the field is then not valid)", () => {
    expect(readBzImage(fakeBzImage({ pointer: 0 }))).toEqual({
      ok: false,
      problem: "Cannot read the kernel release: the bzImage's header has no kernel_version string (setup_sects 27, kernel_version 0x0)",
    });
    expect(readBzImage(fakeBzImage({ setupSects: 14, pointer: 0x100 }))).toMatchObject({ ok: false, problem: expect.stringContaining("setup_sects 14") });
    expect(readBzImage(fakeBzImage({ setupSects: 15, pointer: 0x100 }))).toMatchObject({ ok: true });
  });

  test("a pointer past the setup code, or to a corrupt string", () => {
    expect(readBzImage(fakeBzImage({ setupSects: 15, pointer: 0x1e00, length: 0x3000 }))).toEqual({
      ok: false,
      problem: "Cannot read the kernel release: kernel_version points to 0x2000, past the end of the setup code at 0x2000",
    });
    expect(readBzImage(fakeBzImage({ text: `6.1\u0007bell\u0000` }))).toMatchObject({ ok: false, problem: expect.stringContaining("is not printable ASCII") });
    expect(readBzImage(fakeBzImage({ text: `${"x".repeat(600)}\u0000` }))).toMatchObject({ ok: false, problem: expect.stringContaining("has no NUL within 512 bytes") });
    expect(readBzImage(fakeBzImage({ text: "\u0000" }))).toMatchObject({ ok: false, problem: expect.stringContaining('got ""') });
    expect(readBzImage(fakeBzImage({ text: " 6.1 (x@y) #1\u0000" }))).toMatchObject({ ok: false, problem: expect.stringContaining("to start with a kernel release") });
  });
});

describe("parseKernelVersionString", () => {
  test("release and build; a release alone when the rest is not the usual form", () => {
    expect(parseKernelVersionString(DEBIAN_STRING)).toEqual({ release: "6.1.0-57-amd64", build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)" });
    expect(parseKernelVersionString("6.18.44 (builder@sandboxing) #1 SMP PREEMPT_DYNAMIC @0")).toEqual({ release: "6.18.44", build: "#1 SMP PREEMPT_DYNAMIC @0" });
    expect(parseKernelVersionString("6.8.0")).toEqual({ release: "6.8.0" });
    expect(parseKernelVersionString("6.8.0 (a(b)@c) #1")).toEqual({ release: "6.8.0" });
    expect(parseKernelVersionString("")).toBeUndefined();
  });
});

describe("the running kernel", () => {
  test("from /proc/sys/kernel/osrelease and version", () => {
    expect(runningKernel("6.1.0-57-amd64\n", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)\n")).toEqual({
      release: "6.1.0-57-amd64",
      build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)",
    });
    expect(runningKernel("6.1.0-57-amd64\n")).toEqual({ release: "6.1.0-57-amd64" });
    expect(runningKernel("6.1.0-57-amd64", "  \n")).toEqual({ release: "6.1.0-57-amd64" });
    expect(runningKernel("\n")).toEqual({ problem: expect.stringContaining('Cannot read the running kernel\'s release: expected a kernel release such as "6.1.0-28-amd64"') });
  });

  test("from /proc/version: the compiler's own parentheses do not confuse the build", () => {
    expect(
      runningKernelFromProcVersion(
        "Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)\n",
      ),
    ).toEqual({ release: "6.1.0-57-amd64", build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)" });
    expect(runningKernelFromProcVersion("Linux version 6.8.0 (x@y) (cc)\n")).toEqual({ release: "6.8.0" });
    expect(runningKernelFromProcVersion("BSD 14")).toEqual({ problem: expect.stringContaining("Cannot read the running kernel from /proc/version") });
  });
});

describe("compareKernels", () => {
  const k1 = { release: "6.1.0-57-amd64", build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)" };
  test("same release and build", () => {
    expect(compareKernels(k1, k1)).toEqual({ same: true, why: `the running kernel is the slot's: 6.1.0-57-amd64 (${k1.build}), same release and build` });
  });
  test("another release", () => {
    expect(compareKernels(k1, { release: "6.1.0-58-amd64" })).toEqual({ same: false, why: `the running kernel is 6.1.0-57-amd64 (${k1.build}), the slot's is 6.1.0-58-amd64` });
  });
  test("one release, two builds: another kernel", () => {
    expect(compareKernels(k1, { ...k1, build: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.193-1 (2026-12-01)" })).toMatchObject({ same: false, why: expect.stringContaining("of different builds") });
  });
  test("a build unknown on either side: the release decides, and the reason says so", () => {
    expect(compareKernels({ release: k1.release }, k1)).toMatchObject({ same: true, why: expect.stringContaining("the build of one of them is not known") });
    expect(compareKernels(k1, { release: k1.release })).toMatchObject({ same: true });
  });
});
