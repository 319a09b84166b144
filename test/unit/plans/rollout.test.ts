import { expect, test } from "bun:test";
import { decideRollout, describeShare } from "../../../controller/plans/rollout.ts";
import { rolloutPlace } from "../../../controller/update/rollout-place.ts";
import { machineIdFrom } from "../../../controller/plans/machine-id.ts";

/** n machine-ids, made as a first boot makes them, from deterministic bytes. */
function machineIds(n: number): string[] {
  return Array.from({ length: n }, (_, index) => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setUint32(0, index * 2654435761);
    new DataView(bytes.buffer).setUint32(8, index);
    return machineIdFrom(bytes);
  });
}

const ID = "0123456789abcdef0123456789abcdef";

test("a machine's place is stable: the same id and version always give the same place", () => {
  expect(rolloutPlace(ID, "2.0")).toBe(rolloutPlace(ID, "2.0"));
  expect(rolloutPlace(ID, "2.0")).toBeGreaterThanOrEqual(0);
  expect(rolloutPlace(ID, "2.0")).toBeLessThan(100);
});

test("each version draws a new order: the same machines are not always first", () => {
  const ids = machineIds(200);
  const first = (version: string) => new Set(ids.filter((id) => rolloutPlace(id, version) < 10));
  const a = first("2.0");
  const b = first("2.1");
  const both = [...a].filter((id) => b.has(id)).length;
  expect(both).toBeLessThan(Math.min(a.size, b.size));
});

test("raising the percentage only adds machines", () => {
  const ids = machineIds(2000);
  let before = new Set<string>();
  for (const percent of [0, 0.5, 1, 5, 10, 25, 25.5, 50, 90, 99.9, 100]) {
    const placed = new Set(ids.filter((id) => decideRollout({ version: "2.0", percent, machineId: id }).placed));
    for (const id of before) expect(placed.has(id)).toBe(true);
    expect(placed.size).toBeGreaterThanOrEqual(before.size);
    before = placed;
  }
  expect(before.size).toBe(ids.length);
});

test("places are uniform over many ids: each tenth holds about a tenth of 20000 machines", () => {
  const ids = machineIds(20000);
  const tenths = new Array<number>(10).fill(0);
  for (const id of ids) {
    const tenth = Math.floor(rolloutPlace(id, "3.1.4") / 10);
    tenths[tenth] = (tenths[tenth] ?? 0) + 1;
  }
  // 2000 expected in each; 4.5 standard deviations (about 42 each) is far from chance
  for (const count of tenths) expect(Math.abs(count - 2000)).toBeLessThan(190);
  // a rollout at 25 % reaches about a quarter
  const placed = ids.filter((id) => decideRollout({ version: "3.1.4", percent: 25, machineId: id }).placed).length;
  expect(Math.abs(placed - 5000)).toBeLessThan(300);
});

test("0 % reaches no machine, 100 % every machine, with or without a machine-id", () => {
  for (const id of machineIds(500)) {
    expect(decideRollout({ version: "2.0", percent: 0, machineId: id }).placed).toBe(false);
    expect(decideRollout({ version: "2.0", percent: 100, machineId: id }).placed).toBe(true);
  }
  expect(decideRollout({ version: "2.0", percent: 100, machineId: undefined })).toEqual({ placed: true });
});

test("the decision names the share and the machine's place", () => {
  const place = rolloutPlace(ID, "2.0");
  const outside = decideRollout({ version: "2.0", percent: place, machineId: ID });
  expect(outside).toEqual({
    placed: false,
    place,
    reason: `version 2.0 is rolled out to ${describeShare(place)} % of machines; this machine's place is ${describeShare(place)}: booting the local system`,
  });
  const inside = decideRollout({ version: "2.0", percent: place + 0.01, machineId: ID });
  expect(inside.placed).toBe(true);
  expect(inside.reason).toContain("it is in");
});

test("a machine without a machine-id waits for 100 %, and says why", () => {
  const decided = decideRollout({ version: "2.0", percent: 99, machineId: undefined, noIdWhy: "BOOTEXT/machine-id has none yet" });
  expect(decided).toEqual({
    placed: false,
    reason: "version 2.0 is rolled out to 99 % of machines; this machine has no machine-id to place itself by (BOOTEXT/machine-id has none yet), so it waits for 100 %: booting the local system",
  });
});

test("shares and places are shown rounded down: a place shown below a share is below it", () => {
  expect(describeShare(24.999)).toBe("24.99");
  expect(describeShare(61.3)).toBe("61.3");
  expect(describeShare(0)).toBe("0");
});
