// The power-cut proof: an update of a machine running 1.0 to 2.0 (system-a to
// system-c), with QEMU killed (SIGKILL, no shutdown of any kind) at every cut
// point of controller/system/cut-points.ts: the kernel command line names the point
// (rd.controller.cut=POINT), the controller stops dead there and says so, and
// the test kills the VM. Then the machine boots without a network (it must
// reach a verified system, old or new, never a half image) and once more with
// the server back (it must finish the update). Two VMs run at a time.
//
// The update is a delta install: SYSFS keeps system-a's chunk index with its
// record, as every install since delta updates leaves it, so the install
// copies most of 2.0 from SYSFS and fetches the rest by Range; a cut in the
// middle leaves a file of copied and fetched chunks to resume. One more row
// cuts the whole-image install in the middle, the first update of a machine
// whose slots keep no index (installed before delta updates).
//
// Each row's cut boot resumes a VM state saved at dracut's pre-mount break,
// before the controller starts (saved-cut-boot.ts), one per disk, on a copy of
// the disk it was saved with: the 18 rows boot the kernel, dracut and udev
// twice, not 18 times. The boots after the cut start from nothing.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { BootReport } from "../../controller/boot/report.ts";
import { formatMB } from "../../controller/boot/image-download.ts";
import { CUT_POINTS, type CutPoint } from "../../controller/system/cut-points.ts";
import { parseTestMarkers, type TestMarkers } from "../../qemu-harness/test-markers.ts";
import { withVm } from "../../qemu-harness/vm.ts";
import { BOOT_TIMEOUT_MS, type Boot, NO_NIC_WAIT, SHUTDOWN_TIMEOUT_MS, textTable, vmOptions } from "./fixtures.ts";
import { cutFromSavedBoot, type SavedCutBoot, saveCutBoot } from "./saved-cut-boot.ts";
import { indexedDisk, type UpdateWorld, updateWorld } from "./update-fixtures.ts";

const PARALLEL_VMS = 2;
/** POWER_CUT_POINTS=download-written,image-verified reruns only those rows */
const ONLY_POINTS = process.env.POWER_CUT_POINTS?.split(",");

/** how the row's install gets the new image: a delta from SYSFS's chunks, or all of it from the server */
type Install = "delta" | "whole image";
interface PlannedRow {
  readonly point: CutPoint;
  readonly install: Install;
}
const PLANNED_ROWS: readonly PlannedRow[] = [...CUT_POINTS.map((point) => ({ point, install: "delta" as const })), { point: "download-half", install: "whole image" }];

let world: UpdateWorld;
let saved: Record<Install, SavedCutBoot>;
beforeAll(async () => {
  world = await updateWorld();
  world.server.serve("newer");
  const disks: Record<Install, string> = { delta: await indexedDisk(world, "power-cut-indexed"), "whole image": world.disk };
  const save = (install: Install, name: string) => saveCutBoot(vmOptions({ flavour: "shell", disk: disks[install], hostPorts: [world.server.port] }), world.work, name, BOOT_TIMEOUT_MS);
  const [delta, whole] = await Promise.all([save("delta", "power-cut-saved-delta"), save("whole image", "power-cut-saved-whole")]);
  saved = { delta, "whole image": whole };
}, 300_000 + BOOT_TIMEOUT_MS);

interface Row extends PlannedRow {
  readonly cut: string;
  readonly next: string;
  /** which slots the next boot's e2fsck ran on, and why; the others' superblocks said clean */
  readonly fsck: string;
  readonly after: string;
  readonly problems: string[];
}
const rows: Row[] = [];

afterAll(() => {
  if (rows.length === 0) return;
  const table = [
    ["cut point", "install", "cut", "next boot (no network)", "its e2fsck runs", "boot after (server back)", "result"],
    ...rows.map((row) => [row.point, row.install, row.cut, row.next, row.fsck, row.after, row.problems.length === 0 ? "pass" : `FAIL: ${row.problems.join("; ")}`]),
  ];
  console.log(`\npower-cut table:\n${textTable(table)}\n`);
});

/**
 * Boots to the test system's end and returns what it printed. Its clean
 * shutdown is waited for, since the boot after it starts from what that left;
 * the row's last boot is killed once its boot report is out (what the row reads
 * of it), before the test system's mark-good, which nothing after it needs.
 */
async function bootToEnd(boot: Boot, last = false): Promise<{ markers: TestMarkers; console: string }> {
  return withVm(vmOptions(boot), async (vm) => {
    await vm.waitFor(last ? "@@REPORT-END" : "@@TEST done", BOOT_TIMEOUT_MS);
    if (!last) await vm.waitForExit(SHUTDOWN_TIMEOUT_MS);
    return { markers: parseTestMarkers(vm.console()), console: vm.console() };
  });
}

/** "BACKUPFS: its journal needs recovery" for each slot the slots stage ran e2fsck on (its console lines), or "none". */
function e2fsckRuns(console: string): string {
  const runs = [...console.matchAll(/controller: slots: (\S+) on \S+: fsck \w+: [^\n]*e2fsck -p[^\n]*, run because ([^\n]*)/g)];
  return runs.length === 0 ? "none" : runs.map(([, label, why]) => `${label}: ${why?.trim()}`).join("; ");
}

/**
 * "system-c 2.0 verified" or what went wrong; with what a boot that installed
 * fetched and copied, which must be a delta's few fetched bytes in a delta row
 * and nothing copied in a whole-image one.
 */
