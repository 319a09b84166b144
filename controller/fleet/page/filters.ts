// The fleet page's filters, from its query string: ?version=2.0&health=good
// &rolledBack=yes&notSeenHours=24, and which page of the machines' table to
// show: &page=2. Every parameter is optional and an empty one means "any"
// (what the page's GET form sends for a field left alone), or page 1.
// A value that is not one the page offers is a problem named with its
// parameter and what it expected, answered 400, never silently ignored: a
// filter that did nothing would show a wrong fleet as if it were right.

import type { MachineRecord } from "../store.ts";
import { HEALTH_WORDS, type HealthWord, healthWord, NOT_SEEN_HOURS } from "./health.ts";
import { olderThan } from "./time.ts";

export interface FleetFilter {
  /** the booted version, exactly */
  readonly version?: string;
  readonly health?: HealthWord;
  /** true: machines that rolled back at least once; false: those that never did */
  readonly rolledBack?: boolean;
  /** machines not heard from for more than this many hours; also the hours after which a machine's health is "not seen" */
  readonly notSeenHours?: number;
}

export const FILTER_PARAMETERS = ["version", "health", "rolledBack", "notSeenHours"] as const;

/** Not a filter but which page of the machines the filter keeps: the form does not carry it, so a changed filter starts at page 1. */
export const PAGE_PARAMETER = "page";

const PARAMETERS: readonly string[] = [...FILTER_PARAMETERS, PAGE_PARAMETER];

/** Ten years: more is a typo, and hours beyond it would overflow nothing but mean nothing. */
const HOURS_MAX = 24 * 365 * 10;

/** Anything longer is not a version any machine reported; the cap keeps a problem's quote short. */
export const VERSION_MAX = 200;

/** Beyond it a number is not exact: the page shown would not be the page asked for. A page past the last is not a problem, the page says so. */
const PAGE_MAX = Number.MAX_SAFE_INTEGER;

/** `page`: which page of the machines' table, from 1. */
export type ParsedFilter = { readonly ok: true; readonly filter: FleetFilter; readonly page: number } | { readonly ok: false; readonly problems: readonly string[] };

function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

/** Pure: the filter and the page a query string asks for, or every problem with them, each naming its parameter. */
export function parseFilter(query: URLSearchParams): ParsedFilter {
  const problems: string[] = [];
  const filter: { -readonly [K in keyof FleetFilter]: FleetFilter[K] } = {};
  let page = 1;
  const seen = new Set<string>();
  for (const [name, value] of query) {
    if (seen.has(name)) {
      problems.push(`parameter ${name}: expected it once, got it again`);
      continue;
    }
    seen.add(name);
    if (!PARAMETERS.includes(name)) {
      problems.push(`parameter ${quote(name)}: expected one of ${PARAMETERS.join(", ")}`);
      continue;
    }
    if (value === "") continue;
    if (name === PAGE_PARAMETER) {
      const number = /^\d+$/.test(value) ? Number(value) : Number.NaN;
      if (!(number >= 1 && number <= PAGE_MAX)) problems.push(`parameter page: expected a whole number of at least 1, at most ${PAGE_MAX}, got ${quote(value)}`);
      else page = number;
    } else if (name === "version") {
      if (value.length > VERSION_MAX) problems.push(`parameter version: expected a version of at most ${VERSION_MAX} characters, got ${value.length}`);
      else filter.version = value;
    } else if (name === "health") {
      const word = HEALTH_WORDS.find((candidate) => candidate === value);
      if (word === undefined) problems.push(`parameter health: expected one of ${HEALTH_WORDS.map((candidate) => `"${candidate}"`).join(", ")}, got ${quote(value)}`);
      else filter.health = word;
    } else if (name === "rolledBack") {
      if (value === "yes" || value === "no") filter.rolledBack = value === "yes";
      else problems.push(`parameter rolledBack: expected "yes" or "no", got ${quote(value)}`);
    } else {
      const hours = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
      if (!(hours > 0 && hours <= HOURS_MAX)) problems.push(`parameter notSeenHours: expected a number of hours above 0, at most ${HOURS_MAX}, got ${quote(value)}`);
      else filter.notSeenHours = hours;
    }
  }
  return problems.length === 0 ? { ok: true, filter, page } : { ok: false, problems };
}

/** Pure: whether `machine` passes every part of `filter` at `now`. */
export function matchesFilter(machine: MachineRecord, filter: FleetFilter, now: Date): boolean {
  if (filter.version !== undefined && machine.lastBoot?.version !== filter.version) return false;
  if (filter.health !== undefined && healthWord(machine, now, filter.notSeenHours ?? NOT_SEEN_HOURS) !== filter.health) return false;
  if (filter.rolledBack !== undefined && machine.rollbacks > 0 !== filter.rolledBack) return false;
  return filter.notSeenHours === undefined || olderThan(machine.lastSeenAt, filter.notSeenHours, now);
}

/** Pure: the query string that asks for `filter`, each set part written as the form writes it, in FILTER_PARAMETERS' order. */
export function filterQuery(filter: FleetFilter): URLSearchParams {
  const query = new URLSearchParams();
  if (filter.version !== undefined) query.set("version", filter.version);
  if (filter.health !== undefined) query.set("health", filter.health);
  if (filter.rolledBack !== undefined) query.set("rolledBack", filter.rolledBack ? "yes" : "no");
  if (filter.notSeenHours !== undefined) query.set("notSeenHours", String(filter.notSeenHours));
  return query;
}

/** Whether any part of the filter is set. */
export function filtering(filter: FleetFilter): boolean {
  return Object.keys(filter).length > 0;
}
