// The sender's decisions, pure: which queued envelope goes next, what an
// answer means for it, how long to wait before trying again, and which
// failures are worth a log line. report-sender.ts carries them out.
//
// An envelope waits in the outbox as one file named
//   RANK-MILLISECONDS-KIND-RANDOM.json
// RANK is 0 for a boot's report and 1 for the rest, so a boot's report goes
// before the mark-good that may have been queued ahead of it; MILLISECONDS
// (the wall clock when queued, 15 digits) keeps the others in order; RANDOM
// keeps two envelopes of one millisecond apart. Anything else in the folder
// (a write's temporary file) is not an envelope.

import type { EnvelopeKind } from "./envelope.ts";

/** The most envelopes that wait: a long outage cannot fill /run. Three a boot is the usual. */
export const OUTBOX_MAX_FILES = 50;

/** The first wait after a failure; each failure in a row doubles it, up to RETRY_MAX_MS. */
export const RETRY_FIRST_MS = 5_000;
export const RETRY_MAX_MS = 10 * 60_000;

/** How long one POST may take, answer included. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** How often an empty outbox is looked at again, for what mark-good and mark-shutdown queue. */
export const OUTBOX_POLL_MS = 5_000;

/** Answers that say the server will never take this envelope: sending it again changes nothing. */
export const PERMANENT_REFUSALS: readonly number[] = [400, 401, 403, 404, 413, 415];

const NAME = /^([01])-(\d{15})-(boot|mark-good|mark-shutdown)-([0-9a-f]{8})\.json$/;

/** Pure: the file name of an envelope of `kind` queued at `at`; `random` is from [0, 1). */
export function outboxName(kind: EnvelopeKind, at: Date, random: number): string {
  const rank = kind === "boot" ? 0 : 1;
  const suffix = Math.floor(random * 0x1_0000_0000).toString(16).padStart(8, "0");
  return `${rank}-${String(at.getTime()).padStart(15, "0")}-${kind}-${suffix}.json`;
}

/** Pure: the envelopes among a folder's names, in the order they are sent. */
export function queuedInOrder(names: readonly string[]): string[] {
  return names.filter((name) => NAME.test(name)).sort();
}

/** Pure: the envelopes to drop, oldest first, so that one more fits within `max`. */
export function overflowing(names: readonly string[], max = OUTBOX_MAX_FILES): string[] {
  const queued = queuedInOrder(names);
  return queued.slice(0, Math.max(0, queued.length - (max - 1)));
}

/** How a POST ended: an answer with its status and the server's error text, or no answer. */
export type SendResult =
  | { readonly kind: "answered"; readonly status: number; /** the server's `error`, or the body's start; "" when none */ readonly error: string }
  | { readonly kind: "failed"; /** why there was no answer: refused, timed out, ... */ readonly problem: string };

export type SendOutcome =
  /** taken: the file goes */
  | { readonly action: "delete" }
  /** refused for good: the file goes, with a log line */
  | { readonly action: "drop"; readonly why: string }
  /** not now: the file stays, tried again later */
  | { readonly action: "retry"; readonly why: string };

function answered(status: number, error: string): string {
  return `the server answered ${status}${error === "" ? "" : `: ${error}`}`;
}

/**
 * Pure: what to do with an envelope after a POST. 2xx took it; no answer,
 * 408, 429 and 5xx are a server away or busy, tried again; every other answer
 * (PERMANENT_REFUSALS, and redirects and the other 4xx, which an unchanged
 * request meets again) drops it.
 */
export function outcomeOf(result: SendResult): SendOutcome {
  if (result.kind === "failed") return { action: "retry", why: result.problem };
  const { status, error } = result;
  if (status >= 200 && status < 300) return { action: "delete" };
  if (status === 408 || status === 429 || status >= 500) return { action: "retry", why: answered(status, error) };
  const hint = PERMANENT_REFUSALS.includes(status) ? "" : " (not an answer a fleet server gives: is fleet.server right?)";
  return { action: "drop", why: `${answered(status, error)}${hint}` };
}

/**
 * Pure: the wait after `failures` failures in a row (1 or more): RETRY_FIRST_MS
 * doubled each time up to RETRY_MAX_MS, of which `random` (from [0, 1)) takes
 * between half and all, so machines that lost the server together do not all
 * come back at the same second.
 */
export function retryDelayMs(failures: number, random: number): number {
  const ceiling = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(Math.max(failures, 1) - 1, 20));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}

/**
 * Pure: whether the `failures`-th failure in a row gets a log line: the 1st,
 * 2nd, 4th, 8th ..., and any whose reason differs from the last one logged,
 * so a server away for a day writes about a dozen lines, not hundreds.
 */
export function failureWorthLogging(failures: number, why: string, lastLogged: string | undefined): boolean {
  return (failures & (failures - 1)) === 0 || why !== lastLogged;
}
