// The fleet server's HTTP side: machines POST their reports; people read the
// fleet's pages (GET /, GET /machines/ID) in a browser, which signs in with
// HTTP Basic (the read token as the password), and programs read the same as
// JSON (GET /api/machines) with the read token as a Bearer token. Each side
// has its own token, so the token every machine holds reads nothing. A report is checked in this
// order, and the first failure answers: its token (401), its content type
// (415), its size (413, before the body is read when it says its length),
// its body (400); only a report that passed them all reaches the store.

import type { PeerAddresses } from "../update/dev-server.ts";
import { readCappedBody } from "./capped-body.ts";
import { isMachineId, parseEnvelope, REPORT_BODY_MAX_BYTES } from "./envelope.ts";
import { fleetPage } from "./page/fleet-page.ts";
import { parseFilter } from "./page/filters.ts";
import type { Html } from "./page/html.ts";
import { messagePage, PAGE_HEADERS } from "./page/layout.ts";
import { machinePage } from "./page/machine-page.ts";
import type { FleetStore, MachineHistory } from "./store.ts";
import { basicPassword, bearerToken, sameSecret } from "./tokens.ts";

export const REPORTS_PATH = "/api/reports";
export const MACHINES_PATH = "/api/machines";
export const FLEET_PAGE_PATH = "/";
/** a machine's page is MACHINE_PAGES_PATH/MACHINE-ID */
export const MACHINE_PAGES_PATH = "/machines";

export interface FleetTokens {
  /** what machines send their reports with */
  readonly report: string;
  /** what reading the reports takes */
  readonly read: string;
}

/** An answer, and for the access log why a request was refused. */
interface Answer {
  readonly response: Response;
  readonly refusal?: string;
}

function json(status: number, value: unknown, headers: Record<string, string> = {}): Response {
  const body = new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
  // Content-Length set for the access log; nosniff so no browser reads a stored string as HTML
  const all = { "Content-Type": "application/json", "Content-Length": String(body.length), "X-Content-Type-Options": "nosniff", ...headers };
  return new Response(body, { status, headers: all });
}

function refuse(status: number, problems: readonly string[], headers: Record<string, string> = {}): Answer {
  const error = problems[0] ?? `refused with ${status}`;
  return { response: json(status, { error, problems }, headers), refusal: error };
}

function unauthorized(action: string, token: string): Answer {
  return refuse(401, [`Cannot ${action}: expected Authorization: Bearer with the ${token}, got none or another`], { "WWW-Authenticate": 'Bearer realm="fleet"' });
}

function holdsToken(request: Request, token: string): boolean {
  const given = bearerToken(request.headers.get("authorization"));
  return given !== undefined && sameSecret(given, token);
}

/** A browser sends the token as Basic's password (a person cannot make it send a Bearer header); a program may send either. */
function holdsPageToken(request: Request, token: string): boolean {
  const given = basicPassword(request.headers.get("authorization"));
  return given === undefined ? holdsToken(request, token) : sameSecret(given, token);
}

function page(request: Request, status: number, document: Html, headers: Record<string, string> = {}, refusal?: string): Answer {
  const body = new TextEncoder().encode(document.text);
  const all = { ...PAGE_HEADERS, "Content-Length": String(body.length), ...headers };
  const response = new Response(request.method === "HEAD" ? null : body, { status, headers: all });
  return refusal === undefined ? { response } : { response, refusal };
}

function refusePage(request: Request, status: number, title: string, problems: readonly string[], link: { href: string; text: string }, headers: Record<string, string> = {}): Answer {
  return page(request, status, messagePage(title, problems, link), headers, problems[0]);
}

/** The machine a path names, with its reports, or why there is none (the page and the API say the same). */
async function findMachine(store: FleetStore, machineId: string): Promise<MachineHistory | { readonly problem: string }> {
  const found = isMachineId(machineId) ? await store.machine(machineId) : undefined;
  return found ?? { problem: `Cannot find machine ${JSON.stringify(machineId.slice(0, 40))}: expected the machine-id of a machine that has reported` };
}

async function showPage(request: Request, url: URL, store: FleetStore, token: string, now: Date): Promise<Answer> {
  const home = url.pathname === FLEET_PAGE_PATH ? "./" : "../";
  if (!holdsPageToken(request, token)) {
    const problem = "Cannot show the fleet: expected the read token as the password (any user name), got none or another";
    return refusePage(request, 401, "Sign in", [problem], { href: home, text: "Try again" }, { "WWW-Authenticate": 'Basic realm="fleet", charset="UTF-8"' });
  }
  if (url.pathname === FLEET_PAGE_PATH) {
    const parsed = parseFilter(url.searchParams);
    if (!parsed.ok) return refusePage(request, 400, "Cannot filter the fleet", parsed.problems, { href: home, text: "The whole fleet" });
    return page(request, 200, fleetPage(await store.machines(), parsed.filter, now, parsed.page));
  }
  const found = await findMachine(store, url.pathname.slice(MACHINE_PAGES_PATH.length + 1));
  if ("problem" in found) return refusePage(request, 404, "No such machine", [found.problem], { href: home, text: "The fleet" });
  return page(request, 200, machinePage(found.machine, found.reports, now));
}

