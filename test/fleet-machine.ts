// A booted machine that reports to a fleet server, for the sender's tests:
// the files the sender reads, on a FakeSystem, and a fetch that answers what
// a test says and records what it was sent.

import { FakeSystem } from "./fake-system.ts";
import { BOOT_REPORT, MACHINE_ID, REPORT_TOKEN } from "./fleet-envelopes.ts";

export const FLEET_SERVER = "http://fleet.test/";
export const REPORTS_URL = "http://fleet.test/api/reports";
export const TOKEN_FILE = "/etc/controller/fleet-token";
export const OUTBOX = "/run/controller/fleet-outbox";

/** The boot report a controller with `fleet` in its config leaves in /run. */
export function reportWithFleet(fleet: Record<string, unknown> = { server: FLEET_SERVER, token_file: TOKEN_FILE }): Record<string, unknown> {
  return { ...BOOT_REPORT, config: { values: { fleet } } };
}

/** A machine booted by the controller with `report`: machine-id, a NIC, a host name, the token file (mode 0600). */
export function reportingMachine(report: Record<string, unknown> = reportWithFleet(), fake = new FakeSystem()): FakeSystem {
  return fake
    .addTree("/etc", { "machine-id": `${MACHINE_ID}\n`, "controller/fleet-token": { text: `${REPORT_TOKEN}\n`, mode: 0o600 } })
    .addTree("/sys/class/net", { "lo/address": "00:00:00:00:00:00\n", "eth0/address": "52:54:00:12:34:56\n", "eth0/device": { symlink: "../../../0000:00:03.0" } })
    .addTree("/proc/sys/kernel", { hostname: "lab-01\n" })
    .addTree("/run/controller", { "report.json": JSON.stringify(report) });
}

export interface SentRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly redirect: string;
  readonly body: string;
}

/** What the fake server does with one request: answer, or fail as a network does. */
export type FakeAnswer = Response | Error | ((request: SentRequest, signal: AbortSignal) => Promise<Response>);

/** A fetch that answers from `answers` in turn (the last one again when they run out) and records every request. */
export class FakeFleet {
  readonly requests: SentRequest[] = [];
  constructor(private readonly answers: FakeAnswer[] = [new Response('{"id":1}', { status: 201 })]) {}

  readonly fetch = async (url: string, init: RequestInit): Promise<Response> => {
    const request: SentRequest = {
      url,
      method: init.method ?? "GET",
      headers: Object.fromEntries(new Headers(init.headers).entries()),
      redirect: init.redirect ?? "follow",
      body: String(init.body),
    };
    this.requests.push(request);
    const answer = this.answers.length > 1 ? this.answers.shift() : this.answers[0];
    if (answer instanceof Error) throw answer;
    if (typeof answer === "function") return answer(request, init.signal ?? new AbortController().signal);
    // a Response's body is read once: each request gets its own copy
    return answer === undefined ? new Response(null, { status: 201 }) : (answer.clone() as Response);
  };

  /** The kinds of the envelopes sent, in order. */
  kinds(): string[] {
    return this.requests.map((request) => (JSON.parse(request.body) as { kind: string }).kind);
  }
}

/** A JSON answer as the fleet server words its refusals. */
export function refusal(status: number, error: string): Response {
  return new Response(JSON.stringify({ error, problems: [error] }), { status, headers: { "Content-Type": "application/json" } });
}
