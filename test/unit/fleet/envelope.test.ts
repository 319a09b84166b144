// The report envelope (fleet/envelope.ts): what a machine must send for the
// fleet server to keep it, and the words of every refusal.

import { describe, expect, test } from "bun:test";
import { parseEnvelope, REPORT_BODY_MAX_BYTES, REPORT_MAX_DEPTH } from "../../../controller/fleet/envelope.ts";
import { bootEnvelope, bytesOf, MACHINE_ID } from "../../fleet-envelopes.ts";

function problems(value: unknown): readonly string[] {
  const parsed = parseEnvelope(bytesOf(value));
  return parsed.ok ? [] : parsed.problems;
}

function machine(changes: Record<string, unknown>): Record<string, unknown> {
  return bootEnvelope({ machine: { machineId: MACHINE_ID, macs: ["52:54:00:12:34:56"], hostname: "lab-01", ...changes } });
}

describe("parseEnvelope accepts", () => {
  test("a boot with its report, kept whole, unknown keys of the envelope dropped", () => {
    const parsed = parseEnvelope(bytesOf(bootEnvelope({ extra: "dropped" })));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.envelope.kind).toBe("boot");
    expect(parsed.envelope.machine).toEqual({ machineId: MACHINE_ID, macs: ["52:54:00:12:34:56"], hostname: "lab-01" });
    expect(parsed.envelope.report).toEqual(bootEnvelope()["report"] as Record<string, unknown>);
    expect(parsed.envelope).not.toHaveProperty("extra");
  });

  test("a mark-good and a mark-shutdown without a report, and a machine with no MAC", () => {
    const { report: _report, ...withoutReport } = bootEnvelope();
    for (const kind of ["mark-good", "mark-shutdown"]) expect(problems({ ...withoutReport, kind })).toEqual([]);
    expect(problems(machine({ macs: [] }))).toEqual([]);
  });

  test("HTML in a field as the text it is: nothing is escaped or interpreted", () => {
    const html = '<script>alert("lab-01")</script><img src=x onerror=alert(1)>';
    const parsed = parseEnvelope(bytesOf(bootEnvelope({ report: { outcome: html, decisions: [html] } })));
    expect(parsed.ok && parsed.envelope.report).toEqual({ outcome: html, decisions: [html] });
  });
});

