// The sender to an https:// fleet server (fleet/report-sender.ts fleetTarget
// and postEnvelope, with Bun's real fetch), signed by a throw-away CA: the
// report arrives when fleet.ca_bundle holds that CA, and does not when it
// holds another or the built-in authorities are used; a ca_bundle that is
// missing or holds no certificate is refused, naming the key and the file.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fleetHandler } from "../../../controller/fleet/server.ts";
import { openSqliteStore } from "../../../controller/fleet/sqlite-store.ts";
import type { FleetStore } from "../../../controller/fleet/store.ts";
import { fleetTarget, postEnvelope } from "../../../controller/fleet/report-sender.ts";
import { bootEnvelope, MACHINE_ID, READ_TOKEN, REPORT_TOKEN } from "../../fleet-envelopes.ts";
import { reportingMachine, TOKEN_FILE } from "../../fleet-machine.ts";
import { makeThrowawayCa, type ThrowawayCa } from "../../throwaway-ca.ts";

const CA_BUNDLE = "/etc/ssl/certs/lab.pem";
let dir: string;
let ca: ThrowawayCa;
let store: FleetStore;
let server: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-https-"));
  ca = await makeThrowawayCa(dir);
  store = openSqliteStore(join(dir, "fleet.sqlite"));
  const handler = fleetHandler(store, { report: REPORT_TOKEN, read: READ_TOKEN }, () => {});
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, tls: { cert: Bun.file(ca.serverCertFile), key: Bun.file(ca.serverKeyFile) }, fetch: (request) => handler(request) });
}, 60_000);

afterAll(async () => {
  await server?.stop(true);
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The machine's view: its token file, and `pem` (when given) at CA_BUNDLE. */
async function settingsWith(pem: string | undefined, caBundle = CA_BUNDLE) {
  const fake = reportingMachine();
  if (pem !== undefined) fake.addTree("/etc/ssl/certs", { "lab.pem": pem });
  return { fake, settings: { server: `https://127.0.0.1:${server.port}/`, tokenFile: TOKEN_FILE, caBundle } };
}

const body = () => JSON.stringify(bootEnvelope({ sentAt: new Date().toISOString() }));

describe("an https:// fleet server", () => {
  test("fleet.ca_bundle holds the CA that signed its certificate: the report arrives", async () => {
    const { fake, settings } = await settingsWith(await readFile(ca.caFile, "utf8"));
    const target = await fleetTarget(fake, settings);
    expect(target.ca).toContain("-----BEGIN CERTIFICATE-----");
    expect(await postEnvelope({ system: fake, fetch, random: Math.random, log: () => {} }, target, body(), 10_000)).toEqual({ kind: "answered", status: 201, error: "" });
    expect((await store.machine(MACHINE_ID))?.reports.length).toBeGreaterThan(0);
  });

  test("another CA, or the built-in authorities (fleet.ca_bundle = \"\"): no answer taken, a failure to try again, naming the certificate", async () => {
    for (const [pem, caBundle] of [[await readFile(ca.otherCaFile, "utf8"), CA_BUNDLE], [undefined, ""]] as const) {
      const { fake, settings } = await settingsWith(pem, caBundle);
      const target = await fleetTarget(fake, settings);
      const sent = await postEnvelope({ system: fake, fetch, random: Math.random, log: () => {} }, target, body(), 10_000);
      expect(sent.kind).toBe("failed");
      expect(sent.kind === "failed" ? sent.problem : "").toMatch(/certificate|self.signed|issuer/i);
    }
  });

  test("a fleet.ca_bundle that is missing or holds no certificate: refused, naming the key, the file and the way out", async () => {
    const missing = await settingsWith(undefined);
    await expect(fleetTarget(missing.fake, missing.settings)).rejects.toThrow(`Cannot send reports: fleet.ca_bundle ${CA_BUNDLE}: expected a file of PEM certificates, got `);
    await expect(fleetTarget(missing.fake, missing.settings)).rejects.toThrow('set fleet.ca_bundle = "" for the built-in authorities');
    const empty = await settingsWith("not a certificate\n");
    await expect(fleetTarget(empty.fake, empty.settings)).rejects.toThrow(`Cannot send reports: fleet.ca_bundle ${CA_BUNDLE}: expected PEM certificates ("-----BEGIN CERTIFICATE-----"), got none`);
  });

  test("an http:// server reads no ca_bundle, even a missing one", async () => {
    const { fake, settings } = await settingsWith(undefined);
    expect(await fleetTarget(fake, { ...settings, server: "http://127.0.0.1:1/" })).toEqual({ url: "http://127.0.0.1:1/api/reports", token: REPORT_TOKEN });
  });
});
