import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { bootsDebianImages, ESTIMATES, failureExcerpts, failuresOf, type FileResult, formatDuration, nextToStart, parseBunCounts, queueLongestFirst, summary, UNKNOWN_FILE } from "../../../qemu-harness/test-queue.ts";

const RUNNER = resolve(import.meta.dir, "../../../scripts/run-qemu-tests.ts");

/** What bun test 1.4 prints at the end of a file, in colour as on a terminal. */
const BUN_END = "\x1b[0m\x1b[32m 7 pass\x1b[0m\n\x1b[0m\x1b[2m 1 skip\x1b[0m\n\x1b[0m\x1b[31m 2 fail\x1b[0m\n 31 expect() calls\nRan 10 tests across 1 file. [40.12s]\n";

describe("queueLongestFirst", () => {
  test("the longest files first; a file without an estimate counts as long", () => {
    const queue = queueLongestFirst(["test/qemu/initramfs.test.ts", "test/qemu/new.test.ts", "test/qemu/power-cut.test.ts", "test/qemu/boot.test.ts"]);
    expect(queue.map((file) => file.path)).toEqual(["test/qemu/power-cut.test.ts", "test/qemu/new.test.ts", "test/qemu/boot.test.ts", "test/qemu/initramfs.test.ts"]);
    expect(queue[1]).toEqual({ path: "test/qemu/new.test.ts", ...UNKNOWN_FILE });
  });

  test("the files that run two VMs first, whatever their length: later they would wait for both VMs while one stands idle", () => {
    const queue = queueLongestFirst(["test/qemu/update.test.ts", "test/qemu/kernel-power-cut.test.ts", "test/qemu/power-cut.test.ts", "test/qemu/boot.test.ts"]);
    expect(queue.map((file) => file.path)).toEqual(["test/qemu/power-cut.test.ts", "test/qemu/kernel-power-cut.test.ts", "test/qemu/update.test.ts", "test/qemu/boot.test.ts"]);
  });

  test("every QEMU test file in the repository has an estimate", async () => {
    const files = [...new Bun.Glob("*.test.ts").scanSync({ cwd: resolve(import.meta.dir, "../../qemu") })].sort();
    expect(Object.keys(ESTIMATES).sort()).toEqual(files);
  });
});

describe("nextToStart", () => {
  const powerCut = { path: "power-cut.test.ts", expectedSeconds: 1500, vms: 2 };
  const boot = { path: "boot.test.ts", expectedSeconds: 400, vms: 1 };

  test("the head of the queue once it has the VMs it runs", () => {
    expect(nextToStart([boot, powerCut], 1, 2)).toBe(boot);
    expect(nextToStart([powerCut, boot], 2, 2)).toBe(powerCut);
    expect(nextToStart([], 2, 2)).toBeUndefined();
  });

  test("a file running two VMs waits for both rather than being passed over by one that fits", () => {
    expect(nextToStart([powerCut, boot], 1, 2)).toBeUndefined();
  });

  test("with fewer VMs allowed than a file runs, it gets them all", () => {
    expect(nextToStart([powerCut], 1, 1)).toBe(powerCut);
  });

  test("a held file (its images still building) is passed over; the first one not held is not", () => {
    const kernelPowerCut = { path: "kernel-power-cut.test.ts", expectedSeconds: 400, vms: 2 };
    const held = (file: { path: string }) => file.path === kernelPowerCut.path;
    expect(nextToStart([kernelPowerCut, boot], 1, 2, held)).toBe(boot);
    expect(nextToStart([kernelPowerCut, powerCut, boot], 1, 2, held)).toBeUndefined();
    expect(nextToStart([kernelPowerCut], 2, 2, held)).toBeUndefined();
    expect(nextToStart([kernelPowerCut, boot], 2, 2, () => false)).toBe(kernelPowerCut);
  });
});

