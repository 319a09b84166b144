// The usage text every command's line is in, for `controller help` and for
// the mistakes that need it.

import { REPORT_PATH } from "../system/paths.ts";
import { print } from "./output.ts";
import { PUBLISH_USAGE } from "./publish.ts";

export const USAGE = `Usage: controller COMMAND

Commands:
  boot                 mount the system to boot at /sysroot (run by the dracut mount hook);
                       exit status 1 when nothing is bootable
  status [--json]      what the controller did on this boot (${REPORT_PATH})
  mark-good            record on the booted slot that this system came up healthy (once it is up)
  mark-shutdown        record on the booted slot that this system shut down cleanly (as it shuts down)
  fleet-report         send this boot's report, and mark-good's and mark-shutdown's, to fleet.server;
                       runs until stopped, trying again while the server is away (docs/fleet.md)
  continue             in an ssh login to the initramfs (the ssh flag): end the wait, go on with the boot
  check-config DIR     check a config.d folder; prints every problem, exit status 1 if any
  config-get DIR KEY   print one value of a config.d folder over the defaults (arrays one item a line)
${PUBLISH_USAGE}  serve --repo DIR --port N [--host ADDR]
                       serve an update repository over http for development (default host 127.0.0.1)
  fleet-server --db FILE|URL --port N --report-token-file FILE --read-token-file FILE [--host ADDR]
                       take the machines' reports over http into SQLite (a file) or Postgres (a postgres:// URL),
                       list them with the read token (docs/fleet.md)
  version              print the version
  help, --help         this text
`;

/** `controller help`, `--help` and `-h`. */
export function helpCommand(): number {
  print(USAGE);
  return 0;
}

/** No command, or one that is not in the usage: exit status 2. */
export function unknownCommand(command: string | undefined): number {
  process.stderr.write(`${command === undefined ? "No command given" : `Unknown command "${command}"`}\n${USAGE}`);
  return 2;
}
