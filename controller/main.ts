// The controller's command line. `boot` is what the dracut mount hook runs;
// the others are for people and for the booted system.

import { isInitramfs, runBoot } from "./boot/run-boot.ts";
import { checkConfigDir } from "./cli/check-config.ts";
import { runConfigGetCommand } from "./cli/config-get.ts";
import { DEFAULT_CONFIG } from "./config/schema.ts";
import { LinuxLogSink, LinuxSystem } from "./system/linux-system.ts";
import { Logger } from "./system/log.ts";
import { readLiveHealth, runLifecycleCommand } from "./cli/lifecycle.ts";
import { INITRD_RELEASE, REPORT_PATH } from "./system/paths.ts";
import { keygenCommand, PUBLISH_USAGE, publishCommand, signCommand, verifyCommand } from "./cli/publish.ts";
import type { BootReport } from "./boot/report.ts";
import { runServeCommand } from "./update/dev-server.ts";
import { continueCommand } from "./boot/services-wait.ts";
import { formatStatus } from "./boot/report-text.ts";
import { COMMIT, VERSION } from "./system/version.ts";

const USAGE = `Usage: controller COMMAND

Commands:
  boot                 mount the system to boot at /sysroot (run by the dracut mount hook);
                       exit status 1 when nothing is bootable
  status [--json]      what the controller did on this boot (${REPORT_PATH})
  mark-good            record on the booted slot that this system came up healthy (once it is up)
  mark-shutdown        record on the booted slot that this system shut down cleanly (as it shuts down)
  continue             in an ssh login to the initramfs (the ssh flag): end the wait, go on with the boot
  check-config DIR     check a config.d folder; prints every problem, exit status 1 if any
  config-get DIR KEY   print one value of a config.d folder over the defaults (arrays one item a line)
${PUBLISH_USAGE}  serve --repo DIR --port N [--host ADDR]
                       serve an update repository over http for development (default host 127.0.0.1)
  version              print the version
  help, --help         this text
`;

function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const log = new Logger(new LinuxLogSink(), false);
  const system = new LinuxSystem(log, DEFAULT_CONFIG.timeouts.command_seconds * 1000);
  switch (command) {
    case "boot": {
      if (!(await isInitramfs(system))) {
        process.stderr.write(`Cannot boot: this is not an initramfs (there is no ${INITRD_RELEASE}); the dracut mount hook runs \`controller boot\`\n`);
        return 2;
      }
      const { outcome } = await runBoot(system, log);
      return outcome === "handed-off" ? 0 : 1;
    }
    case "status": {
      let text: string;
      try {
        text = await system.readText(REPORT_PATH);
      } catch {
        process.stderr.write(`No boot report at ${REPORT_PATH}: this system was not booted by the controller, or /run was cleared.\n`);
        return 1;
      }
      if (rest.includes("--json")) {
        print(text);
        return 0;
      }
      const report = JSON.parse(text) as BootReport;
      print(formatStatus(report, await readLiveHealth(system, report)));
      return 0;
    }
    case "mark-good":
    case "mark-shutdown":
      return runLifecycleCommand(argv, system);
    case "continue":
      return continueCommand(system, print, (line) => process.stderr.write(`${line}\n`));
    case "check-config": {
      const [dir] = rest;
      if (dir === undefined || rest.length > 1) {
        process.stderr.write(`check-config needs exactly one folder, got ${rest.length}\n${USAGE}`);
        return 2;
      }
      const { problems, summary } = await checkConfigDir(system, dir);
      for (const problem of problems) print(problem);
      print(summary);
      return problems.length === 0 ? 0 : 1;
    }
    case "config-get":
      return runConfigGetCommand(rest, system);
    case "keygen":
      return keygenCommand(rest);
    case "publish":
      return publishCommand(rest);
    case "sign":
      return signCommand(rest);
    case "verify":
      return verifyCommand(rest);
    case "serve":
      return runServeCommand(rest);
    case "version":
      print(`controller ${VERSION} (${COMMIT})`);
      return 0;
    case "help":
    case "--help":
    case "-h":
      print(USAGE);
      return 0;
    default:
      process.stderr.write(`${command === undefined ? "No command given" : `Unknown command "${command}"`}\n${USAGE}`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  // the last line of defence: say what broke; the dracut hook turns a non-zero exit into its emergency shell
  process.stderr.write(`controller: ERROR: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 70;
}