async function takeReport(request: Request, store: FleetStore, token: string): Promise<Answer> {
  if (!holdsToken(request, token)) return unauthorized("take the report", "fleet's report token");
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    return refuse(415, [`Cannot take the report: expected Content-Type application/json, got ${JSON.stringify(type.slice(0, 80))}`]);
  }
  const body = await readCappedBody(request, REPORT_BODY_MAX_BYTES);
  if (!body.ok) return refuse(body.status, [body.problem]);
  const parsed = parseEnvelope(body.bytes);
  if (!parsed.ok) return refuse(400, parsed.problems);
  const id = await store.add(parsed.envelope, new Date().toISOString());
  return { response: json(201, { id }) };
}

async function readMachines(request: Request, store: FleetStore, token: string, machineId: string | undefined): Promise<Answer> {
  if (!holdsToken(request, token)) return unauthorized("read the machines", "read token");
  if (machineId === undefined) return { response: json(200, { machines: await store.machines() }) };
  const found = await findMachine(store, machineId);
  if ("problem" in found) return refuse(404, [found.problem]);
  return { response: json(200, found) };
}

/** For a path of the listing: the machine-id it names, if it names one; undefined for any other path. */
function machinesTarget(pathname: string): { readonly id: string | undefined } | undefined {
  if (pathname === MACHINES_PATH) return { id: undefined };
  return pathname.startsWith(`${MACHINES_PATH}/`) ? { id: pathname.slice(MACHINES_PATH.length + 1) } : undefined;
}

function isPagePath(pathname: string): boolean {
  return pathname === FLEET_PAGE_PATH || pathname.startsWith(`${MACHINE_PAGES_PATH}/`);
}

async function answer(request: Request, url: URL, store: FleetStore, tokens: FleetTokens, now: () => Date): Promise<Answer> {
  const notAllowed = (allow: string) =>
    refuse(405, [`Cannot ${request.method} ${url.pathname}: expected ${allow}`], { Allow: allow });
  if (url.pathname === REPORTS_PATH) return request.method === "POST" ? takeReport(request, store, tokens.report) : notAllowed("POST");
  if (isPagePath(url.pathname)) return request.method === "GET" || request.method === "HEAD" ? showPage(request, url, store, tokens.read, now()) : notAllowed("GET, HEAD");
  const machine = machinesTarget(url.pathname);
  if (machine === undefined) {
    return refuse(404, [`Cannot find ${url.pathname}: expected ${FLEET_PAGE_PATH}, ${MACHINE_PAGES_PATH}/MACHINE-ID, ${REPORTS_PATH}, ${MACHINES_PATH} or ${MACHINES_PATH}/MACHINE-ID`]);
  }
  return request.method === "GET" ? readMachines(request, store, tokens.read, machine.id) : notAllowed("GET");
}

/**
 * The fetch handler. Every request ends in one accessLog line:
 *   ADDRESS [ISO TIME] "METHOD PATH" STATUS BYTES DURATIONms (WHY REFUSED)
 */
export function fleetHandler(store: FleetStore, tokens: FleetTokens, accessLog: (line: string) => void, now: () => Date = () => new Date()) {
  return async (request: Request, server?: PeerAddresses): Promise<Response> => {
    const began = performance.now();
    const url = new URL(request.url);
    let result: Answer;
    try {
      result = await answer(request, url, store, tokens, now);
    } catch (error) {
      // the client learns nothing about the server; the person running it does
      result = { response: json(500, { error: "Internal server error" }), refusal: (error as Error).message };
    }
    const { response, refusal } = result;
    const bytes = response.headers.get("content-length") ?? "0";
    const address = server?.requestIP(request)?.address ?? "-";
    const duration = Math.round(performance.now() - began);
    // a refusal quotes what the sender sent: control characters would let it write lines of its own
    const why = refusal === undefined ? "" : ` (${refusal.replace(/[\u0000-\u001f\u007f]/g, "?").slice(0, 300)})`;
    accessLog(`${address} [${new Date().toISOString()}] "${request.method} ${url.pathname}${url.search}" ${response.status} ${bytes} ${duration}ms${why}`);
    return response;
  };
}

export interface FleetServerOptions {
  readonly store: FleetStore;
  readonly tokens: FleetTokens;
  /** 0 picks a free port; the returned `port` is the real one. */
  readonly port: number;
  readonly hostname: string;
  readonly accessLog?: (line: string) => void;
  /** the clock the pages say "3 h ago" by; the real one unless a test gives another */
  readonly now?: () => Date;
}

export interface FleetServer {
  readonly port: number;
  /** the base URL, with the trailing slash */
  readonly url: string;
  stop(): Promise<void>;
}

export function startFleetServer(options: FleetServerOptions): FleetServer {
  if (sameSecret(options.tokens.report, options.tokens.read)) {
    throw new Error("Cannot start the fleet server: the report token and the read token are the same, expected two: every machine holds the report token, and it would read every machine's reports");
  }
  const handler = fleetHandler(options.store, options.tokens, options.accessLog ?? (() => {}), options.now);
  let server;
  try {
    server = Bun.serve({ hostname: options.hostname, port: options.port, fetch: (request, bunServer) => handler(request, bunServer) });
  } catch (error) {
    throw new Error(`Cannot start the fleet server at ${options.hostname} port ${options.port}: ${(error as Error).message}`);
  }
  const port = server.port ?? options.port;
  const host = options.hostname.includes(":") ? `[${options.hostname}]` : options.hostname;
  return { port, url: `http://${host}:${port}/`, stop: () => server.stop(true) };
}
