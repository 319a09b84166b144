// The envelope a machine sends, built from its identity and, for a boot, its
// boot report. The server refuses a body over REPORT_BODY_MAX_BYTES (413) and
// an envelope that does not check out (400), and a refusal is forever, so a
// boot report too large is cut here, the same way every time, until it fits:
//   1. config.provenance goes, then config.layers, then partitions, then
//      notices (each step on top of the ones before);
//   2. when that is not enough, the report becomes the fields the fleet's
//      summary shows (boot-summary.ts: with the update check's offered
//      version and rollout share), each string cut to STRING_MAX_CHARS.
// A cut report says so: `truncated: true`, and `truncation` with the bytes it
// had and what was dropped. The report is never left out: a minimal one
// always fits.

import type { MachineIdentity } from "./machine-identity.ts";
import { ENVELOPE_FORMAT, type EnvelopeKind, parseEnvelope, REPORT_BODY_MAX_BYTES } from "./envelope.ts";

type Json = Record<string, unknown>;

export interface OutgoingEnvelope {
  readonly format: typeof ENVELOPE_FORMAT;
  readonly kind: EnvelopeKind;
  readonly machine: MachineIdentity;
  readonly sentAt: string;
  readonly report?: Json;
}

/** The body to POST, and how the boot report was cut to fit, when it was. */
export type FittedEnvelope =
  | { readonly ok: true; readonly body: string; readonly cut?: string }
  | { readonly ok: false; readonly problem: string };

/** A string of the minimal report longer than this is cut: a summary field is a version, a label, a sentence. */
export const STRING_MAX_CHARS = 1024;

/** What the last step keeps, for `truncation.dropped`. */
const SUMMARY_ONLY = "everything but the fields the fleet's summary shows";

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function without(report: Json, path: readonly [string] | readonly [string, string]): Json {
  const [first, second] = path;
  if (second === undefined) {
    const { [first]: _dropped, ...rest } = report;
    return rest;
  }
  const inner = report[first];
  if (!isObject(inner)) return report;
  const { [second]: _dropped, ...rest } = inner;
  return { ...report, [first]: rest };
}

/** The steps of 1. above, in order. */
const DROPS: readonly (readonly [string] | readonly [string, string])[] = [["config", "provenance"], ["config", "layers"], ["partitions"], ["notices"]];

/** A scalar of the report as it is, a string cut to STRING_MAX_CHARS; anything else is left out. */
function scalar(value: unknown): unknown {
  if (typeof value === "string") return value.slice(0, STRING_MAX_CHARS);
  return typeof value === "number" || typeof value === "boolean" ? value : undefined;
}

function definedOnly(fields: Json): Json {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

/** The fields that are there; undefined when none is. */
function nonEmpty(fields: Json): Json | undefined {
  const defined = definedOnly(fields);
  return Object.keys(defined).length === 0 ? undefined : defined;
}

/** `keys` of `source` that hold scalars, as a new object; undefined when none does. */
function scalars(source: unknown, keys: readonly string[]): Json | undefined {
  return isObject(source) ? nonEmpty(Object.fromEntries(keys.map((key) => [key, scalar(source[key])]))) : undefined;
}

/** Pure: the report cut to what boot-summary.ts reads, plus what says it was cut. */
export function minimalReport(report: Json, originalBytes: number): Json {
  const boot = isObject(report["boot"]) ? report["boot"] : {};
  const booted = scalars(boot["booted"], ["label", "device", "role"]);
  const health = scalars(boot["health"], ["attempts", "markedGood", "cleanShutdown"]);
  const update = isObject(report["update"]) ? report["update"] : {};
  const slots = Array.isArray(update["slots"]) ? update["slots"] : [];
  const bootedSlot = slots.find((slot) => isObject(slot) && booted !== undefined && slot["device"] === booted["device"]);
  const checkSource = isObject(update["check"]) ? update["check"] : {};
  const check = nonEmpty({
    ...scalars(checkSource, ["decision", "reason"]),
    manifest: scalars(checkSource["manifest"], ["version"]),
    rollout: scalars(checkSource["rollout"], ["percent"]),
  });
  const slot = scalars(bootedSlot, ["device", "version"]);
  const decisions = Array.isArray(report["decisions"]) ? report["decisions"] : [];
  const rollback = decisions.find((entry): entry is string => typeof entry === "string" && entry.startsWith("rollback: "));
  return definedOnly({
    ...scalars(report, ["format", "startedAt", "finishedAt", "outcome"]),
    controller: scalars(report["controller"], ["version", "commit"]),
    decisions: rollback === undefined ? undefined : [rollback.slice(0, STRING_MAX_CHARS)],
    boot: nonEmpty({ booted, health }),
    update: nonEmpty({ check, slots: slot === undefined ? undefined : [slot] }),
    diskless: scalars(report["diskless"], ["version"]),
    truncated: true,
    truncation: { bytes: originalBytes, dropped: [SUMMARY_ONLY] },
  });
}

/** Pure: the envelope of a mark-good or mark-shutdown, ready to POST. */
export function lifecycleBody(kind: Exclude<EnvelopeKind, "boot">, machine: MachineIdentity, sentAt: Date): string {
  const envelope: OutgoingEnvelope = { format: ENVELOPE_FORMAT, kind, machine, sentAt: sentAt.toISOString() };
  return JSON.stringify(envelope);
}

/** The body when the server takes it: no larger than `maxBytes`, and an envelope its check passes. */
function acceptable(envelope: OutgoingEnvelope, maxBytes: number): string | undefined {
  const body = JSON.stringify(envelope);
  const bytes = new TextEncoder().encode(body);
  return bytes.length <= maxBytes && parseEnvelope(bytes).ok ? body : undefined;
}

/**
 * Pure: the envelope of a boot with `report`, cut as the header says until it
 * fits in `maxBytes` (the server's cap; tests give less). Fails only when the
 * identity itself does not check out, which machine-identity.ts prevents.
 */
export function bootBody(machine: MachineIdentity, sentAt: Date, report: Json, maxBytes = REPORT_BODY_MAX_BYTES): FittedEnvelope {
  const envelope = (body: Json): OutgoingEnvelope => ({ format: ENVELOPE_FORMAT, kind: "boot", machine, sentAt: sentAt.toISOString(), report: body });
  const whole = acceptable(envelope(report), maxBytes);
  if (whole !== undefined) return { ok: true, body: whole };
  const originalBytes = new TextEncoder().encode(JSON.stringify(report)).length;
  let cut = report;
  const dropped: string[] = [];
  for (const path of DROPS) {
    cut = without(cut, path);
    dropped.push(path.join("."));
    const body = acceptable(envelope({ ...cut, truncated: true, truncation: { bytes: originalBytes, dropped: [...dropped] } }), maxBytes);
    if (body !== undefined) return { ok: true, body, cut: `the boot report (${originalBytes} bytes) was cut to fit: ${dropped.join(", ")} dropped` };
  }
  const summary = envelope(minimalReport(report, originalBytes));
  const minimal = acceptable(summary, maxBytes);
  if (minimal !== undefined) return { ok: true, body: minimal, cut: `the boot report (${originalBytes} bytes) was cut to fit: ${SUMMARY_ONLY} dropped` };
  const parsed = parseEnvelope(new TextEncoder().encode(JSON.stringify(summary)));
  const why = parsed.ok ? `it is still larger than ${maxBytes} bytes` : parsed.problems.join("; ");
  return { ok: false, problem: `Cannot send the boot report: cut to its summary, ${why}` };
}