describe("bootsDebianImages", () => {
  test("a file importing debian-fixtures.ts waits for the Debian images; a comment naming it does not make one", () => {
    expect(bootsDebianImages('import { expect } from "bun:test";\nimport { DEBIAN, marker } from "./debian-fixtures.ts";\n')).toBe(true);
    expect(bootsDebianImages('// the images (debian-fixtures.ts) carry their own kernel\nimport { ARTIFACTS } from "./fixtures.ts";\n')).toBe(false);
    expect(bootsDebianImages('import { x } from "../other/debian-fixtures.ts";\n')).toBe(false);
  });

  test("the repository's files: those that boot debian-1.0 or debian-2.0, and no other", async () => {
    const dir = resolve(import.meta.dir, "../../qemu");
    const booting = [];
    for (const name of [...new Bun.Glob("*.test.ts").scanSync({ cwd: dir })].sort()) {
      if (bootsDebianImages(await Bun.file(join(dir, name)).text())) booting.push(name);
    }
    expect(booting).toEqual(["debian.test.ts", "kernel-power-cut.test.ts", "kernel-switch.test.ts"]);
  });
});

describe("parseBunCounts and failuresOf", () => {
  test("reads the counts bun test prints at its end, colours and all", () => {
    expect(parseBunCounts(`(pass) a [1.00ms]\n${BUN_END}`)).toEqual({ pass: 7, fail: 2, skip: 1, todo: 0 });
  });

  test("a test's output mentioning pass or fail is not a count", () => {
    expect(parseBunCounts("power-cut table:\ndownload-half | pass\n 3 passes later\n")).toBeUndefined();
  });

  const result = (exitCode: number, output: string): FileResult => ({ path: "x.test.ts", exitCode, seconds: 1, counts: parseBunCounts(output) });

  test("a file that exits non-zero without a failed test (a crash, an error outside any test) is one failure", () => {
    expect(failuresOf(result(1, "error: Cannot find module\n"))).toBe(1);
    expect(failuresOf(result(1, " 3 pass\n 0 fail\n"))).toBe(1);
    expect(failuresOf(result(1, BUN_END))).toBe(2);
    expect(failuresOf(result(0, " 3 pass\n 0 fail\n"))).toBe(0);
  });
});

describe("failureExcerpts", () => {
  /** bun test 1.4's output for a file, as a log holds it (no terminal, so no colours) */
  const OUTPUT = [
    "bun test v1.4.5 (a7733435c)",
    "",
    "x.test.ts:",
    "hello a",
    "(pass) d > a [0.27ms]",
    "hello b",
    "4 | test(\"b\", () => { expect({x:1}).toEqual({x:2}); });",
    "error: expect(received).toEqual(expected)",
    "      at <anonymous> (/tmp/x.test.ts:4:57)",
    "(fail) d > b [21.24ms]",
    "(pass) d > c [0.21ms]",
    "(fail) d > t [103.04ms]",
    "  ^ this test timed out after 100ms.",
    "",
    " 2 pass",
    " 2 fail",
  ].join("\n");

  test("each failed test with what it printed and bun's error, and nothing of the tests that passed", () => {
    expect(failureExcerpts(OUTPUT)).toEqual([
      ["hello b", "4 | test(\"b\", () => { expect({x:1}).toEqual({x:2}); });", "error: expect(received).toEqual(expected)", "      at <anonymous> (/tmp/x.test.ts:4:57)", "(fail) d > b [21.24ms]"],
      ["(fail) d > t [103.04ms]", "  ^ this test timed out after 100ms."],
    ]);
  });

  test("a long block keeps its last lines, where bun puts the error, and says how many it left out", () => {
    const console = Array.from({ length: 100 }, (_, index) => `console line ${index}`);
    const [excerpt] = failureExcerpts(["x.test.ts:", ...console, "error: boom", "(fail) long [1.00ms]"].join("\n"), 10);
    expect(excerpt).toEqual(["(92 earlier lines are in the file's log)", ...console.slice(-8), "error: boom", "(fail) long [1.00ms]"]);
  });

  test("colours are taken out; a file without a failed test has no excerpts", () => {
    expect(failureExcerpts("x.test.ts:\n\x1b[31m(fail)\x1b[0m a [1.00ms]\n")).toEqual([["(fail) a [1.00ms]"]]);
    expect(failureExcerpts("x.test.ts:\n(pass) a [1.00ms]\n 1 pass\n 0 fail\n")).toEqual([]);
    expect(failureExcerpts("error: Cannot find module\n")).toEqual([]);
  });
});

