// The booted system's side of the fleet: its reports reach the fleet server
// that config.d's [fleet] names. Each report is an envelope queued as a file
// in FLEET_OUTBOX_DIR; `controller fleet-report` runs as a service and sends
// them oldest first, waits and tries again while the server is away, and
// never holds up anything else: `controller mark-good` only queues its
// envelope, and `controller mark-shutdown` gives the server one short try.
// The decisions are outbox.ts's; this file carries them out. It loads neither
// the server nor SQLite: it runs on every machine of the fleet.

import { checkConfigLayer, DEFAULT_CONFIG } from "../config/schema.ts";
import { FLEET_BOOT_QUEUED, FLEET_OUTBOX_DIR, REPORT_PATH } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import type { EnvelopeKind } from "./envelope.ts";
import { type MachineIdentity, machineIdentity, readIdentityFiles } from "./machine-identity.ts";
import {
  failureWorthLogging,
  OUTBOX_MAX_FILES,
  OUTBOX_POLL_MS,
  outboxName,
  outcomeOf,
  overflowing,
  queuedInOrder,
  REQUEST_TIMEOUT_MS,
  retryDelayMs,
  type SendOutcome,
  type SendResult,
} from "./outbox.ts";
import { bootBody, lifecycleBody } from "./outgoing-envelope.ts";
import { type TokenFile, tokenOfFile } from "./tokens.ts";

/** server.ts's REPORTS_PATH, relative to fleet.server; written again so the machines do not load the server (a test checks they agree). */
export const REPORTS_URL_PATH = "api/reports";

/** How long mark-shutdown's one try may take: the shutdown waits for it. */
export const SHUTDOWN_SEND_MS = 2_000;

/** How much of a refusal's body is read for its error text. */
const ERROR_READ_MAX_BYTES = 4096;

/** What the sender needs of the world; the tests give a fake System, fetch and randomness. */
export interface SenderPorts {
  readonly system: System;
  readonly fetch: (url: string, init: RequestInit) => Promise<Response>;
  /** from [0, 1): the outbox names' suffixes and the waits' jitter */
  readonly random: () => number;
  /** one line, without its newline */
  readonly log: (line: string) => void;
}

export interface FleetSettings {
  readonly server: string;
  readonly tokenFile: string;
  /** fleet.ca_bundle; "" for the built-in authorities */
  readonly caBundle: string;
}

