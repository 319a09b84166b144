// The start of an x86 bzImage, made up: the setup header fields that
// kernel-release.ts reads and the version string at 0x200 + kernel_version.
// Enough for readBzImage, and as a kernel file in the test images publish reads.

/** What Debian's 6.1.0-57-amd64 says of itself (build/kernel/vmlinuz). */
export const DEBIAN_STRING = "6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-26)";

export function fakeBzImage(
  options: { setupSects?: number; pointer?: number; text?: string; flag?: number; magic?: string; loadflags?: number; length?: number; protocol?: number } = {},
): Uint8Array {
  const setupSects = options.setupSects ?? 27;
  const bytes = new Uint8Array(options.length ?? (setupSects + 1) * 512);
  const put16 = (offset: number, value: number) => {
    bytes[offset] = value & 0xff;
    bytes[offset + 1] = value >> 8;
  };
  bytes[0x1f1] = setupSects;
  put16(0x1fe, options.flag ?? 0xaa55);
  new TextEncoder().encodeInto(options.magic ?? "HdrS", bytes.subarray(0x202, 0x206));
  put16(0x206, options.protocol ?? 0x020f);
  const pointer = options.pointer ?? 0x3000;
  put16(0x20e, pointer);
  bytes[0x211] = options.loadflags ?? 0x01;
  const text = options.text ?? `${DEBIAN_STRING}\u0000`;
  if (pointer !== 0 && pointer + 0x200 < bytes.length) new TextEncoder().encodeInto(text, bytes.subarray(pointer + 0x200));
  return bytes;
}
