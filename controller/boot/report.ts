// The boot report: one JSON file in /run/controller that the booted system
// reads (`controller status`) to learn what the controller saw, decided and
// mounted, what went wrong, and how long each stage took.

import type { Cmdline } from "../config/cmdline.ts";
import type { ResolvedConfig } from "../config/layers.ts";
import type { BootPlan } from "../plans/boot-order.ts";
import type { HealthRecord } from "../plans/slot-health.ts";
import type { SlotSummary } from "../plans/slot.ts";
import type { Notice } from "../system/log.ts";
import { REPORT_PATH, RUN_DIR } from "../system/paths.ts";
import type { BlockDevice, System } from "../system/system.ts";
import { COMMIT, VERSION } from "../system/version.ts";
import type { BootextResult } from "./bootext.ts";
import type { CommandResult } from "./command-url.ts";
import type { DisklessReport } from "./diskless-report.ts";
import type { HandoffResult } from "./handoff.ts";
import type { HeddleResult } from "./heddle.ts";
import type { KernelSwitchResult } from "./kernel-switch.ts";
import type { MachineIdResult } from "./machine-id.ts";
import type { MountsResult } from "./mounts.ts";
import type { NetworkResult } from "./network.ts";
import type { OvermountOutcome } from "./overmounts.ts";
import type { WaitResult } from "./services-wait.ts";
import type { ServicesReport } from "./services.ts";
import type { CheckSummary } from "./update-check.ts";
import type { ServerConfigSummary } from "./update-config.ts";
import type { InstallResult } from "./update-install.ts";

/** Bumped when a field changes meaning, so tools reading reports can tell. */
export const REPORT_FORMAT = 1;

export interface StageTiming {
  readonly stage: string;
  /** since the controller started */
  readonly startMs: number;
  readonly durationMs: number;
  readonly outcome: "ok" | "failed";
  readonly error?: string;
}

/** What the update servers changed about this boot, and why. */
export interface UpdateReport {
  /** the slot partitions and the versions their signed records verify */
  readonly slots: readonly SlotSummary[];
  /** label changes that finished a switch cut short on an earlier boot */
  readonly repairs: readonly string[];
  readonly network: NetworkResult;
  readonly check: CheckSummary;
  serverConfig?: ServerConfigSummary;
  install?: InstallResult;
  /** the label writes of the switch, "DEVICE OLD -> NEW" */
  switched?: readonly string[];
}

/** The subprocesses a boot started: under QEMU's TCG each costs tens of ms, so the report keeps count. */
export interface SubprocessCount {
  readonly count: number;
  /** program (argv[0]) to how many times it ran */
  readonly programs: Readonly<Record<string, number>>;
}

export function countSubprocesses(programs: readonly string[]): SubprocessCount {
  const tally: Record<string, number> = {};
  for (const program of programs) tally[program] = (tally[program] ?? 0) + 1;
  return { count: programs.length, programs: tally };
}

/** "9 subprocesses (mount 4, e2fsck 2, blkid 1, …)", most frequent first: the console's "done in" line. */
export function describeSubprocesses(count: SubprocessCount): string {
  const programs = Object.entries(count.programs).sort(([a, m], [b, n]) => n - m || (a < b ? -1 : 1));
  const list = programs.map(([program, times]) => `${program} ${times}`).join(", ");
  return `${count.count} ${count.count === 1 ? "subprocess" : "subprocesses"}${list === "" ? "" : ` (${list})`}`;
}

export type BootOutcome = "handed-off" | "nothing-bootable";

export interface BootReport {
  readonly format: typeof REPORT_FORMAT;
  readonly controller: { readonly version: string; readonly commit: string };
  readonly startedAt: string;
  readonly finishedAt: string;
  /** seconds since the kernel started, when the controller started (from /proc/uptime) */
  readonly kernelUptimeAtStart?: number;
  /**
   * seconds since the kernel started, when the controller's process was made (/proc/self/stat, in
   * 10 ms steps): kernelUptimeAtStart minus this is bun's own start, the runtime and the bundle's load
   */
  readonly kernelUptimeAtProcessStart?: number;
  readonly outcome: BootOutcome;
  readonly decisions: readonly string[];
  readonly cmdline: Cmdline;
  readonly config: {
    readonly values: ResolvedConfig["config"];
    readonly provenance: ResolvedConfig["provenance"];
    readonly layers: ResolvedConfig["layers"];
    readonly problems: ResolvedConfig["problems"];
  };
  readonly partitions: readonly BlockDevice[];
  readonly update: UpdateReport;
  readonly bootext: Omit<BootextResult, "layers">;
  /** Heddle's updates: which were found, which was chosen and why, and how its kexec went */
  readonly heddle?: HeddleResult;
  readonly boot: BootPlan &
    Pick<MountsResult, "failedSlots"> & {
      readonly booted?: MountsResult["booted"];
      /** the booted slot's life cycle after this boot was counted on it */
      readonly health?: HealthRecord;
    };
  readonly mounts: MountsResult["mounts"];
  readonly tmpfs: MountsResult["tmpfs"];
  /** where /etc/machine-id came from: kept on BOOTEXT, made now, or the image's; absent when nothing booted and on a diskless boot */
  readonly machineId?: MachineIdResult;
  readonly overmounts: readonly OvermountOutcome[];
  /** the kernel this boot runs against the one the booted slot's image carries, and how the boot got onto it */
  readonly kernel?: KernelSwitchResult;
  /** ssh and lldpd in the initramfs, when the command line asked for them */
  readonly services?: ServicesReport;
  /** command_url=: fetched, checked, run */
  readonly command?: CommandResult;
  /** with ssh: how the wait for `controller continue` ended */
  readonly wait?: WaitResult;
  readonly handoff?: HandoffResult;
  /** a boot from RAM (diskless.ts): why, the image, the RAM it needed, the download */
  readonly diskless?: DisklessReport;
  readonly notices: readonly Notice[];
  readonly stages: readonly StageTiming[];
  /** every subprocess up to the report, handoff included */
  readonly subprocesses: SubprocessCount;
}

export const REPORT_HEADER = { format: REPORT_FORMAT, controller: { version: VERSION, commit: COMMIT } } as const;

export async function writeReport(system: System, report: BootReport): Promise<void> {
  await system.mkdir(RUN_DIR);
  await system.writeText(REPORT_PATH, `${JSON.stringify(report, null, 2)}\n`);
}
