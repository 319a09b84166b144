// A machine's place in a rollout (plans/rollout.ts decides by it): here, in
// the layer that hashes, because plans/ imports no crypto.

import { createHash } from "node:crypto";

/** 2^53: a place keeps 53 bits of the hash, as many as a double holds exactly. */
const PLACE_STEPS = 2 ** 53;

/** Pure: this machine's place for this version, in [0, 100); uniform over machine-ids. */
export function rolloutPlace(machineId: string, version: string): number {
  const digest = createHash("sha256").update(`${machineId}\n${version}`).digest();
  // the first 8 bytes as an integer, cut to 53 bits so the scaling is exact
  const steps = Number(digest.readBigUInt64BE(0) >> 11n);
  return (steps / PLACE_STEPS) * 100;
}
