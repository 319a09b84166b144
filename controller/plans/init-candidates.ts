// Which programs may be the real init, most wanted first; boot/handoff.ts
// takes the first that is an executable file in the new root.

import type { Cmdline } from "../config/cmdline.ts";

/** What dracut itself falls back to. */
export const FALLBACK_INIT = "/sbin/init";

export interface InitCandidate {
  readonly path: string;
  /** where the path came from, for the report */
  readonly source: string;
}

/** Pure: the inits to try, most wanted first: real_init= on the cmdline, then config.d's boot.real_init, then /sbin/init. */
export function initCandidates(cmdline: Cmdline, configured: InitCandidate): InitCandidate[] {
  const all = [
    ...(cmdline.realInit === undefined ? [] : [{ path: cmdline.realInit, source: "cmdline real_init=" }]),
    configured,
    { path: FALLBACK_INIT, source: "fallback" },
  ];
  return all.filter((candidate, index) => all.findIndex((other) => other.path === candidate.path) === index);
}