describe("summary", () => {
  test("one line per file, slowest first, then the wall time and the total CI reads last", () => {
    const lines = summary(
      [
        { path: "test/qemu/boot.test.ts", exitCode: 0, seconds: 301, counts: { pass: 8, fail: 0, skip: 0, todo: 0 } },
        { path: "test/qemu/pxe.test.ts", exitCode: 1, seconds: 1325.4, counts: undefined },
        { path: "test/qemu/update.test.ts", exitCode: 1, seconds: 59.6, counts: { pass: 9, fail: 2, skip: 1, todo: 0 } },
      ],
      1400,
      2,
    );
    expect(lines).toEqual([
      "pxe.test.ts     22m05s  no test counts printed  FAILED (exit code 1)",
      "boot.test.ts     5m01s  8 pass, 0 fail  ok",
      "update.test.ts   1m00s  9 pass, 2 fail  FAILED (exit code 1)",
      "QEMU test files: 3, 2 VMs at a time: 23m20s wall (the files' own times add up to 28m06s)",
      "17 passed, 3 failed, 1 skipped",
    ]);
  });

  test("durations", () => {
    expect(formatDuration(0.4)).toBe("0s");
    expect(formatDuration(59.5)).toBe("1m00s");
    expect(formatDuration(3797)).toBe("63m17s");
  });
});

