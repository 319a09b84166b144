import { describe, expect, test } from "bun:test";
import { CUT_POINTS, cutMarker, cutPointsFor, KERNEL_SWITCH_CUT_POINTS } from "../../../controller/system/cut-points.ts";
import { FakeSystem } from "../../fake-system.ts";
import { memoryLogger } from "../../memory-log.ts";

/** A machine whose first sleep ends the test: the cut point stops there for good. */
class StopsAtSleep extends FakeSystem {
  override async sleep(): Promise<void> {
    throw new Error("stopped for good");
  }
}

describe("rd.controller.cut=", () => {
  test("a kernel switch's point stops there, and only there; an update's too", async () => {
    for (const point of ["grubenv-written", "kernel-entry-active-switched", "attempt-written"] as const) {
      const { log, sink } = memoryLogger();
      const cuts = cutPointsFor(new StopsAtSleep(), log, point);
      await cuts.reach(point === "attempt-written" ? "grubenv-written" : "attempt-written");
      await expect(cuts.reach(point)).rejects.toThrow("stopped for good");
      expect(sink.text()).toBe(`controller: WARNING: ${cutMarker(point)}`);
    }
  });

  test("an unknown name is a warning naming every point, and nothing stops", async () => {
    const { log, sink } = memoryLogger();
    const cuts = cutPointsFor(new StopsAtSleep(), log, "kernel-entry-nowhere");
    await cuts.reach("kernel-entry-pair-written");
    expect(sink.text()).toBe(`controller: WARNING: rd.controller.cut=kernel-entry-nowhere: not a cut point; they are ${[...CUT_POINTS, ...KERNEL_SWITCH_CUT_POINTS].join(", ")}`);
  });

  test("the kernel switch's points are not rows of the update's power-cut table", () => {
    expect(KERNEL_SWITCH_CUT_POINTS.filter((point) => CUT_POINTS.includes(point))).toEqual([]);
  });
});
