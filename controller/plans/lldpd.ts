// The lldpd flag's lldpd: how it runs (boot/services.ts starts it) and what
// lldpcli says it advertises.

import { TOOLS } from "../system/paths.ts";

/** Pure: lldpd's command line: in the foreground, its own messages in its log file. */
export function lldpdArgv(): string[] {
  return [TOOLS.lldpd, "-d"];
}

/** Pure: the chassis name in `lldpcli -f keyvalue show chassis` output: "local-chassis.chassis.name=lab-07". */
export function chassisNameOf(output: string): string | undefined {
  for (const line of output.split("\n")) {
    const match = /^(?:local-chassis\.)?chassis\.name=(.*)$/.exec(line.trim());
    if (match?.[1] !== undefined && match[1] !== "") return match[1];
  }
  return undefined;
}
