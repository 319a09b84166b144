// The CPU flags /proc/cpuinfo lists, which decide the chunk hashes an install checks.

import { describe, expect, test } from "bun:test";
import { cpuFlagsIn } from "../../../controller/system/cpu-flags.ts";

describe("cpuFlagsIn", () => {
  test("the first flags line's words, whatever the spacing", () => {
    const cpuinfo = [
      "processor\t: 0",
      "model name\t: AMD EPYC",
      "flags\t\t: fpu vme  sse2 sha_ni avx2",
      "bugs\t\t: sysret_ss_attrs",
      "",
      "processor\t: 1",
      "flags\t\t: fpu other",
    ].join("\n");
    expect([...cpuFlagsIn(cpuinfo)]).toEqual(["fpu", "vme", "sse2", "sha_ni", "avx2"]);
  });

  test("QEMU's Nehalem model has no SHA extensions; a cpuinfo without flags (another architecture) or an empty one gives none", () => {
    expect(cpuFlagsIn("flags\t\t: fpu sse4_2 popcnt hypervisor lahf_lm\n").has("sha_ni")).toBe(false);
    expect(cpuFlagsIn("processor\t: 0\nFeatures\t: fp asimd sha2\n").size).toBe(0);
    expect(cpuFlagsIn("").size).toBe(0);
  });
});
