// One QEMU virtual machine and its serial console, in the style of u-root's
// vmtest: tests wait for text on the console with a timeout, type into it, and
// every failure shows the end of the console and the exact QEMU command line so
// that anyone can rerun the VM by hand.

import { open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { formatArgv } from "../controller/system/exec.ts";
import { spawnWithOutputFile } from "./command.ts";
import { ConsoleText, lastLines } from "./console-text.ts";
import { monitorCommand } from "./monitor.ts";
import { pvhKernel } from "./pvh-kernel.ts";
import { qemuArgv, type VmOptions } from "./qemu-args.ts";

export type { VmNetwork, VmOptions } from "./qemu-args.ts";

/** How often the console file is looked at for new output. */
const CONSOLE_POLL_MS = 20;
/** VMs started by this process, to name their console files. */
let started = 0;

/** How many console lines an error shows. */
const ERROR_CONSOLE_LINES = 60;
/**
 * A match that ends exactly where the console output ends so far may be cut short
 * (/id=(\S+)/ against "id=syst" while "em-a" is still on its way). Such a match is
 * only taken once the console has been quiet this long.
 */
const SETTLE_MS = 100;

export interface Vm {
  /** The QEMU command line, ready to paste into a shell. */
  readonly commandLine: string;
  readonly pid: number;
  /**
   * Wait until the console shows `pattern` after the end of the previous match (like
   * expect: each call consumes the console up to its match, so waiting for the same
   * prompt twice needs it printed twice). Matches the plain text (no \r, no escape
   * sequences); the match's index is a position in console(). Throws when the
   * timeout passes or QEMU exits first. Call it once at a time.
   */
  waitFor(pattern: string | RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** Type into the serial console; end a command with "\n". The guest's tty echoes it back. */
  send(text: string): Promise<void>;
  /** Wait for QEMU to end; resolves with its exit code (128 + signal number when killed). */
  waitForExit(timeoutMs: number): Promise<number>;
  /** The whole console so far as plain text. */
  console(): string;
  /** The whole console so far as received. */
  rawConsole(): string;
  /** SIGKILL QEMU (if it still runs) and wait until it is gone. Safe to call any number of times. */
  kill(): Promise<void>;
  /**
   * Save the whole VM, memory and devices, into its qcow2 disks under `name`
   * (the monitor's savevm; the VM pauses meanwhile and then goes on): a VM
   * started with the same options and resumeState `name` goes on from this instant.
   * Needs monitorSocket, diskFormat "qcow2" and writeDisks.
   */
  saveState(name: string, timeoutMs: number): Promise<void>;
}

/** A failure that already carries the console and the QEMU command line. */
export class VmError extends Error {
  override name = "VmError";
}

/** VMs not yet ended, killed if the test process exits without ending them (a test runner's timeout). */
const running = new Set<Subprocess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export async function startVm(given: VmOptions): Promise<Vm> {
  const options = given.kernel !== undefined && given.kernelEntry !== "bzimage" ? { ...given, kernel: await pvhKernel(given.kernel) } : given;
  const argv = qemuArgv(options);
  const commandLine = formatArgv(argv);
  // QEMU's console goes to a file the harness tails, not to a pipe: its serial
  // port drops bytes when a pipe is full, and a busy test machine reads late.
  const consoleFile = join(tmpdir(), `qemu-console-${process.pid}-${++started}.txt`);
  const child = spawnWithOutputFile(argv, consoleFile);
  running.add(child);
  let processEnded = false;
  void child.exited.then(() => {
    processEnded = true;
  });

  const text = new ConsoleText();
  let stderr = "";
  let lastOutputAt = Date.now();
  let exitCode: number | undefined;
  /** Called whenever the console grows or QEMU ends. */
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of listeners) listener();
  };

  const readConsole = (async () => {
    const file = await open(consoleFile, "r");
    const buffer = new Uint8Array(1 << 16);
    let position = 0;
    try {
      for (;;) {
        // read whether QEMU has ended before the read: once it has, a read that finds nothing is the end
        const ended = processEnded;
        const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
        if (bytesRead > 0) {
          position += bytesRead;
          text.append(buffer.slice(0, bytesRead));
          lastOutputAt = Date.now();
          notify();
        } else if (ended) {
          return;
        } else {
          await Bun.sleep(CONSOLE_POLL_MS);
        }
      }
    } finally {
      await file.close();
      await rm(consoleFile, { force: true });
    }
  })();
  const readStderr = new Response(child.stderr).text().then((content) => {
    stderr = content;
  });
  // Exited only once all output is read, so a last line before poweroff is never missed.
  const exited = Promise.all([child.exited, readConsole, readStderr]).then(([code]) => {
    exitCode = code;
    running.delete(child);
    notify();
    return code;
  });

  const failure = (what: string): VmError => {
    const consoleTail = text.plain === "" ? "(nothing on the console)" : lastLines(text.plain, ERROR_CONSOLE_LINES);
    const parts = [what, `--- last ${ERROR_CONSOLE_LINES} console lines ---`, consoleTail];
    if (exitCode !== undefined && stderr.trim() !== "") parts.push("--- QEMU stderr ---", stderr.trimEnd());
    parts.push("--- QEMU command line ---", commandLine);
    if (options.consoleLog !== undefined) parts.push(`(console log: ${options.consoleLog})`);
    return new VmError(parts.join("\n"));
  };

  let cursor = 0;

  return {
    commandLine,
    pid: child.pid,

    waitFor(pattern, timeoutMs) {
      const regex = searchable(pattern);
      return new Promise((resolve, reject) => {
        let settleTimer: ReturnType<typeof setTimeout> | undefined;
        const finish = () => {
          listeners.delete(check);
          clearTimeout(deadline);
          clearTimeout(settleTimer);
        };
        const deadline = setTimeout(() => {
          finish();
          reject(failure(`timed out after ${timeoutMs} ms waiting for ${describe(pattern)} on the console`));
        }, timeoutMs);
        function check(): void {
          const plain = text.plain;
          regex.lastIndex = cursor;
          const match = regex.exec(plain);
          if (match !== null) {
            const end = match.index + match[0].length;
            const quietMs = Date.now() - lastOutputAt;
            if (end < plain.length || exitCode !== undefined || quietMs >= SETTLE_MS) {
              finish();
              cursor = end;
              resolve(match);
              return;
            }
            clearTimeout(settleTimer);
            settleTimer = setTimeout(check, SETTLE_MS - quietMs);
          } else if (exitCode !== undefined) {
            finish();
            reject(failure(`QEMU exited (code ${exitCode}) before ${describe(pattern)} appeared on the console`));
          }
        }
        listeners.add(check);
        check();
      });
    },

    async send(textToType) {
      if (exitCode !== undefined) throw failure(`cannot type ${JSON.stringify(textToType)}: QEMU has exited`);
      child.stdin.write(textToType);
      await child.stdin.flush();
    },

    async waitForExit(timeoutMs) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(failure(`timed out after ${timeoutMs} ms waiting for QEMU to exit`)),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },

    console: () => text.plain,
    rawConsole: () => text.raw,

    async kill() {
      if (exitCode === undefined) child.kill("SIGKILL");
      await exited;
    },

    async saveState(name, timeoutMs) {
      if (options.monitorSocket === undefined || options.diskFormat !== "qcow2" || options.writeDisks !== true) {
        throw failure(`Cannot save the VM state "${name}": the VM needs monitorSocket, diskFormat "qcow2" and writeDisks`);
      }
      let output: string;
      try {
        output = await monitorCommand(options.monitorSocket, `savevm ${name}`, timeoutMs);
      } catch (error) {
        throw failure((error as Error).message);
      }
      if (/error/i.test(output)) throw failure(`Cannot save the VM state "${name}": QEMU's monitor said: ${output.trim()}`);
    },
  };
}

/**
 * Start a VM, run `body` with it, and always kill QEMU afterwards, also when
 * `body` throws. A failing body that is not a VmError (an assertion) gets the
 * end of the console and the QEMU command line printed, since its own message
 * cannot carry them.
 */
export async function withVm<T>(options: VmOptions, body: (vm: Vm) => Promise<T>): Promise<T> {
  const vm = await startVm(options);
  try {
    return await body(vm);
  } catch (error) {
    if (!(error instanceof VmError)) {
      console.error(
        [
          "harness: test failed while this VM ran",
          `--- last ${ERROR_CONSOLE_LINES} console lines ---`,
          lastLines(vm.console(), ERROR_CONSOLE_LINES),
          "--- QEMU command line (to rerun it by hand) ---",
          vm.commandLine,
        ].join("\n"),
      );
    }
    throw error;
  } finally {
    await vm.kill();
  }
}

/** A global regex (so lastIndex sets where the search starts) for a string or a regex. */
function searchable(pattern: string | RegExp): RegExp {
  if (typeof pattern === "string") return new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "g");
  return new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : `${pattern.flags}g`);
}

function describe(pattern: string | RegExp): string {
  return typeof pattern === "string" ? JSON.stringify(pattern) : String(pattern);
}
