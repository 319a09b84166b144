// One command to a running QEMU through its human monitor (HMP) on a unix
// socket (VmDevices.monitorSocket): what Vm.saveState needs, and nothing more.

/** The monitor's prompt: printed when it connects and again when a command has ended. */
const PROMPT = "(qemu) ";

/**
 * Runs `command` (such as "savevm pre-cut") and returns what the monitor printed
 * for it. HMP commands say a failure in words ("Error: ..."), not by a status:
 * the caller decides what output means.
 */
export async function monitorCommand(socketPath: string, command: string, timeoutMs: number): Promise<string> {
  let received = "";
  let sent = false;
  let settle: { resolve: (output: string) => void; reject: (error: Error) => void } | undefined;
  const done = new Promise<string>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const cannot = (why: string) => new Error(`Cannot run "${command}" in QEMU's monitor at ${socketPath}: ${why}`);
  const socket = await Bun.connect({
    unix: socketPath,
    socket: {
      data(connection, chunk) {
        received += chunk.toString();
        if (!sent && received.includes(PROMPT)) {
          sent = true;
          received = "";
          connection.write(`${command}\n`);
        } else if (sent && received.includes(PROMPT)) {
          settle?.resolve(received.slice(0, received.lastIndexOf(PROMPT)));
        }
      },
      close() {
        settle?.reject(cannot(`it closed the connection; it printed: ${JSON.stringify(received)}`));
      },
      error(_connection, error) {
        settle?.reject(cannot(error.message));
      },
    },
  }).catch((error: Error) => {
    throw cannot(error.message);
  });
  const timer = setTimeout(() => settle?.reject(cannot(`no answer after ${timeoutMs} ms; it printed: ${JSON.stringify(received)}`)), timeoutMs);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
    socket.end();
  }
}
