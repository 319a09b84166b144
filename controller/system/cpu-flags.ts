// The CPU's feature flags as /proc/cpuinfo lists them. Pure, no I/O.

/** The words of the first "flags" line (every CPU of a machine lists the same); none when there is no such line. */
export function cpuFlagsIn(cpuinfo: string): ReadonlySet<string> {
  const line = /^flags\s*:(.*)$/m.exec(cpuinfo);
  return new Set((line?.[1] ?? "").split(/\s+/).filter((flag) => flag !== ""));
}
