import { afterEach, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TCPSocketListener, UnixSocketListener } from "bun";
import { monitorCommand } from "../../../qemu-harness/monitor.ts";

/** A stand-in for QEMU's human monitor: its banner and prompt, then `answer` to the first command line. */
async function fakeMonitor(answer: (command: string) => string | undefined): Promise<{ path: string; commands: string[]; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "monitor-"));
  const path = join(dir, "monitor.sock");
  const commands: string[] = [];
  const listener: UnixSocketListener<undefined> | TCPSocketListener<undefined> = Bun.listen({
    unix: path,
    socket: {
      open(socket) {
        socket.write("QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ");
      },
      data(socket, chunk) {
        const command = chunk.toString().trim();
        commands.push(command);
        const reply = answer(command);
        if (reply === undefined) socket.end();
        else if (reply !== "silent") socket.write(`${command}\r\n${reply}(qemu) `);
      },
    },
  });
  return { path, commands, stop: async () => {
    listener.stop(true);
    await rm(dir, { recursive: true, force: true });
  } };
}

describe("monitorCommand", () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  test("sends the command once the prompt is there and returns what it printed before the next prompt", async () => {
    const monitor = await fakeMonitor((command) => (command === "savevm s1" ? "" : `Error: unknown ${command}\r\n`));
    stop = monitor.stop;
    expect(await monitorCommand(monitor.path, "savevm s1", 5000)).toBe("savevm s1\r\n");
    expect(monitor.commands).toEqual(["savevm s1"]);
    expect(await monitorCommand(monitor.path, "nonsense", 5000)).toContain("Error: unknown nonsense");
  });

  test("a monitor that hangs up or never answers is an error naming the command and the socket", async () => {
    const hangsUp = await fakeMonitor(() => undefined);
    stop = hangsUp.stop;
    await expect(monitorCommand(hangsUp.path, "savevm s1", 5000)).rejects.toThrow(`Cannot run "savevm s1" in QEMU's monitor at ${hangsUp.path}: it closed the connection`);
    const silent = await fakeMonitor(() => "silent");
    const stopFirst = stop;
    stop = async () => {
      await stopFirst();
      await silent.stop();
    };
    await expect(monitorCommand(silent.path, "savevm s1", 300)).rejects.toThrow(`Cannot run "savevm s1" in QEMU's monitor at ${silent.path}: no answer after 300 ms`);
  });

  test("no monitor at the path is an error naming it", async () => {
    await expect(monitorCommand("/nonexistent/monitor.sock", "savevm s1", 1000)).rejects.toThrow('Cannot run "savevm s1" in QEMU\'s monitor at /nonexistent/monitor.sock: ');
  });
});