describe("scripts/run-qemu-tests", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "run-qemu-tests-"));
    const file = (name: string, body: string) => writeFile(join(dir, name), `import { expect, test } from "bun:test";\n${body}\n`);
    // a and b build disks where the QEMU fixtures do: a disk, an image in a repository, and a console
    const buildDisks =
      'import { mkdirSync, writeFileSync } from "node:fs";\nimport { join } from "node:path";\n' +
      'const folder = join(process.env.QEMU_TESTS_DISKS_DIR!, `run-${process.env.QEMU_TESTS_RUN_PID}`, String(process.pid));\n' +
      'mkdirSync(join(folder, "repo/images"), { recursive: true });\n' +
      'writeFileSync(join(folder, "disk.img"), new Uint8Array(1 << 20).fill(1));\nwriteFileSync(join(folder, "repo/images/v2.squashfs"), "hsqs");\n' +
      'writeFileSync(join(folder, "console.txt"), "@@TEST done");\n';
    await file("runner-a-passes.test.ts", `${buildDisks}test("a", async () => { await Bun.sleep(300); expect(1).toBe(1); });`);
    await file("runner-b-fails.test.ts", `${buildDisks}test("b1", () => expect(1).toBe(1));\ntest("b2", async () => { await Bun.sleep(300); expect(1).toBe(2); });`);
    await file("runner-c-crashes.test.ts", 'throw new Error("fixture missing");');
    // a file where its folder should be: the runner cannot clear it
    await file(
      "runner-e-blocks-its-folder.test.ts",
      'import { mkdirSync, writeFileSync } from "node:fs";\nimport { join } from "node:path";\n' +
        'const run = join(process.env.QEMU_TESTS_DISKS_DIR!, `run-${process.env.QEMU_TESTS_RUN_PID}`);\n' +
        'mkdirSync(run, { recursive: true });\nwriteFileSync(join(run, String(process.pid)), "not a folder");\ntest("e", () => expect(1).toBe(1));',
    );
    await writeFile(join(dir, "debian-fixtures.ts"), "export const DEBIAN = { v1: 'debian-1.0.squashfs' };\n");
    await file("runner-d-boots-debian.test.ts", 'import { DEBIAN } from "./debian-fixtures.ts";\ntest("d", () => expect(DEBIAN.v1).toContain("debian"));');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function run(...args: string[]): Promise<{ exitCode: number; output: string }> {
    const child = Bun.spawn([process.execPath, RUNNER, "--logs", join(dir, "logs"), "--disks", join(dir, "disks"), ...args], { stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    return { exitCode, output: stdout + stderr };
  }

  test("runs the files two at a time, prints each one's output and wall time, and ends with an honest total and exit code", async () => {
    const { exitCode, output } = await run(join(dir, "runner-a-passes.test.ts"), join(dir, "runner-b-fails.test.ts"), join(dir, "runner-c-crashes.test.ts"));
    expect(exitCode).toBe(1);
    const lines = output.trimEnd().split("\n");
    // the two files on two workers both start before either ends
    const events = lines.filter((line) => /^==> (start |.*runner-.*: \d+m?\d*s, )/.test(line));
    expect(events.map((line) => line.startsWith("==> start "))).toEqual([true, true, false, true, false, false]);
    expect(output).toMatch(/==> .*runner-b-fails\.test\.ts: \d+s, FAILED \(exit code 1\)\n/);
    expect(output).toContain("(fail) b2");
    expect(output).toContain("fixture missing");
    // above the summary, each failure once more, in the order the files ended: the end of the output alone says why
    const again = (file: string) => new RegExp(`==> failed in .*${file}, again:\\n((.*\\n)*?)==> end of the failures of `).exec(output);
    const summaryAt = output.lastIndexOf("\nQEMU test files: ");
    const lastLogEnd = Math.max(...[...output.matchAll(/==> end of (?!the failures)/g)].map((match) => match.index));
    for (const file of ["runner-b-fails.test.ts", "runner-c-crashes.test.ts"]) {
      const at = again(file)?.index ?? -1;
      expect(at).toBeGreaterThan(lastLogEnd);
      expect(at).toBeLessThan(summaryAt);
    }
    expect(again("runner-c-crashes.test.ts")?.[1]).toBe("(no failed test printed: the whole log is above)\n");
    const bAgain = again("runner-b-fails.test.ts")?.[1];
    expect(bAgain).toMatch(/error: expect\(received\)\.toBe\(expected\)\n(.*\n)*\(fail\) b2 \[[\d.]+ms\]\n$/);
    expect(bAgain).not.toContain("(pass) b1");
    expect(lines.at(-1)).toBe("2 passed, 2 failed");
  }, 60_000);

  test("a file that passed has its disks removed as it ends, its console kept; a failed file's disks stay", async () => {
    const { output } = await run(join(dir, "runner-a-passes.test.ts"), join(dir, "runner-b-fails.test.ts"));
    const removed = /==> .*runner-a-passes\.test\.ts: \d+s, passed; its disks removed, 1 MB \(its consoles and screenshots stay in (.*)\)\n/.exec(output);
    expect(removed).not.toBeNull();
    const passedFolder = removed?.[1] ?? "";
    expect(passedFolder).toStartWith(join(dir, "disks", "run-"));
    expect(await Bun.file(join(passedFolder, "console.txt")).text()).toBe("@@TEST done");
    expect(await Bun.file(join(passedFolder, "disk.img")).exists()).toBe(false);
    expect(await Bun.file(join(passedFolder, "repo")).exists()).toBe(false);
    // b's folder is a sibling of a's, whole
    const runFolder = dirname(passedFolder);
    const failedFolders = (await readdir(runFolder)).filter((name) => join(runFolder, name) !== passedFolder);
    expect(failedFolders).toHaveLength(1);
    const failedFolder = join(runFolder, failedFolders[0] ?? "");
    expect((await stat(join(failedFolder, "disk.img"))).size).toBe(1 << 20);
    expect(await Bun.file(join(failedFolder, "repo/images/v2.squashfs")).text()).toBe("hsqs");
    expect(output).toMatch(/runner-b-fails\.test\.ts: \d+s, FAILED \(exit code 1\)\n/);
    // a folder that cannot be cleared is said, and the run goes on with the file counted as passed
    const blocked = await run(join(dir, "runner-e-blocks-its-folder.test.ts"), join(dir, "runner-a-passes.test.ts"));
    expect(blocked.output).toMatch(/runner-e-blocks-its-folder\.test\.ts: \d+s, passed; cannot remove all of its disks in .*: ENOTDIR/);
    expect(blocked.output.trimEnd().split("\n").at(-1)).toBe("2 passed, 0 failed");
    expect(blocked.exitCode).toBe(0);
    // each start says the room left, so a disk filling up shows before a test fails on it
    expect(output).toMatch(/==> start .*runner-a-passes\.test\.ts \(log: .*; \d+\.\d GB free for its disks\)\n/);
  }, 60_000);

  test("with --vms 1 the files run one after the other", async () => {
    const { exitCode, output } = await run("--vms", "1", join(dir, "runner-a-passes.test.ts"), join(dir, "runner-b-fails.test.ts"));
    expect(exitCode).toBe(1);
    const events = output.split("\n").filter((line) => /^==> (start |.*runner-.*: \d+m?\d*s, )/.test(line));
    expect(events.map((line) => line.startsWith("==> start "))).toEqual([true, false, true, false]);
    expect(output.trimEnd().split("\n").at(-1)).toBe("2 passed, 1 failed");
  }, 60_000);

  /** A job folder as scripts/test makes it for the Debian images, whose build ends after `endsAfterMs` with `exitCode`. */
  async function debianJob(name: string, exitCode: number, endsAfterMs: number): Promise<string> {
    const job = join(dir, name);
    await mkdir(job, { recursive: true });
    await writeFile(join(job, "pid"), String(process.pid));
    setTimeout(() => {
      void writeFile(join(job, "log"), `==> debootstrap bookworm\n${exitCode === 0 ? "" : "ERROR: debootstrap failed\n"}`).then(() => writeFile(join(job, "exit-code"), `${exitCode}\n`));
    }, endsAfterMs);
    return job;
  }

  test("--debian-images-job: a file importing debian-fixtures.ts starts once the images are built, the others at once", async () => {
    const job = await debianJob("job-builds", 0, 1500);
    const { exitCode, output } = await run("--debian-images-job", job, join(dir, "runner-d-boots-debian.test.ts"), join(dir, "runner-a-passes.test.ts"));
    expect(exitCode).toBe(0);
    expect(output).toContain("held until the Debian test images are built: runner-d-boots-debian.test.ts\n");
    const order = output.split("\n").filter((line) => /^==> (start |Debian test images )/.test(line));
    expect(order.map((line) => line.replace(/, \d+s into .*| \(log: .*|[^ ]*(runner-\w)[^ ]*/g, "$1"))).toEqual([
      "==> start runner-a",
      "==> Debian test images built",
      "==> start runner-d",
    ]);
    expect(output).toContain("==> debootstrap bookworm\n==> end of the Debian test images' log");
    expect(output.trimEnd().split("\n").at(-1)).toBe("2 passed, 0 failed");
  }, 60_000);

  test("--debian-images-job: when the images did not build, the files booting them fail unrun, with the build's log", async () => {
    const job = await debianJob("job-fails", 1, 0);
    await Bun.sleep(200);
    const { exitCode, output } = await run("--debian-images-job", job, join(dir, "runner-d-boots-debian.test.ts"), join(dir, "runner-a-passes.test.ts"));
    expect(exitCode).toBe(1);
    expect(output).toContain("==> Debian test images NOT built: scripts/build-debian-images exited with code 1");
    expect(output).toContain("ERROR: debootstrap failed\n==> end of the Debian test images' log");
    expect(output).toMatch(/runner-d-boots-debian\.test\.ts: FAILED, not run: it boots the Debian test images, which did not build/);
    expect(output).not.toContain("start " + join(dir, "runner-d"));
    expect(output.trimEnd().split("\n").at(-1)).toBe("1 passed, 1 failed");
  }, 60_000);

  test("--debian-images-job: a build that died without an exit code fails the files waiting for it instead of hanging", async () => {
    const job = join(dir, "job-died");
    await mkdir(job, { recursive: true });
    const dead = Bun.spawn(["true"]);
    await dead.exited;
    await writeFile(join(job, "pid"), String(dead.pid));
    const { exitCode, output } = await run("--debian-images-job", job, join(dir, "runner-d-boots-debian.test.ts"));
    expect(exitCode).toBe(1);
    expect(output).toContain(`scripts/build-debian-images (pid ${dead.pid}) ended without writing`);
    expect(output.trimEnd().split("\n").at(-1)).toBe("0 passed, 1 failed");
  }, 60_000);

  test("a bad --vms is refused with what was expected", async () => {
    const { exitCode, output } = await run("--vms", "two");
    expect(exitCode).toBe(2);
    expect(output).toContain('Cannot use --vms "two": expected a whole number of at least 1');
  });
});
