// Whether an ext2/3/4 filesystem needs e2fsck, read from its superblock the
// way `e2fsck -p` decides before it checks anything: a filesystem that was
// unmounted cleanly, has no errors recorded, no journal to replay, no orphan
// inodes to release and no check falling due is one e2fsck would pass as
// "clean" at once. Reading those fields costs one 1 KiB read; running e2fsck
// costs a process start (about 90 ms under TCG). Anything else, or anything
// this code does not recognise, is e2fsck's to judge.

/** The primary superblock: 1024 bytes at byte 1024 of the filesystem. */
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_BYTES = 1024;

const MAGIC = 0xef53;
/** s_state bits: 1 cleanly unmounted; 2 errors detected; 4 orphans being recovered */
const STATE_VALID = 0x1;
/** s_feature_incompat: the journal holds transactions not yet written home (a power cut while mounted read-write) */
const INCOMPAT_RECOVER = 0x4;
/** s_feature_ro_compat: the orphan file holds inodes to release */
const RO_COMPAT_ORPHAN_PRESENT = 0x10000;
/** s_feature_ro_compat: metadata carries crc32c checksums, the superblock's in its last 4 bytes */
const RO_COMPAT_METADATA_CSUM = 0x400;
const CHECKSUM_OFFSET = 0x3fc;

/** crc32c's table (Castagnoli, reflected), built on first use */
let crc32cTable: Uint32Array | undefined;

/** crc32c over `bytes` from `seed`, without the final inversion: the form ext4 stores (e2fsprogs ext2fs_crc32c_le). */
export function crc32cRaw(seed: number, bytes: Uint8Array): number {
  if (crc32cTable === undefined) {
    crc32cTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      crc32cTable[n] = c >>> 0;
    }
  }
  let crc = seed >>> 0;
  for (const byte of bytes) crc = (crc32cTable[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return crc >>> 0;
}

/**
 * Pure: undefined when `e2fsck -p` would find the filesystem clean without a
 * check, or why it must run. `superblock` is the 1024 bytes at SUPERBLOCK_OFFSET.
 */
export function whyCheckNeeded(superblock: Uint8Array): string | undefined {
  if (superblock.length < SUPERBLOCK_BYTES) return `the superblock is ${superblock.length} bytes long, expected ${SUPERBLOCK_BYTES}`;
  const view = new DataView(superblock.buffer, superblock.byteOffset, superblock.byteLength);
  const magic = view.getUint16(0x38, true);
  if (magic !== MAGIC) return `no ext2/3/4 magic number in the superblock: 0x${magic.toString(16)}, expected 0xef53`;
  if ((view.getUint32(0x64, true) & RO_COMPAT_METADATA_CSUM) !== 0) {
    const stored = view.getUint32(CHECKSUM_OFFSET, true);
    if (crc32cRaw(0xffffffff, superblock.subarray(0, CHECKSUM_OFFSET)) !== stored) return "its superblock checksum does not match";
  }
  const state = view.getUint16(0x3a, true);
  if (state !== STATE_VALID) return `its state is 0x${state.toString(16)}, not 0x1 (cleanly unmounted, no errors)`;
  if ((view.getUint32(0x60, true) & INCOMPAT_RECOVER) !== 0) return "its journal needs recovery";
  if ((view.getUint32(0x64, true) & RO_COMPAT_ORPHAN_PRESENT) !== 0 || view.getUint32(0xe8, true) !== 0) return "it has orphan inodes to release";
  if (view.getUint32(0x194, true) !== 0) return `it recorded ${view.getUint32(0x194, true)} errors`;
  const mounts = view.getUint16(0x34, true);
  const maxMounts = view.getInt16(0x36, true);
  if (maxMounts > 0 && mounts >= maxMounts) return `it has been mounted ${mounts} times, its maximum mount count is ${maxMounts}`;
  // a check interval needs a trustworthy clock to judge, which an initramfs may not have: e2fsck judges it
  if (view.getUint32(0x44, true) !== 0) return "it has a check interval set";
  return undefined;
}