/** Where the reports go and with what. */
export interface FleetTarget {
  /** fleet.server's REPORTS_URL_PATH */
  readonly url: string;
  readonly token: string;
  /** for an https:// server: the PEM certificates its certificate must chain to; absent: the built-in ones */
  readonly ca?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The [fleet] settings this boot used, from the boot report's config.values;
 * undefined when reports are off: fleet.server empty, or a report from a
 * controller before [fleet]. Throws when they do not check out.
 */
export function fleetSettingsOf(report: unknown): FleetSettings | undefined {
  const config = isRecord(report) ? report["config"] : undefined;
  const values = isRecord(config) ? config["values"] : undefined;
  const fleet = isRecord(values) ? values["fleet"] : undefined;
  if (fleet === undefined) return undefined;
  const checked = checkConfigLayer({ fleet });
  if (!checked.ok) throw new Error(`Cannot send reports: ${REPORT_PATH}: ${checked.problems.join("; ")}`);
  // a report of a controller before fleet.ca_bundle has none: its default then
  const { server, token_file: tokenFile, ca_bundle: caBundle = DEFAULT_CONFIG.fleet.ca_bundle } = checked.value.fleet ?? {};
  if (server === undefined || tokenFile === undefined) throw new Error(`Cannot send reports: ${REPORT_PATH}: key config.values.fleet: expected server and token_file, got ${JSON.stringify(fleet)}`);
  return server === "" ? undefined : { server, tokenFile, caBundle };
}

/** Where the reports go, with the token from fleet.token_file and, for https, the authorities of fleet.ca_bundle. */
export async function fleetTarget(system: System, settings: FleetSettings): Promise<FleetTarget> {
  const url = reportsUrl(settings.server);
  const token = await readFleetToken(system, settings.tokenFile);
  if (!url.startsWith("https:") || settings.caBundle === "") return { url, token };
  let ca: string;
  try {
    ca = await system.readText(settings.caBundle);
  } catch (error) {
    throw new Error(`Cannot send reports: fleet.ca_bundle ${settings.caBundle}: expected a file of PEM certificates, got ${(error as Error).message}; set fleet.ca_bundle = "" for the built-in authorities`);
  }
  if (!ca.includes("-----BEGIN CERTIFICATE-----")) {
    throw new Error(`Cannot send reports: fleet.ca_bundle ${settings.caBundle}: expected PEM certificates ("-----BEGIN CERTIFICATE-----"), got none`);
  }
  return { url, token, ca };
}

/** fleet.server's endpoint for reports: the path goes under the server's own path, as update.servers' do. */
export function reportsUrl(server: string): string {
  return new URL(REPORTS_URL_PATH, server.endsWith("/") ? server : `${server}/`).href;
}

/** The report token in fleet.token_file: a regular file only root may read (tokens.ts's rules). */
export async function readFleetToken(system: System, file: string): Promise<string> {
  const info = await system.lstat(file);
  if (info?.type !== "file") {
    throw new Error(`Cannot send reports: fleet.token_file ${file}: expected a regular file holding the fleet's report token, got ${info === undefined ? "nothing" : `a ${info.type}`}`);
  }
  let read: TokenFile;
  try {
    read = tokenOfFile(await system.readText(file), info.mode, file, "fleet.token_file");
  } catch (error) {
    throw new Error(`Cannot send reports: ${(error as Error).message}`);
  }
  const { token, warning } = read;
  // the sender refuses what the server only warns about: a machine's users are not the fleet's admins
  if (warning !== undefined) throw new Error(`Cannot send reports: ${warning.replace(/^Warning: /, "")}`);
  return token;
}

/** Queues `body`, an envelope of `kind`, dropping the oldest when the outbox is full; the new file's name. */
export async function enqueue(ports: SenderPorts, kind: EnvelopeKind, body: string): Promise<string> {
  const { system } = ports;
  await system.mkdir(FLEET_OUTBOX_DIR);
  for (const name of overflowing(await system.readdir(FLEET_OUTBOX_DIR))) {
    await system.remove(`${FLEET_OUTBOX_DIR}/${name}`);
    ports.log(`dropped ${name} unsent: the outbox holds at most ${OUTBOX_MAX_FILES} reports`);
  }
  const name = outboxName(kind, system.wallClock(), ports.random());
  await system.writeText(`${FLEET_OUTBOX_DIR}/${name}`, body);
  return name;
}

/**
 * This boot's report, queued once: the file FLEET_BOOT_QUEUED says it was,
 * so a restarted sender does not send it twice. A report that cannot be made
 * sendable is said in the log, and not tried again.
 */
export async function queueBootReportOnce(ports: SenderPorts, machine: MachineIdentity, report: Record<string, unknown>): Promise<void> {
  const { system } = ports;
  if ((await system.lstat(FLEET_BOOT_QUEUED)) !== undefined) return;
  const fitted = bootBody(machine, system.wallClock(), report);
  if (fitted.ok) {
    if (fitted.cut !== undefined) ports.log(fitted.cut);
    ports.log(`queued this boot's report as ${await enqueue(ports, "boot", fitted.body)}`);
  } else {
    ports.log(fitted.problem);
  }
  await system.writeText(FLEET_BOOT_QUEUED, `${system.wallClock().toISOString()}\n`);
}

/** The start of a refusal's body: the server's `error` when it is JSON with one; control characters shown as "?". */
async function errorText(response: Response): Promise<string> {
  if (response.ok || response.body === null) {
    await response.body?.cancel();
    return "";
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (let bytes = 0; bytes < ERROR_READ_MAX_BYTES; ) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.length;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  let error = text;
  try {
    const parsed: unknown = JSON.parse(text);
    if (isRecord(parsed) && typeof parsed["error"] === "string") error = parsed["error"];
  } catch {
    // not JSON: a proxy's page, say; its start is what there is
  }
  return error.trim().replace(/[\u0000-\u001f\u007f]/g, "?").slice(0, 300);
}

function failureText(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) return `no answer within ${timeoutMs / 1000} s`;
  return error instanceof Error ? error.message : String(error);
}

/** One POST of `body` to the target, answer and all within `timeoutMs`. Never throws: no answer is a result too. */
export async function postEnvelope(ports: SenderPorts, target: FleetTarget, body: string, timeoutMs: number): Promise<SendResult> {
  try {
    const response = await ports.fetch(target.url, {
      method: "POST",
      headers: { Authorization: `Bearer ${target.token}`, "Content-Type": "application/json" },
      body,
      // a redirect is an answer of its own (outcomeOf): following one would turn the POST into a GET
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
      ...(target.ca === undefined ? {} : { tls: { ca: target.ca } }),
    });
    return { kind: "answered", status: response.status, error: await errorText(response) };
  } catch (error) {
    return { kind: "failed", problem: failureText(error, timeoutMs) };
  }
}

/** The sender's memory between envelopes: the failures in a row, and the reason last logged. */
export interface SenderState {
  failures: number;
  lastLogged?: string;
}

function logOutcome(ports: SenderPorts, target: FleetTarget, name: string, outcome: Exclude<SendOutcome, { action: "retry" }>, failures: number): void {
  const after = failures === 0 ? "" : ` after ${failures} failed ${failures === 1 ? "try" : "tries"}`;
  ports.log(outcome.action === "delete" ? `sent ${name} to ${target.url}${after}` : `dropped ${name}: ${outcome.why}`);
}

/** Sends the oldest queued envelope, or leaves it for later; how long to wait before the next round (0: go on). */
export async function sendOldest(ports: SenderPorts, target: FleetTarget, state: SenderState): Promise<number> {
  const { system } = ports;
  const name = queuedInOrder(await system.readdir(FLEET_OUTBOX_DIR).catch(() => []))[0];
  if (name === undefined) return OUTBOX_POLL_MS;
  const path = `${FLEET_OUTBOX_DIR}/${name}`;
  let body: string;
  try {
    body = await system.readText(path);
  } catch {
    // gone since the listing: dropped for room by a command queueing its own
    return 0;
  }
  const outcome = outcomeOf(await postEnvelope(ports, target, body, REQUEST_TIMEOUT_MS));
  if (outcome.action === "retry") {
    state.failures++;
    const waitMs = retryDelayMs(state.failures, ports.random());
    if (failureWorthLogging(state.failures, outcome.why, state.lastLogged)) {
      ports.log(`cannot send ${name} to ${target.url} yet: ${outcome.why}; ${state.failures} failed in a row, next try in ${Math.round(waitMs / 1000)} s`);
      state.lastLogged = outcome.why;
    }
    return waitMs;
  }
  await system.remove(path);
  logOutcome(ports, target, name, outcome, state.failures);
  state.failures = 0;
  delete state.lastLogged;
  return 0;
}

/** The service's loop: sends what is queued, waits while the server is away, looks for new envelopes; until `keepGoing` says stop. */
export async function runSender(ports: SenderPorts, target: FleetTarget, keepGoing: () => boolean = () => true): Promise<void> {
  const state: SenderState = { failures: 0 };
  while (keepGoing()) {
    const waitMs = await sendOldest(ports, target, state);
    if (waitMs > 0) await ports.system.sleep(waitMs);
  }
}

/**
 * mark-shutdown's envelope: one try within SHUTDOWN_SEND_MS, as the shutdown
 * waits for it; when the server does not answer in time it is queued, for a
 * sender still running, and otherwise lost with /run at power-off.
 */
export async function sendNowOrQueue(ports: SenderPorts, target: FleetTarget, kind: EnvelopeKind, body: string): Promise<void> {
  const outcome = outcomeOf(await postEnvelope(ports, target, body, SHUTDOWN_SEND_MS));
  if (outcome.action === "retry") {
    ports.log(`cannot send the ${kind} report to ${target.url} now: ${outcome.why}; queued as ${await enqueue(ports, kind, body)} (lost at power-off unless sent before)`);
    return;
  }
  logOutcome(ports, target, `the ${kind} report`, outcome, 0);
}

/**
 * The envelope of `controller mark-good` (queued for the running sender) or
 * `controller mark-shutdown` (sendNowOrQueue), when this boot's config names
 * a fleet server; `report` is the boot report as parsed. Never throws: a
 * report that cannot be sent is a log line, and the mark itself stands.
 */
export async function reportLifecycle(ports: SenderPorts, kind: Exclude<EnvelopeKind, "boot">, report: unknown): Promise<void> {
  try {
    const settings = fleetSettingsOf(report);
    if (settings === undefined) return;
    const identity = machineIdentity(await readIdentityFiles(ports.system));
    if (!identity.ok) throw new Error(`Cannot send the ${kind} report: ${identity.problem}`);
    for (const note of identity.notes) ports.log(note);
    const body = lifecycleBody(kind, identity.machine, ports.system.wallClock());
    if (kind === "mark-good") {
      ports.log(`queued the mark-good report as ${await enqueue(ports, kind, body)}`);
      return;
    }
    await sendNowOrQueue(ports, await fleetTarget(ports.system, settings), kind, body);
  } catch (error) {
    ports.log((error as Error).message);
  }
}