describe("parseEnvelope refuses, naming the key, what it expects and what it got", () => {
  test("a body that is not JSON, not UTF-8, or not an object", () => {
    expect(problems("{")).toEqual([expect.stringMatching(/^Cannot read the report: expected JSON, got a syntax error: /)]);
    expect(parseEnvelope(new Uint8Array([0x7b, 0xff, 0x7d]))).toEqual({ ok: false, problems: ["Cannot read the report: expected UTF-8 text, got bytes that are not"] });
    expect(problems("")).toEqual([expect.stringMatching(/^Cannot read the report: expected JSON/)]);
    expect(problems([bootEnvelope()])).toEqual(["Cannot read the report: expected a JSON object, got an array"]);
    expect(problems("null")).toEqual(["Cannot read the report: expected a JSON object, got null"]);
    expect(problems('"lab-01"')).toEqual(['Cannot read the report: expected a JSON object, got "lab-01"']);
  });

  test("a body over the cap, before it is parsed", () => {
    const parsed = parseEnvelope(new Uint8Array(REPORT_BODY_MAX_BYTES + 1));
    expect(parsed).toEqual({ ok: false, problems: [`Cannot read the report: it is ${REPORT_BODY_MAX_BYTES + 1} bytes, expected at most ${REPORT_BODY_MAX_BYTES}`] });
  });

  test("no identity at all, or an identity that is not an object", () => {
    const { machine: _machine, ...anonymous } = bootEnvelope();
    expect(problems(anonymous)).toEqual(["key machine: expected an object with machineId, macs and hostname, got nothing"]);
    expect(problems(bootEnvelope({ machine: "lab-01" }))).toEqual(['key machine: expected an object with machineId, macs and hostname, got "lab-01"']);
    expect(problems(bootEnvelope({ machine: {} }))).toEqual([
      "key machine.machineId: expected a machine-id: 32 lowercase hex digits, got nothing",
      "key machine.macs: expected an array of MACs, got nothing",
      'key machine.hostname: expected a host name such as "lab-01" (letters, digits, "-", dot-separated), got nothing',
    ]);
  });

  test("a machine-id that is not 32 lowercase hex digits", () => {
    const expected = (got: string) => [`key machine.machineId: expected a machine-id: 32 lowercase hex digits, got ${got}`];
    expect(problems(machine({ machineId: MACHINE_ID.toUpperCase() }))).toEqual(expected(JSON.stringify(MACHINE_ID.toUpperCase())));
    expect(problems(machine({ machineId: MACHINE_ID.slice(1) }))).toEqual(expected(JSON.stringify(MACHINE_ID.slice(1))));
    expect(problems(machine({ machineId: `${MACHINE_ID}\n` }))).toEqual(expected(JSON.stringify(`${MACHINE_ID}\n`)));
    expect(problems(machine({ machineId: "../../etc/passwd" }))).toEqual(expected('"../../etc/passwd"'));
    expect(problems(machine({ machineId: 1234 }))).toEqual(expected("1234"));
    expect(problems(machine({ machineId: null }))).toEqual(expected("null"));
  });

  test("bad MACs, too many MACs, and bad host names", () => {
    expect(problems(machine({ macs: "52:54:00:12:34:56" }))).toEqual(['key machine.macs: expected an array of MACs, got "52:54:00:12:34:56"']);
    expect(problems(machine({ macs: ["52-54-00-12-34-56", "52:54:00:12:34:5G"] }))).toEqual([
      'key machine.macs[0]: expected a MAC such as "52:54:00:12:34:56" (lowercase, colons), got "52-54-00-12-34-56"',
      'key machine.macs[1]: expected a MAC such as "52:54:00:12:34:56" (lowercase, colons), got "52:54:00:12:34:5G"',
    ]);
    expect(problems(machine({ macs: Array.from({ length: 65 }, () => "52:54:00:12:34:56") }))).toEqual(["key machine.macs: expected at most 64 MACs, got an array"]);
    const hostname = 'a host name such as "lab-01" (letters, digits, "-", dot-separated)';
    for (const bad of ["", "lab 01", "<b>lab</b>", "-lab", "a".repeat(64)]) {
      expect(problems(machine({ hostname: bad }))).toEqual([`key machine.hostname: expected ${hostname}, got ${JSON.stringify(bad)}`]);
    }
  });

  test("a format, kind or sentAt that is missing, of the wrong type or unknown", () => {
    expect(problems(bootEnvelope({ format: 2 }))).toEqual(["key format: expected 1 (the envelope format this server knows), got 2"]);
    expect(problems(bootEnvelope({ format: "1" }))).toEqual(['key format: expected 1 (the envelope format this server knows), got "1"']);
    expect(problems(bootEnvelope({ kind: "reboot" }))).toEqual(['key kind: expected one of "boot", "mark-good", "mark-shutdown", got "reboot"']);
    expect(problems(bootEnvelope({ kind: undefined }))).toEqual(['key kind: expected one of "boot", "mark-good", "mark-shutdown", got nothing']);
    const sentAt = 'a UTC time such as "2026-12-06T18:40:00.000Z"';
    for (const bad of ["2026-02-30T10:00:00Z", "2026-12-06 10:00:00", "yesterday"]) {
      expect(problems(bootEnvelope({ sentAt: bad }))).toEqual([`key sentAt: expected ${sentAt}, got ${JSON.stringify(bad)}`]);
    }
    expect(problems(bootEnvelope({ sentAt: 1765015200 }))).toEqual([`key sentAt: expected ${sentAt}, got 1765015200`]);
  });

  test("a boot without its report, a report that is not an object, a report on a kind that has none", () => {
    expect(problems(bootEnvelope({ report: undefined }))).toEqual(['key report: expected the boot report (kind "boot" carries one), got nothing']);
    expect(problems(bootEnvelope({ report: [] }))).toEqual(["key report: expected the boot report, a JSON object, got an array"]);
    expect(problems(bootEnvelope({ report: "{}" }))).toEqual(['key report: expected the boot report, a JSON object, got "{}"']);
    expect(problems(bootEnvelope({ kind: "mark-good" }))).toEqual(['key report: expected nothing (kind "mark-good" carries no report), got an object']);
  });

  test("a report nested deeper than the limit, which would overflow the stack when it is written out again", () => {
    const nested = (depth: number): unknown => Array.from({ length: depth }).reduce<unknown>((inner) => [inner], 0);
    expect(problems(bootEnvelope({ report: { x: nested(REPORT_MAX_DEPTH - 1) } }))).toEqual([]);
    const refused = [`key report: expected the boot report, a JSON object nested at most ${REPORT_MAX_DEPTH} deep, got an object`];
    expect(problems(bootEnvelope({ report: { x: nested(REPORT_MAX_DEPTH) } }))).toEqual(refused);
    const deep = JSON.stringify(bootEnvelope({ report: {} })).replace('"report":{}', `"report":{"x":${"[".repeat(100_000)}${"]".repeat(100_000)}}`);
    expect(problems(deep)).toEqual(refused);
  });

  test("a long bad value is shown short", () => {
    const [problem] = problems(machine({ hostname: "x".repeat(5000) }));
    expect(problem).toEndWith('..." (5002 characters)');
    expect((problem ?? "").length).toBeLessThan(250);
  });
});
