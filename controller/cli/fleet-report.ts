// `controller fleet-report`: the booted system's service that sends this
// boot's report, and what mark-good and mark-shutdown queue, to the fleet
// server config.d's [fleet] names (fleet/report-sender.ts). It runs until it
// is stopped; init-integration/controller-fleet-report.service runs it.

import type { MachineIdentity } from "../fleet/machine-identity.ts";
import type { FleetTarget, SenderPorts } from "../fleet/report-sender.ts";
import { FLEET_OUTBOX_DIR, REPORT_PATH } from "../system/paths.ts";
import type { System } from "../system/system.ts";
import { type CommandOutput, PROCESS_OUTPUT } from "./output.ts";
import { thisMachine } from "./this-machine.ts";

/**
 * The exit status when this machine's settings keep it from sending (a token
 * file others may read, no machine-id): sysexits.h's EX_CONFIG. The unit
 * does not restart on it, since starting again meets the same settings.
 */
export const EXIT_CANNOT_SEND = 78;

export interface FleetReportWorld {
  readonly system: System;
  readonly output: CommandOutput;
  readonly fetch: SenderPorts["fetch"];
  readonly random: () => number;
  /** the tests' way to stop the loop; the service runs until SIGTERM */
  readonly keepGoing?: () => boolean;
}

/** Exit status 0 when there is nothing to send or the loop was stopped, 2 for arguments, EXIT_CANNOT_SEND for the settings. */
export async function runFleetReport(args: readonly string[], world: FleetReportWorld): Promise<number> {
  const { system, output } = world;
  if (args.length > 0) {
    output.err(`fleet-report takes no arguments, got ${args.map((arg) => JSON.stringify(arg)).join(" ")}\n`);
    return 2;
  }
  let report: unknown;
  try {
    report = JSON.parse(await system.readText(REPORT_PATH));
  } catch (error) {
    output.out(`controller: nothing to report: no boot report to read at ${REPORT_PATH} (${(error as Error).message})\n`);
    return 0;
  }
  // loaded here, not at the top: main.ts imports every command, and `controller boot` does not send reports
  const sender = await import("../fleet/report-sender.ts");
  const { machineIdentity, readIdentityFiles } = await import("../fleet/machine-identity.ts");
  const ports = { system, fetch: world.fetch, random: world.random, log: (line: string) => output.out(`controller: ${line}\n`) };
  let target: FleetTarget;
  let machine: MachineIdentity;
  try {
    const settings = sender.fleetSettingsOf(report);
    if (settings === undefined) {
      output.out("controller: nothing to report: fleet.server is not set in this boot's config\n");
      return 0;
    }
    const identity = machineIdentity(await readIdentityFiles(system));
    if (!identity.ok) throw new Error(`Cannot send reports: ${identity.problem}`);
    for (const note of identity.notes) ports.log(note);
    machine = identity.machine;
    target = await sender.fleetTarget(system, settings);
  } catch (error) {
    output.err(`controller: ${(error as Error).message}\n`);
    return EXIT_CANNOT_SEND;
  }
  await sender.queueBootReportOnce(ports, machine, report as Record<string, unknown>);
  ports.log(`sending reports from ${FLEET_OUTBOX_DIR} to ${target.url}`);
  await sender.runSender(ports, target, world.keepGoing);
  return 0;
}

/** `controller fleet-report` on this machine: runs until it is stopped. */
export function fleetReportCommand(args: readonly string[]): Promise<number> {
  return runFleetReport(args, { system: thisMachine().system, output: PROCESS_OUTPUT, fetch: (url, init) => fetch(url, init), random: Math.random });
}
