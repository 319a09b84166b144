// The report envelope: what a machine sends the fleet server, one JSON
// object per POST. It names the machine (machine-id, MACs, hostname), what
// happened (a boot, a mark-good, a mark-shutdown), when it was sent, and for
// a boot the boot report itself. The server trusts none of it beyond its
// shape: the sender proved only that it holds the fleet's token, so every
// field is checked here and stored as text, never interpreted.

import { isHostname } from "../config/schema.ts";
import { z } from "../config/zod.ts";
import { describeJsonIssue, describeValue, isMac, isUtcTimestamp } from "../update/manifest.ts";

/** Bumped when a field changes meaning, so the server can tell senders apart. */
export const ENVELOPE_FORMAT = 1;

/**
 * The most a report's body may hold: room for a boot report with a large
 * config and many partitions, stages and notices, while one POST can make the
 * server hold no more than this in memory and on disk.
 */
export const REPORT_BODY_MAX_BYTES = 256 * 1024;

/** A machine with more NICs than this is not a lab machine; the cap keeps one row small. */
export const MACS_MAX = 64;

export const ENVELOPE_KINDS = ["boot", "mark-good", "mark-shutdown"] as const;
export type EnvelopeKind = (typeof ENVELOPE_KINDS)[number];

const MACHINE_ID = /^[0-9a-f]{32}$/;

/** systemd's machine-id: 32 lowercase hex digits (what BOOTEXT/machine-id holds, without its newline). */
export function isMachineId(value: string): boolean {
  return MACHINE_ID.test(value);
}

function text(expected: string, valid: (value: string) => boolean) {
  return z.string({ error: expected }).refine(valid, { error: expected });
}

const machineSchema = z.object(
  {
    machineId: text("a machine-id: 32 lowercase hex digits", isMachineId),
    macs: z
      .array(text('a MAC such as "52:54:00:12:34:56" (lowercase, colons)', isMac), { error: "an array of MACs" })
      .max(MACS_MAX, { error: `at most ${MACS_MAX} MACs` }),
    hostname: text('a host name such as "lab-01" (letters, digits, "-", dot-separated)', isHostname),
  },
  { error: "an object with machineId, macs and hostname" },
);

/**
 * How deep a boot report's objects and arrays may nest. A report nests a
 * handful deep (6 on the unit tests' fake machine); 256 KiB of "[" parses, but writing it out again overflows the stack,
 * so a report nested deeper is refused as malformed before it is stored.
 */
export const REPORT_MAX_DEPTH = 64;

/** Whether `value` nests objects and arrays more than `limit` deep; iterative, so any depth is safe to ask about. */
function nestsDeeperThan(value: unknown, limit: number): boolean {
  const pending: [unknown, number][] = [[value, 1]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, depth] = next;
    if (typeof item !== "object" || item === null) continue;
    if (depth > limit) return true;
    for (const child of Object.values(item)) pending.push([child, depth + 1]);
  }
  return false;
}

// An object, and nothing more is asked of it here but its depth: a boot report's fields change
// with the controller's version, and the server keeps it whole. boot-summary.ts reads what it shows.
const bootReportSchema = z
  .record(z.string(), z.unknown(), { error: "the boot report, a JSON object" })
  .refine((report) => !nestsDeeperThan(report, REPORT_MAX_DEPTH), {
    error: `the boot report, a JSON object nested at most ${REPORT_MAX_DEPTH} deep`,
  });

const envelopeSchema = z
  .object(
    {
      format: z.literal(ENVELOPE_FORMAT, { error: `${ENVELOPE_FORMAT} (the envelope format this server knows)` }),
      kind: z.enum(ENVELOPE_KINDS, { error: `one of ${ENVELOPE_KINDS.map((kind) => `"${kind}"`).join(", ")}` }),
      machine: machineSchema,
      sentAt: text('a UTC time such as "2026-12-06T18:40:00.000Z"', isUtcTimestamp),
      report: bootReportSchema.optional(),
    },
    { error: "a JSON object" },
  )
  .superRefine((envelope, context) => {
    if (envelope.kind === "boot" && envelope.report === undefined) {
      context.addIssue({ code: "custom", path: ["report"], message: 'the boot report (kind "boot" carries one)' });
    }
    if (envelope.kind !== "boot" && envelope.report !== undefined) {
      context.addIssue({ code: "custom", path: ["report"], message: `nothing (kind "${envelope.kind}" carries no report)` });
    }
  });

export type Envelope = z.output<typeof envelopeSchema>;

export type ParsedEnvelope = { readonly ok: true; readonly envelope: Envelope } | { readonly ok: false; readonly problems: readonly string[] };

/** Pure: a POST's body as an envelope, or every reason it is not one, each naming the key. */
export function parseEnvelope(bytes: Uint8Array): ParsedEnvelope {
  const refuse = (problem: string): ParsedEnvelope => ({ ok: false, problems: [problem] });
  if (bytes.length > REPORT_BODY_MAX_BYTES) {
    return refuse(`Cannot read the report: it is ${bytes.length} bytes, expected at most ${REPORT_BODY_MAX_BYTES}`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return refuse("Cannot read the report: expected UTF-8 text, got bytes that are not");
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    return refuse(`Cannot read the report: expected JSON, got a syntax error: ${(error as Error).message.replace(/^JSON Parse error: /, "")}`);
  }
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return refuse(`Cannot read the report: expected a JSON object, got ${describeValue(input)}`);
  }
  const result = envelopeSchema.safeParse(input);
  if (result.success) return { ok: true, envelope: result.data };
  return { ok: false, problems: result.error.issues.map((issue) => describeJsonIssue(input, issue)) };
}
