// Bytes without a pattern (xorshift32 from a seed), the same on every run so a
// failure can be rerun: content-defined chunks are cut where such bytes say,
// as in a real image, and they do not compress.

export function noiseBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed | 0 || 1;
  for (let at = 0; at < length; at++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[at] = state & 0xff;
  }
  return bytes;
}
