import { describe, expect, test } from "bun:test";
import { parseCmdline } from "../../../controller/config/cmdline.ts";
import { type FoundUpdate, type HeddlePlan, planHeddle, questionFor, readAnswer } from "../../../controller/plans/heddle-choice.ts";

function found(name: string, overrides: Partial<FoundUpdate> = {}): FoundUpdate {
  return { name, hasBoot: true, hasKernel: true, hasInitrd: true, hasCmdline: false, hasSums: true, hasSignature: true, ...overrides };
}

const flags = (line: string) => parseCmdline(line).heddle;

describe("planHeddle", () => {
  const updates = [found("update2"), found("update10"), found("update11", { hasBoot: false })];

  test("no flag: the last update by natural sort that has BOOT; those without are noted", () => {
    const { plan, notes } = planHeddle(flags(""), updates);
    expect(plan).toEqual({ kind: "kexec", update: "update10", reason: "update10 is the last update by natural sort with a BOOT file" });
    expect(notes).toEqual(["update11 has no BOOT file (its copy is not finished?): skipped".replace(/^/, "update ")]);
  });

  test("no flag and nothing with BOOT, or nothing at all: the installed system", () => {
    expect(planHeddle(flags(""), [found("a", { hasBoot: false })]).plan).toEqual({ kind: "installed", reason: "none of the 1 updates has a BOOT file: booting the installed system" });
    expect(planHeddle(flags(""), []).plan).toEqual({ kind: "installed", reason: "no updates: booting the installed system" });
  });

  test("the kexec marker wins over every flag: never a second kexec", () => {
    for (const line of ["rd.controller.kexec=update10", "rd.controller.kexec=update10 heddle_update=update2", "rd.controller.kexec=x heddle_update=/"]) {
      const { plan } = planHeddle(flags(line), updates);
      expect(plan.kind).toBe("installed");
      expect(plan.reason).toStartWith("booted by kexec from update ");
    }
  });

  test("heddle_boot=dist: the installed system; a heddle_update beside it is noted", () => {
    expect(planHeddle(flags("heddle_boot=dist"), updates)).toEqual({
      plan: { kind: "installed", reason: "heddle_boot=dist: booting the installed system, updates ignored" },
      notes: [],
    });
    expect(planHeddle(flags("heddle_boot=dist heddle_update=update2"), updates).notes).toEqual(["heddle_boot=dist: heddle_update=update2 is ignored"]);
  });

  test("heddle_update=NAME: that one, even when it is not the last", () => {
    expect(planHeddle(flags("heddle_update=update2"), updates).plan).toEqual({ kind: "kexec", update: "update2", reason: "heddle_update=update2" });
  });

  test("heddle_update=NAME without BOOT: ask, or with heddle_fallback=1 the installed system without asking", () => {
    expect(planHeddle(flags("heddle_update=update11"), updates).plan).toEqual({
      kind: "ask-incomplete",
      update: "update11",
      reason: "heddle_update=update11: it has no BOOT file, its copy may be incomplete",
    });
    expect(planHeddle(flags("heddle_update=update11 heddle_fallback=1"), updates).plan).toEqual({
      kind: "installed",
      reason: "heddle_update=update11: it has no BOOT file, its copy may be incomplete; heddle_fallback=1: booting the installed system",
    });
  });

  test("heddle_update=NAME that does not exist: ask (press Enter), or with heddle_fallback the installed system", () => {
    expect(planHeddle(flags("heddle_update=nope"), updates).plan).toEqual({ kind: "ask-missing", update: "nope", reason: "heddle_update=nope: there is no such update" });
    expect(planHeddle(flags("heddle_update=nope heddle_fallback"), updates).plan.kind).toBe("installed");
  });

  test("heddle_update=/: choose on the console, unless there is nothing to choose", () => {
    expect(planHeddle(flags("heddle_update=/"), updates).plan).toEqual({ kind: "choose", reason: "heddle_update=/: asking which of 3 updates to boot" });
    expect(planHeddle(flags("heddle_update=/"), []).plan.kind).toBe("installed");
  });

  test("heddle_fallback without heddle_update=NAME does nothing, and says so", () => {
    expect(planHeddle(flags("heddle_fallback=1"), updates).notes).toContain("heddle_fallback only matters with heddle_update=NAME: ignored");
    expect(planHeddle(flags("heddle_fallback=1 heddle_update=/"), updates).notes).toContain("heddle_fallback only matters with heddle_update=NAME: ignored");
  });

  test("bad flag values are warnings and count as absent: the default plan", () => {
    for (const line of ["heddle_update=../etc", "heddle_update=", "heddle_update", "heddle_update=.hidden", "heddle_boot=disk", "heddle_boot=updates/x", "heddle_fallback=maybe"]) {
      const parsed = parseCmdline(line);
      expect(parsed.warnings).toHaveLength(1);
      expect(planHeddle(parsed.heddle, updates).plan).toMatchObject({ kind: "kexec", update: "update10" });
    }
  });

  test("rd.controller.kexec takes an update name only", () => {
    expect(parseCmdline("rd.controller.kexec=update10").heddle).toEqual({ fallback: false, kexecFrom: "update10" });
    expect(parseCmdline("rd.controller.kexec=update10").warnings).toEqual([]);
    for (const line of ["rd.controller.kexec", "rd.controller.kexec=", "rd.controller.kexec=a/b", "rd.controller.kexec=-x"]) {
      const parsed = parseCmdline(line);
      expect(parsed.heddle.kexecFrom).toBeUndefined();
      expect(parsed.warnings).toEqual([expect.stringContaining("expected the name of the update that was kexec'd; ignoring it")]);
    }
  });
});

