// The fleet server as the QEMU scenarios use it: the built controller's own
// `controller fleet-server`, run as its own process as an admin runs it, with
// a SQLite file in the run folder. The Debian test images hold the report
// token (test/debian-image/fleet-token, installed by scripts/build-debian-image)
// and the report sender's unit; a scenario whose BOOTEXT carries `configLines`
// sees the machine's reports arrive here, and reads them back over HTTP with
// the read token, as the fleet's page and API serve them.

import { chmod, copyFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { MachineHistory } from "../../controller/fleet/store.ts";
import { GUEST_FORWARD_ADDRESS } from "../../qemu-harness/qemu-args.ts";
import { ARTIFACTS } from "./fixtures.ts";

/** The report token every Debian test image holds. */
export const IMAGE_FLEET_TOKEN = resolve(import.meta.dir, "../debian-image/fleet-token");

export interface TestFleet {
  /** on 127.0.0.1, for the VM's hostPorts */
  readonly port: number;
  /** the base URL on the host, with its trailing slash */
  readonly url: string;
  /** the read token, for the page's login and the API */
  readonly readToken: string;
  /** config.d lines that make a machine report here, as the guest reaches the host */
  readonly configLines: readonly string[];
  /** POSTs an envelope as a machine does, with the image's report token; the server's status */
  post(envelope: Record<string, unknown>): Promise<number>;
  /** GET `path` with the read token: its status and body */
  get(path: string): Promise<{ status: number; body: string }>;
  /** one machine as the API gives it, or undefined when it never reported */
  machine(machineId: string): Promise<MachineHistory | undefined>;
  /** every line the server wrote (its start and the access log) */
  output(): string;
  stop(): Promise<void>;
}

/** Starts `controller fleet-server` on a free port with a database and tokens in `work`. */
export async function startTestFleet(work: string): Promise<TestFleet> {
  const reportTokenFile = join(work, "fleet-report-token");
  const readTokenFile = join(work, "fleet-read-token");
  await copyFile(IMAGE_FLEET_TOKEN, reportTokenFile);
  await chmod(reportTokenFile, 0o600);
  const readToken = `read-${crypto.randomUUID()}`;
  await writeFile(readTokenFile, `${readToken}\n`, { mode: 0o600 });
  const argv = [ARTIFACTS.controller, "fleet-server", "--db", join(work, "fleet.sqlite"), "--port", "0", "--report-token-file", reportTokenFile, "--read-token-file", readTokenFile];
  const child = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let output = "";
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  // the first line names the URL: "fleet server at http://127.0.0.1:PORT/, reports in DB"
  while (!output.includes("\n")) {
    const { done, value } = await lines.read();
    if (done) throw new Error(`Cannot start the fleet server (${argv.join(" ")}): it ended with ${await child.exited}: ${await new Response(child.stderr).text()}`);
    output += value;
  }
  const url = /fleet server at (http:\/\/\S+\/),/.exec(output)?.[1];
  if (url === undefined) throw new Error(`Cannot start the fleet server (${argv.join(" ")}): expected "fleet server at URL", got ${JSON.stringify(output)}`);
  void (async () => {
    for (let next = await lines.read(); !next.done; next = await lines.read()) output += next.value;
  })();
  const port = Number(new URL(url).port);
  const get = async (path: string) => {
    const response = await fetch(new URL(path.replace(/^\//, ""), url), { headers: { Authorization: `Bearer ${readToken}` } });
    return { status: response.status, body: await response.text() };
  };
  const reportToken = (await Bun.file(IMAGE_FLEET_TOKEN).text()).trim();
  return {
    port,
    url,
    readToken,
    post: async (envelope) => {
      const headers = { Authorization: `Bearer ${reportToken}`, "Content-Type": "application/json" };
      const response = await fetch(new URL("api/reports", url), { method: "POST", headers, body: JSON.stringify(envelope) });
      await response.arrayBuffer();
      return response.status;
    },
    configLines: ["[fleet]", `server = "http://${GUEST_FORWARD_ADDRESS}:${port}/"`],
    get,
    machine: async (machineId) => {
      const { status, body } = await get(`/api/machines/${machineId}`);
      if (status === 404) return undefined;
      if (status !== 200) throw new Error(`GET /api/machines/${machineId} answered ${status}: ${body}`);
      return JSON.parse(body) as MachineHistory;
    },
    output: () => output,
    stop: async () => {
      child.kill("SIGTERM");
      await child.exited;
    },
  };
}
