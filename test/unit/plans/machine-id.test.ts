import { describe, expect, test } from "bun:test";
import { machineIdFrom, parseMachineId } from "../../../controller/plans/machine-id.ts";

const KEPT_ID = "fedcba9876543210fedcba9876543210";

describe("machine-id format", () => {
  test("systemd's: 32 lowercase hex digits and a newline; the newline may be missing", () => {
    expect(parseMachineId(`${KEPT_ID}\n`)).toEqual({ ok: true, id: KEPT_ID });
    expect(parseMachineId(KEPT_ID)).toEqual({ ok: true, id: KEPT_ID });
    expect(parseMachineId("")).toEqual({ ok: false, problem: 'it holds "", not a machine-id (32 lowercase hex digits and a newline)' });
    expect(parseMachineId(`${KEPT_ID}\n\n`).ok).toBe(false);
    expect(parseMachineId(`${"0".repeat(32)}\n`)).toEqual({ ok: false, problem: "it holds the all-zero id, which systemd treats as no id" });
    expect(parseMachineId("x".repeat(100))).toEqual({ ok: false, problem: `it holds ${JSON.stringify("x".repeat(40))}…, not a machine-id (32 lowercase hex digits and a newline)` });
  });

  test("a new one is a version 4 UUID in hex, as systemd makes it", () => {
    expect(machineIdFrom(new Uint8Array(16).fill(0xff))).toBe("ffffffffffff4fffbfffffffffffffff");
    expect(machineIdFrom(new Uint8Array(16))).toBe("00000000000040008000000000000000");
    expect(() => machineIdFrom(new Uint8Array(8))).toThrow("a machine-id needs 16 random bytes, got 8");
  });
});
