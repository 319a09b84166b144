// `controller continue` over the fake: in the initramfs it writes the file the
// wait before the handoff looks for (boot/services-wait.ts); anywhere else it refuses.

import { expect, test } from "bun:test";
import { runContinueCommand } from "../../../controller/cli/continue.ts";
import { CONTINUE_FILE } from "../../../controller/system/paths.ts";
import { FakeSystem } from "../../fake-system.ts";

test("`controller continue` writes the file in the initramfs, and refuses elsewhere", async () => {
  const out: string[] = [];
  const initramfs = new FakeSystem().addTree("/etc", { "initrd-release": "" });
  expect(await runContinueCommand(initramfs, (line) => out.push(line), (line) => out.push(line))).toBe(0);
  expect(initramfs.peek(CONTINUE_FILE)).toBe("2026-01-01T00:00:00.000Z\n");
  const booted = new FakeSystem();
  expect(await runContinueCommand(booted, (line) => out.push(line), (line) => out.push(line))).toBe(2);
  expect(out[1]).toStartWith("Cannot continue: this is not the initramfs (there is no /etc/initrd-release)");
  expect(booted.peek(CONTINUE_FILE)).toBeUndefined();
});
