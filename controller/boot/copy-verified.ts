// A file copied out of a slot's image while its size and sha512 are checked
// against the slot's signed record: what is used afterwards (a bootloader
// entry, a kexec) is exactly what was checked, with no second read to race.

import { createHash } from "node:crypto";
import type { System } from "../system/system.ts";

export interface VerifiedCopy {
  readonly from: string;
  readonly to: string;
  /** what the signed record says the file is */
  readonly size: number;
  readonly sha512: string;
}

/** Copies `copy.from` to `copy.to`; throws, saying `consequence`, when it is not the signed file. */
export async function copyVerified(system: System, copy: VerifiedCopy, consequence: string): Promise<void> {
  const hash = createHash("sha512");
  let bytes = 0;
  const writer = await system.openForWrite(copy.to, 0);
  try {
    for await (const chunk of system.readChunks(copy.from)) {
      bytes += chunk.length;
      if (bytes > copy.size) break;
      hash.update(chunk);
      await writer.write(chunk);
    }
  } finally {
    await writer.close();
  }
  const why = `the slot's image is not what its signed record says; ${consequence}`;
  if (bytes !== copy.size) {
    throw new Error(`Cannot copy ${copy.from} to ${copy.to}: it has ${bytes > copy.size ? `more than ${copy.size}` : bytes} bytes, expected ${copy.size} (${why})`);
  }
  const sha512 = hash.digest("hex");
  if (sha512 !== copy.sha512) throw new Error(`Cannot copy ${copy.from} to ${copy.to}: its sha512 is ${sha512}, expected ${copy.sha512} (${why})`);
}
