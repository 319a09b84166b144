// The controller's commands as a person runs them (through bun, not the
// compiled binary; the QEMU tests run the binary): main.ts finds each by its
// name. `boot` is left out on purpose: on this machine it must refuse, and
// that is tested over the fake.

import { describe, expect, test } from "bun:test";
import { controller } from "../run-controller.ts";

describe("controller commands", () => {
  test("version and help", async () => {
    expect((await controller("version")).stdout).toMatch(/^controller \d+\.\d+\.\d+ \(development\)\n$/);
    const help = await controller("--help");
    expect(help.code).toBe(0);
    for (const command of ["boot", "status", "check-config DIR", "fleet-report", "version"]) expect(help.stdout).toContain(command);
  });

  test("an unknown or missing command is a usage error", async () => {
    expect(await controller("frobnicate")).toMatchObject({ code: 2, stderr: expect.stringContaining('Unknown command "frobnicate"') });
    expect(await controller()).toMatchObject({ code: 2, stderr: expect.stringContaining("No command given") });
    expect(await controller("fleet-report", "now")).toMatchObject({ code: 2, stderr: 'fleet-report takes no arguments, got "now"\n' });
  });
});
