// The files in init-integration/ that image builders install: the systemd
// units as systemd itself reads them, and controller-health run with a fake
// `controller` that records how it was called.

import { afterAll, describe, expect, test } from "bun:test";
import { chmod, copyFile, mkdir, mkdtemp, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const DIR = resolve(import.meta.dir, "../../init-integration");
const SCRIPT = join(DIR, "controller-health");
const UNITS = ["controller-mark-good@.service", "controller-mark-shutdown.service", "controller-fleet-report.service"];

const temporaryDirs: string[] = [];
afterAll(async () => {
  for (const dir of temporaryDirs) await rm(dir, { recursive: true, force: true });
});

async function temporaryDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temporaryDirs.push(dir);
  return dir;
}

async function run(argv: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([...argv], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", ...env } });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

describe.skipIf(Bun.which("systemd-analyze") === null)("the systemd units", () => {
  test("run /usr/bin/controller", async () => {
    expect(await readFile(join(DIR, "controller-mark-good@.service"), "utf8")).toContain("\nExecStart=/usr/bin/controller mark-good\n");
    expect(await readFile(join(DIR, "controller-mark-shutdown.service"), "utf8")).toContain("\nExecStop=/usr/bin/controller mark-shutdown\n");
    expect(await readFile(join(DIR, "controller-fleet-report.service"), "utf8")).toContain("\nExecStart=/usr/bin/controller fleet-report\n");
  });

  test("systemd-analyze verify finds nothing wrong", async () => {
    // verify insists that the program exists: point the units at a stand-in, the template at an instance
    const dir = await temporaryDir("units-");
    const controller = join(dir, "controller");
    await writeFile(controller, "#!/bin/sh\nexit 0\n");
    await chmod(controller, 0o755);
    const copies = {
      "controller-mark-good@.service": "controller-mark-good@multi-user.target.service",
      "controller-mark-shutdown.service": "controller-mark-shutdown.service",
      "controller-fleet-report.service": "controller-fleet-report.service",
    };
    for (const [unit, copy] of Object.entries(copies)) {
      const text = await readFile(join(DIR, unit), "utf8");
      await writeFile(join(dir, copy), text.replaceAll("/usr/bin/controller", controller));
    }
    const result = await run(["systemd-analyze", "verify", ...Object.values(copies).map((copy) => join(dir, copy))]);
    // only what it says about these units: a host's own units may have warnings of their own
    expect({ code: result.code, problems: `${result.stdout}${result.stderr}`.split("\n").filter((line) => line.includes("controller-")) }).toEqual({ code: 0, problems: [] });
  });

  test.skipIf(Bun.which("systemctl") === null)("enabling them as the README says hooks them into their targets", async () => {
    const root = await temporaryDir("root-");
    const unitDir = join(root, "etc/systemd/system");
    await mkdir(unitDir, { recursive: true });
    for (const unit of UNITS) await copyFile(join(DIR, unit), join(unitDir, unit));
    const result = await run(["systemctl", `--root=${root}`, "enable", "controller-mark-good@multi-user.target.service", "controller-mark-shutdown.service", "controller-fleet-report.service"]);
    expect(result.code).toBe(0);
    expect(await readlink(join(unitDir, "multi-user.target.wants/controller-fleet-report.service"))).toBe("/etc/systemd/system/controller-fleet-report.service");
    expect(await readlink(join(unitDir, "multi-user.target.wants/controller-mark-good@multi-user.target.service"))).toBe("/etc/systemd/system/controller-mark-good@.service");
    expect(await readlink(join(unitDir, "sysinit.target.wants/controller-mark-shutdown.service"))).toBe("/etc/systemd/system/controller-mark-shutdown.service");
  });
});

/** Whether process `pid` is gone, or a zombie left for its new parent to reap, within `ms`. */
async function endsWithin(pid: number, ms: number): Promise<boolean> {
  for (let waited = 0; waited <= ms; waited += 20) {
    const state = await readFile(`/proc/${pid}/stat`, "utf8").then((text) => text.slice(text.lastIndexOf(")") + 2, text.lastIndexOf(")") + 3), () => "gone");
    if (state === "gone" || state === "Z") return true;
    await Bun.sleep(20);
  }
  return false;
}

describe("controller-health", () => {
  /** A fake `controller` on PATH that appends its arguments to a log, one call a line, and exits with FAKE_EXIT. */
  async function fakeController() {
    const dir = await temporaryDir("controller-health-");
    await mkdir(join(dir, "bin"));
    const log = join(dir, "calls");
    // fleet-report runs until it is stopped: here for 30 s at most. Each call is one write of a whole line: start's
    // background fleet-report and its mark-good run at once, and a line written in pieces (each argument, then the
    // newline) was now and then cut into by the other's, "[fleet-report][mark-good]", and the test failed.
    await writeFile(
      join(dir, "bin/controller"),
      `#!/bin/sh\nline=\nfor arg; do line="$line[$arg]"; done\nprintf '%s\\n' "$line" >>"${log}"\n[ "$1" = fleet-report ] && exec sleep 30\nexit "\${FAKE_EXIT:-0}"\n`,
    );
    await chmod(join(dir, "bin/controller"), 0o755);
    // A nice that records how it was asked and runs the command at the test's own priority, so that a machine with
    // busy cores (CI builds the Debian images meanwhile) does not hold the stand-in sender back.
    const niceLog = join(dir, "nice-calls");
    await writeFile(join(dir, "bin/nice"), `#!/bin/sh\nprintf '%s\\n' "$*" >>"${niceLog}"\n[ "$1" = -n ] && shift 2\nexec "$@"\n`);
    await chmod(join(dir, "bin/nice"), 0o755);
    const report = join(dir, "report.json");
    await writeFile(report, "{}\n");
    const env = { PATH: `${join(dir, "bin")}:/usr/bin:/bin`, CONTROLLER_REPORT: report };
    const allCalls = async () => (await readFile(log, "utf8").catch(() => "")).split("\n").filter(Boolean);
    // the lifecycle calls; fleet-report runs in the background, at its own pace
    const calls = async () => (await allCalls()).filter((call) => call !== "[fleet-report]");
    /** The calls of fleet-report once it has started in the background, waiting for it up to 5 s. */
    const fleetReports = async () => {
      for (let waited = 0; waited < 5000 && !(await allCalls()).includes("[fleet-report]"); waited += 20) await Bun.sleep(20);
      return (await allCalls()).filter((call) => call === "[fleet-report]");
    };
    const niceCalls = async () => (await readFile(niceLog, "utf8").catch(() => "")).split("\n").filter(Boolean);
    return { env, report, calls, fleetReports, niceCalls, pidFile: join(dir, "fleet-report.pid") };
  }

  const shells = Bun.which("busybox") === null ? [["sh"]] : [["sh"], ["busybox", "sh"]];

  test("is executable and valid sh", async () => {
    expect((await stat(SCRIPT)).mode & 0o111).toBe(0o111);
    for (const shell of shells) expect(await run([...shell, "-n", SCRIPT])).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("has an LSB header that starts it last and stops it in runlevels 0 and 6", async () => {
    const text = await readFile(SCRIPT, "utf8");
    const header = text.slice(text.indexOf("### BEGIN INIT INFO"), text.indexOf("### END INIT INFO"));
    expect(header).toContain("# Provides:          controller-health\n");
    expect(header).toContain("# Required-Start:    $all\n");
    expect(header).toContain("# Default-Stop:      0 6\n");
  });

  for (const shell of shells) {
    describe(`run by ${shell.join(" ")}`, () => {
      test("start marks good, stop marks a clean shutdown", async () => {
        const { env, calls } = await fakeController();
        expect(await run([...shell, SCRIPT, "start"], env)).toEqual({ code: 0, stdout: "", stderr: "" });
        expect(await run([...shell, SCRIPT, "stop"], env)).toEqual({ code: 0, stdout: "", stderr: "" });
        expect(await calls()).toEqual(["[mark-good]", "[mark-shutdown]"]);
      });

      test("start also starts fleet-report in the background, once; stop stops it before mark-shutdown", async () => {
        const { env, calls, fleetReports, niceCalls, pidFile } = await fakeController();
        expect(await run([...shell, SCRIPT, "start"], env)).toEqual({ code: 0, stdout: "", stderr: "" });
        expect(await fleetReports()).toEqual(["[fleet-report]"]);
        // at the lowest priority: the sender never takes the CPU from the machine's work
        expect(await niceCalls()).toEqual(["-n 19 controller fleet-report"]);
        const pid = Number(await readFile(pidFile, "utf8"));
        expect(process.kill(pid, 0)).toBe(true);
        expect((await run([...shell, SCRIPT, "start"], env)).code).toBe(0);
        expect(await fleetReports()).toEqual(["[fleet-report]"]);
        expect(await run([...shell, SCRIPT, "stop"], env)).toEqual({ code: 0, stdout: "", stderr: "" });
        expect(await endsWithin(pid, 2000)).toBe(true);
        expect(await stat(pidFile).catch(() => undefined)).toBeUndefined();
        expect(await calls()).toEqual(["[mark-good]", "[mark-good]", "[mark-shutdown]"]);
        // bounded by its own waits (5 s for the sender to start, 2 s for it to end)
      }, 15_000);

      test("the controller's exit status is the script's", async () => {
        const { env } = await fakeController();
        expect((await run([...shell, SCRIPT, "start"], { ...env, FAKE_EXIT: "1" })).code).toBe(1);
      });

      test("an unknown or missing action is a usage error and runs nothing", async () => {
        const { env, calls } = await fakeController();
        for (const args of [["restart"], []]) {
          const result = await run([...shell, SCRIPT, ...args], env);
          expect(result.code).toBe(2);
          expect(result.stderr).toContain("start|stop");
        }
        expect(await calls()).toEqual([]);
      });

      test("does nothing on a system the controller did not boot", async () => {
        const { env, report, calls } = await fakeController();
        await rm(report);
        const result = await run([...shell, SCRIPT, "start"], env);
        expect(result.code).toBe(0);
        expect(result.stdout).toContain("this system was not booted by the controller, nothing to do");
        expect(await calls()).toEqual([]);
      });
    });
  }

  test("runs as a program too (its #! line), finding the controller on PATH", async () => {
    const { env, calls } = await fakeController();
    expect((await run([SCRIPT, "stop"], env)).code).toBe(0);
    expect(await calls()).toEqual(["[mark-shutdown]"]);
  });
});
