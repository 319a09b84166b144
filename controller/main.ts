// The controller's command line. `boot` is what the dracut mount hook runs;
// the others are for people and for the booted system. Each command is a
// file in cli/; the usage text is cli/usage.ts.

import { bootCommand } from "./cli/boot.ts";
import { checkConfigCommand } from "./cli/check-config.ts";
import { configGetCommand } from "./cli/config-get.ts";
import { continueCommand } from "./cli/continue.ts";
import { fleetReportCommand } from "./cli/fleet-report.ts";
import { fleetServerCommand } from "./cli/fleet-server.ts";
import { markGoodCommand, markShutdownCommand } from "./cli/lifecycle.ts";
import { keygenCommand, publishCommand, rolloutCommand, signCommand, verifyCommand } from "./cli/publish.ts";
import { serveCommand } from "./cli/serve.ts";
import { statusCommand } from "./cli/status.ts";
import { helpCommand, unknownCommand } from "./cli/usage.ts";
import { versionCommand } from "./cli/version.ts";

/** A command's handler: the arguments after the command's name in, its exit status out. */
type Command = (args: readonly string[]) => number | Promise<number>;

const COMMANDS: ReadonlyMap<string, Command> = new Map<string, Command>([
  ["boot", bootCommand],
  ["status", statusCommand],
  ["mark-good", markGoodCommand],
  ["mark-shutdown", markShutdownCommand],
  ["fleet-report", fleetReportCommand],
  ["continue", continueCommand],
  ["check-config", checkConfigCommand],
  ["config-get", configGetCommand],
  ["keygen", keygenCommand],
  ["publish", publishCommand],
  ["rollout", rolloutCommand],
  ["sign", signCommand],
  ["verify", verifyCommand],
  ["serve", serveCommand],
  ["fleet-server", fleetServerCommand],
  ["version", versionCommand],
  ["help", helpCommand],
  ["--help", helpCommand],
  ["-h", helpCommand],
]);

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...args] = argv;
  const run = command === undefined ? undefined : COMMANDS.get(command);
  return run === undefined ? unknownCommand(command) : await run(args);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // the last line of defence: say what broke; the dracut hook turns a non-zero exit into its emergency shell
  process.stderr.write(`controller: ERROR: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 70;
}