describe("questions and answers", () => {
  const updates = [
    found("update10", { version: "2.1" }),
    found("update2", { hasSignature: false }),
    found("partial", { hasBoot: false, version: "2.2" }),
    found("forged", { hasBoot: true }),
  ];
  const incomplete: HeddlePlan = { kind: "ask-incomplete", update: "partial", reason: "heddle_update=partial: no BOOT" };
  const missing: HeddlePlan = { kind: "ask-missing", update: "nope", reason: "heddle_update=nope: no such update" };
  const choose: HeddlePlan = { kind: "choose", reason: "heddle_update=/" };

  test("the list is in natural order, with BOOT and signature for each, and the deadline", () => {
    expect(questionFor(choose, updates, 120)).toBe(
      [
        "Updates, in natural order:",
        "  forged (BOOT, signature does not verify)",
        "  partial (no BOOT, signed, version 2.2)",
        "  update2 (BOOT, unsigned)",
        "  update10 (BOOT, signed, version 2.1)",
        "Type the name of the update to boot, or press Enter for the installed system (the installed system boots in 120 s without an answer): ",
      ].join("\n"),
    );
    expect(questionFor(incomplete, updates, 5)).toContain("Boot the installed system instead? [Y/n] (the installed system boots in 5 s without an answer)");
    expect(questionFor(missing, updates, 5)).toContain("There is no update nope.");
  });

  test("choose: a listed name boots it, Enter or no answer the installed system, anything else asks again", () => {
    expect(readAnswer(choose, updates, "update2")).toEqual({ kind: "kexec", update: "update2", reason: "heddle_update=/: chose update2 on the console" });
    expect(readAnswer(choose, updates, "  update10 \r")).toMatchObject({ kind: "kexec", update: "update10" });
    expect(readAnswer(choose, updates, "")).toMatchObject({ kind: "installed" });
    expect(readAnswer(choose, updates, undefined)).toEqual({ kind: "installed", reason: "heddle_update=/; no answer in time: booting the installed system" });
    expect(readAnswer(choose, updates, "update3")).toEqual({ kind: "again", problem: 'there is no update "update3"; type one of update10, update2, partial, forged, or nothing' });
    expect(readAnswer(choose, updates, "UPDATE2")).toMatchObject({ kind: "again" });
  });

  test("incomplete: Enter, y or yes the installed system; n or no boots it anyway; others ask again", () => {
    for (const answer of ["", "y", "Y", "yes", " YES "]) expect(readAnswer(incomplete, updates, answer).kind).toBe("installed");
    for (const answer of ["n", "N", "no"]) expect(readAnswer(incomplete, updates, answer)).toMatchObject({ kind: "kexec", update: "partial" });
    expect(readAnswer(incomplete, updates, "maybe")).toEqual({ kind: "again", problem: 'expected y, n or Enter, got "maybe"' });
    expect(readAnswer(incomplete, updates, undefined).kind).toBe("installed");
  });

  test("missing: whatever is typed, the installed system", () => {
    for (const answer of ["", "update10", undefined]) expect(readAnswer(missing, updates, answer).kind).toBe("installed");
  });
});