function describeBoot(markers: TestMarkers, install: Install, problems: string[], when: string): string {
  if (markers.reportState !== "printed") {
    problems.push(`${when}: no boot report`);
    return `no report (image ${markers.imageId ?? "none"})`;
  }
  const report = markers.report as BootReport;
  const device = report.boot.booted?.device;
  const expected = markers.imageId === "system-c" ? "2.0" : markers.imageId === "system-a" ? "1.0" : undefined;
  if (expected === undefined) problems.push(`${when}: booted ${markers.imageId ?? "nothing"}, expected system-a or system-c`);
  const installed = report.update.install;
  let version: string | undefined;
  let how: string;
  if (installed?.status === "installed" && installed.device === device && report.update.switched !== undefined) {
    // installed and switched to on this very boot: the install hashed the image from the disk
    version = installed.version;
    const size = report.update.check.manifest?.image.size ?? 0;
    how = `installed (fetched ${formatMB(installed.bytesFetched)}, copied ${formatMB(installed.bytesCopied)}) and verified on this boot`;
    if (install === "delta" && installed.bytesFetched > size / 4) problems.push(`${when}: a delta install fetched ${installed.bytesFetched} of the image's ${size} bytes`);
    if (install === "whole image" && installed.bytesCopied > 0) problems.push(`${when}: a whole-image install copied ${installed.bytesCopied} bytes`);
  } else {
    const booted = report.update.slots.find((slot) => slot.device === device);
    const hash = booted?.conditions?.find((condition) => condition.condition === "image-hash");
    version = booted?.version;
    how = hash?.result === "pass" ? "verified" : "NOT verified";
    if (hash?.result !== "pass") problems.push(`${when}: the booted image's hash check is ${hash?.result ?? "missing"}: ${hash?.detail ?? ""}`);
  }
  if (expected !== undefined && version !== expected) problems.push(`${when}: ${markers.imageId} booted from a slot recording version ${version ?? "none"}`);
  return `${markers.imageId ?? "nothing"} ${version ?? "?"} ${how} (${report.boot.booted?.label ?? "?"} on ${device ?? "?"})`;
}

/** What the report says held the update back: the check's reason and the install's detail. */
function whyNoUpdate(markers: TestMarkers): string {
  if (markers.reportState !== "printed") return "no boot report";
  const { update } = markers.report as BootReport;
  return [`check: ${update.check.decision}, ${update.check.reason}`, update.install === undefined ? "no install" : `install: ${update.install.status}, ${update.install.detail}`].join("; ");
}

/** Where a row stands among the planned ones: the table's order. */
function rowOrder(row: Row): number {
  return PLANNED_ROWS.findIndex((planned) => planned.point === row.point && planned.install === row.install);
}

async function cutAndRecover({ point, install }: PlannedRow): Promise<Row> {
  const disk = join(world.work, `power-cut-${point}-${install === "delta" ? "delta" : "whole"}.qcow2`);
  const problems: string[] = [];
  const online = { hostPorts: [world.server.port], writeDisks: true, flavour: "shell" as const, disk, diskFormat: "qcow2" as const };
  try {
    await cutFromSavedBoot(saved[install], disk, point, BOOT_TIMEOUT_MS);
    const cut = "killed there";
    const nextBoot = await bootToEnd({ flavour: "shell", disk, diskFormat: "qcow2", writeDisks: true, append: NO_NIC_WAIT });
    const next = describeBoot(nextBoot.markers, install, problems, "next boot");
    const fsck = e2fsckRuns(nextBoot.console);
    const afterMarkers = (await bootToEnd(online, true)).markers;
    const after = describeBoot(afterMarkers, install, problems, "boot after");
    if (afterMarkers.imageId !== "system-c") {
      problems.push(`boot after: the update did not finish (${afterMarkers.imageId ?? "nothing"} booted): ${whyNoUpdate(afterMarkers)}`);
    }
    return { point, install, cut, next, fsck, after, problems };
  } finally {
    await rm(disk, { force: true });
  }
}

test(
  `a power cut at each of the ${CUT_POINTS.length} cut points of a delta update, and in the middle of a whole-image one, leaves a machine that boots a verified system and finishes the update`,
  async () => {
    expect(CUT_POINTS.length).toBeGreaterThanOrEqual(12);
    expect(ONLY_POINTS?.filter((point) => !(CUT_POINTS as readonly string[]).includes(point)) ?? []).toEqual([]);
    const queue = PLANNED_ROWS.filter((row) => ONLY_POINTS === undefined || ONLY_POINTS.includes(row.point));
    const worker = async () => {
      for (let row = queue.shift(); row !== undefined; row = queue.shift()) rows.push(await cutAndRecover(row));
    };
    await Promise.all(Array.from({ length: PARALLEL_VMS }, worker));
    rows.sort((a, b) => rowOrder(a) - rowOrder(b));
    expect(rows.filter((row) => row.problems.length > 0)).toEqual([]);
    // a cut while the spare is mounted read-write leaves its journal to replay: the next boot's
    // superblock reading must send it to e2fsck (ext-superblock.ts), not call it clean
    for (const midDownload of rows.filter((row) => row.point === "download-half")) expect(midDownload.fsck).toMatch(/journal needs recovery/);
  },
  PLANNED_ROWS.length * 6 * 60_000,
);
