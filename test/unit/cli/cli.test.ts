// The controller's commands as a person runs them (through bun, not the
// compiled binary; the QEMU tests run the binary). `boot` is left out on
// purpose: on this machine it must refuse, and that is tested over the fake.

import { describe, expect, test } from "bun:test";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { controller } from "../../run-controller.ts";



describe("controller commands", () => {
  test("version and help", async () => {
    expect((await controller("version")).stdout).toMatch(/^controller \d+\.\d+\.\d+ \(development\)\n$/);
    const help = await controller("--help");
    expect(help.code).toBe(0);
    for (const command of ["boot", "status", "check-config DIR", "version"]) expect(help.stdout).toContain(command);
  });

  test("an unknown or missing command is a usage error", async () => {
    expect(await controller("frobnicate")).toMatchObject({ code: 2, stderr: expect.stringContaining('Unknown command "frobnicate"') });
    expect(await controller()).toMatchObject({ code: 2, stderr: expect.stringContaining("No command given") });
  });

  test("check-config: the shipped config.d is clean; a bad folder gets every problem and exit status 1", async () => {
    const shippedDir = resolve(import.meta.dir, "../../../config.d");
    const shipped = await controller("check-config", shippedDir);
    expect(shipped.code).toBe(0);
    expect(shipped.stdout).toContain(`${(await readdir(shippedDir)).length} config files, 0 rejected`);

    const dir = await mkdtemp(join(tmpdir(), "check-config-"));
    try {
      await writeFile(join(dir, "10-bad.toml"), '[timeouts]\ndevices_seconds = "ten"\n[nope]\n');
      await writeFile(join(dir, "20-syntax.toml"), "[boot\n");
      const bad = await controller("check-config", dir);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toContain(`${dir}/10-bad.toml: key timeouts.devices_seconds: expected an integer from 1 to 3600`);
      expect(bad.stdout).toContain(`${dir}/10-bad.toml: `);
      expect(bad.stdout).toContain("nope");
      expect(bad.stdout).toContain(`${dir}/20-syntax.toml: TOML syntax error at line 1`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect((await controller("check-config")).code).toBe(2);
    expect(await controller("check-config", "/nonexistent/config.d")).toMatchObject({ code: 1, stdout: expect.stringContaining("no such folder") });
  });

  test("mark-good and mark-shutdown outside a system the controller booted: exit status 1 and why", async () => {
    for (const command of ["mark-good", "mark-shutdown"]) {
      const result = await controller(command);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("this system was not booted by the controller");
    }
    expect((await controller("mark-good", "extra")).code).toBe(2);
  });

  test("status without a report says so", async () => {
    expect(await controller("status")).toMatchObject({ code: 1, stderr: expect.stringContaining("No boot report at /run/controller/report.json") });
  });
});
