// `controller status [--json]`: what the controller did on this boot, from the
// report it left in /run: as text for a person (boot/report-text.ts), with the
// booted slot's health as it is now, or as the JSON itself.

import { formatStatus } from "../boot/report-text.ts";
import type { BootReport } from "../boot/report.ts";
import { REPORT_PATH } from "../system/paths.ts";
import { readLiveHealth } from "./lifecycle.ts";
import { print } from "./output.ts";
import { thisMachine } from "./this-machine.ts";

/** Exit status 0; 1 when there is no report. */
export async function statusCommand(args: readonly string[]): Promise<number> {
  const { system } = thisMachine();
  let text: string;
  try {
    text = await system.readText(REPORT_PATH);
  } catch {
    process.stderr.write(`No boot report at ${REPORT_PATH}: this system was not booted by the controller, or /run was cleared.\n`);
    return 1;
  }
  if (args.includes("--json")) {
    print(text);
    return 0;
  }
  const report = JSON.parse(text) as BootReport;
  print(formatStatus(report, await readLiveHealth(system, report)));
  return 0;
}
