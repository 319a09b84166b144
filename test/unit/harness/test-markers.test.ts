import { describe, expect, test } from "bun:test";
import { parseTestMarkers } from "../../../qemu-harness/test-markers.ts";

// What a boot prints, the way the serial console delivers it: \r\n line ends,
// systemd's colours, and kernel messages landing between the init's lines.
const CONSOLE = [
  "\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39minitrd-switch-root.target\x1b[0m - Switch Root.",
  "[   20.483957] dracut: Mounted root filesystem /dev/loop0",
  "@@TEST init-started path=/sbin/alt-init pid=1",
  "@@TEST image-id system-b",
  "@@TEST root ro",
  "@@TEST etc fstype=tmpfs writable=yes",
  "@@TEST var-log fstype=tmpfs writable=yes",
  "@@TEST tmp fstype=squashfs writable=no",
  "@@TEST mount / squashfs ro,relatime,errors=continue /dev/loop0",
  "[   21.000001] EXT4-fs (vda3): mounted filesystem with ordered data mode",
  "@@TEST mount /opt/tools ext4 ro,relatime /dev/vda3",
  "@@TEST file /etc/hostname content=test-system",
  "@@TEST file /opt/tools/two-lines content=first\\nsecond \\\\ back",
  "@@TEST file /opt/none missing",
  "@@TEST file /opt/tools directory",
  "@@TEST something-new a b c",
  "@@REPORT-BEGIN",
  '{"slot": "SYSFS", "times":',
  "[1.5],",
  "[   21.500000] random: crng init done",
  ' "overmounts": [1, 2]}',
  "@@REPORT-END",
  "@@STATUS-BEGIN",
  "booted: SYSFS",
  "[   22.000000] loop1: detected capacity change",
  "overmounts: 2",
  "@@STATUS-END",
  "@@STATUS-EXIT 0",
  "controller: SYSFS on /dev/vda1 marked good (attempts 0)",
  "@@TEST mark-good exit=0",
  "@@TEST done",
  "test-system# echo @@TEST fake",
  "[   30.000000] EXT4-fs (vda1): re-mounted. Quota mode: none.",
  "@@TEST mark-shutdown exit=1",
]
  .map((line) => `${line}\r\n`)
  .join("");

describe("parseTestMarkers", () => {
  const markers = parseTestMarkers(CONSOLE);

  test("reads the facts about the booted system", () => {
    expect(markers.initStarted).toEqual({ path: "/sbin/alt-init", pid: 1 });
    expect(markers.imageId).toBe("system-b");
    expect(markers.root).toBe("ro");
    expect(markers.etc).toEqual({ fstype: "tmpfs", writable: true });
    expect(markers.varLog).toEqual({ fstype: "tmpfs", writable: true });
    expect(markers.tmp).toEqual({ fstype: "squashfs", writable: false });
    expect(markers.done).toBe(true);
  });

  test("reads mounts, skipping a kernel line between them", () => {
    expect(markers.mounts).toEqual([
      { target: "/", fstype: "squashfs", options: ["ro", "relatime", "errors=continue"], source: "/dev/loop0" },
      { target: "/opt/tools", fstype: "ext4", options: ["ro", "relatime"], source: "/dev/vda3" },
    ]);
  });

  test("reads files, undoing the one-line escaping", () => {
    expect(markers.files.get("/etc/hostname")).toEqual({ state: "content", content: "test-system" });
    expect(markers.files.get("/opt/tools/two-lines")).toEqual({ state: "content", content: "first\nsecond \\ back" });
    expect(markers.files.get("/opt/none")).toEqual({ state: "missing" });
    expect(markers.files.get("/opt/tools")).toEqual({ state: "directory" });
  });

  test("parses the report and the status output without the kernel lines in them (but keeps JSON that looks alike)", () => {
    expect(markers.reportState).toBe("printed");
    expect(markers.report).toEqual({ slot: "SYSFS", times: [1.5], overmounts: [1, 2] });
    expect(markers.status).toEqual({ output: "booted: SYSFS\novermounts: 2", exitCode: 0 });
  });

  test("reads how marking the slot good and recording the shutdown went", () => {
    expect(markers.markGood).toEqual({ state: "ran", exitCode: 0 });
    expect(markers.markShutdown).toEqual({ state: "ran", exitCode: 1 });
  });

  test("keeps every marker line, also unknown ones, but not a typed command that merely mentions one", () => {
    expect(markers.lines).toContain("something-new a b c");
    expect(markers.lines).toHaveLength(16);
    expect(markers.lines).not.toContain("fake");
  });
});

describe("parseTestMarkers on incomplete or broken output", () => {
  test("a boot without a report or status says so", () => {
    const markers = parseTestMarkers("@@TEST init-started path=/sbin/init pid=1\n@@REPORT missing\n");
    expect(markers.reportState).toBe("missing");
    expect(markers.report).toBeUndefined();
    expect(markers.status).toBeUndefined();
    expect(markers.done).toBe(false);
    expect(markers.markGood).toBeUndefined();
    expect(markers.markShutdown).toBeUndefined();
  });

  test("test.no_mark_good and test.unclean_shutdown: both steps skipped", () => {
    const markers = parseTestMarkers("@@TEST mark-good skipped\n@@TEST done\n@@TEST mark-shutdown skipped\n");
    expect(markers.markGood).toEqual({ state: "skipped" });
    expect(markers.markShutdown).toEqual({ state: "skipped" });
  });

  test("a console without markers gives empty results", () => {
    const markers = parseTestMarkers("[    0.000000] Linux version 6.1\nKernel panic - not syncing\n");
    expect(markers.lines).toEqual([]);
    expect(markers.mounts).toEqual([]);
    expect(markers.reportState).toBe("absent");
  });

  test("a status block cut off before its exit code keeps the output", () => {
    const markers = parseTestMarkers("@@STATUS-BEGIN\npartial\n@@STATUS-END\n");
    expect(markers.status).toEqual({ output: "partial", exitCode: undefined });
  });

  test("a report that is not JSON is an error that shows the text", () => {
    expect(() => parseTestMarkers("@@REPORT-BEGIN\n{broken\n@@REPORT-END\n")).toThrow(/not JSON.*\n\{broken/s);
  });

  test("a report cut off before its end marker is an error", () => {
    expect(() => parseTestMarkers('@@REPORT-BEGIN\n{"a":\n')).toThrow(/no @@REPORT-END/);
  });

  test("a malformed known marker is an error naming what was expected and found", () => {
    expect(() => parseTestMarkers("@@TEST etc fstype=tmpfs\n")).toThrow(
      'malformed console marker: expected fstype=... writable=..., found: "@@TEST etc fstype=tmpfs"',
    );
    expect(() => parseTestMarkers("@@TEST root maybe\n")).toThrow(/expected "ro" or "rw"/);
    expect(() => parseTestMarkers("@@TEST mount /x ext4\n")).toThrow(/TARGET FSTYPE OPTIONS SOURCE/);
    expect(() => parseTestMarkers("@@TEST mark-good exit=yes\n")).toThrow('malformed console marker: expected a whole number, found: "@@TEST mark-good exit=yes"');
    expect(() => parseTestMarkers("@@TEST mark-shutdown maybe\n")).toThrow(/expected exit=N or skipped/);
  });
});
