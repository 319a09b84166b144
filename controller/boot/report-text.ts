// `controller status`: the boot report, for a person, in the booted system.

import type { HealthRecord } from "../plans/slot-health.ts";
import type { SlotSummary } from "../plans/slot.ts";
import type { KernelSwitchResult } from "./kernel-switch.ts";
import { type BootReport, describeSubprocesses } from "./report.ts";
import { HEALTH_FILE, type LiveHealth } from "./slot-health.ts";

function list<T>(items: readonly T[], line: (item: T) => string, none = "none"): string[] {
  return items.length === 0 ? [`  ${none}`] : items.map((item) => `  ${line(item)}`);
}

function describeHealth(health: HealthRecord): string {
  return [
    `attempts ${health.attempts}`,
    health.markedGood ? `marked good${health.lastGoodAt === undefined ? "" : ` (last ${health.lastGoodAt})`}` : "never marked good",
    health.cleanShutdown ? "shut down cleanly" : "no clean shutdown recorded",
    ...(health.lastBootAt === undefined ? [] : [`last boot ${health.lastBootAt}`]),
    ...(health.deprivedReason === undefined ? [] : [`taken out of service ${health.deprivedAt ?? "(when unknown)"}: ${health.deprivedReason}`]),
  ].join(", ");
}

function describeLive(live: LiveHealth): string {
  switch (live.status) {
    case "read":
      return describeHealth(live.health);
    case "none":
      return `no ${HEALTH_FILE} on the slot yet`;
    case "invalid":
    case "unavailable":
      return `unknown: ${live.problem}`;
  }
}

/** One slot of the report, with its health as the boot saw it and, for the booted slot, as it is now. */
function slotLines(slot: SlotSummary, booted: boolean, live: LiveHealth | undefined): string[] {
  const version = slot.version === undefined ? `(${slot.record === "none" ? "no signed record" : "record does not verify"})` : `version ${slot.version}`;
  return [
    `  ${slot.device}  ${slot.label}  ${version}${booted ? "  (booted)" : ""}`,
    ...(slot.health === undefined ? [] : [`    health at boot: ${describeHealth(slot.health)}`]),
    ...(slot.conditions ?? []).map((c) => `    check ${c.condition}: ${c.result}${c.detail === "" ? "" : ` (${c.detail})`}`),
    ...(booted && live !== undefined ? [`    now: ${describeLive(live)}`] : []),
  ];
}

/** Which kernel runs, the one the booted image carries, and how this boot got onto it. */
function kernelLines(kernel: KernelSwitchResult, controller: BootReport["controller"]): string[] {
  const describe = (identity: { release: string; build?: string }) => `${identity.release}${identity.build === undefined ? "" : ` ${identity.build}`}`;
  return [
    `kernel: ${kernel.running === undefined ? "unknown" : describe(kernel.running)}; the image carries ${kernel.slotKernel === undefined ? "none" : describe(kernel.slotKernel)} (boot.kernel_switch "${kernel.mode}": ${kernel.outcome})`,
    ...(kernel.cameByKexec === undefined
      ? []
      : [`  came by kexec (rd.controller.kexec=${kernel.cameByKexec.marker}) from controller ${kernel.cameByKexec.by ?? "(not named)"}; this controller ${controller.version}+${controller.commit}`]),
    ...kernel.errors.map((error) => `  error: ${error}`),
    ...kernel.warnings.map((warning) => `  warning: ${warning}`),
  ];
}

/**
 * The report as text: what booted, from where, what was mounted, what went
 * wrong, how long it took. The report is the last boot's; `live` is the booted
 * slot's health.json as it is now (readLiveHealth), which mark-good and
 * mark-shutdown change after the boot.
 */
export function formatStatus(report: BootReport, live?: LiveHealth): string {
  const booted = report.boot.booted;
  const isBooted = (slot: SlotSummary) => booted !== undefined && slot.device === booted.device;
  // a failed slots stage leaves no slot entries; the booted slot's health is still worth showing
  const bootedUnlisted = booted !== undefined && live !== undefined && !report.update.slots.some(isBooted);
  const lines = [
    `controller ${report.controller.version} (${report.controller.commit}), boot started ${report.startedAt}`,
    `outcome: ${report.outcome}`,
    booted !== undefined
      ? `booted: ${booted.label} (${booted.role}) on ${booted.device}, image ${booted.image}, init ${report.handoff?.init.path ?? "chosen by dracut"}`
      : report.diskless?.status === "running-from-ram"
        ? `booted: version ${report.diskless.version} from RAM (diskless), image ${report.diskless.image}, init ${report.handoff?.init.path ?? "chosen by dracut"}`
        : "booted: nothing",
    ...(report.kernel === undefined ? [] : kernelLines(report.kernel, report.controller)),
    ...(report.machineId === undefined ? [] : [`machine-id: ${report.machineId.detail}`]),
    ...(report.diskless === undefined ? [] : [`diskless: ${report.diskless.status}: ${report.diskless.detail}`, `  because ${report.diskless.why}`]),
    "decisions:",
    ...list(report.decisions, (d) => d),
    "slots:",
    ...(report.update.slots.length === 0 && !bootedUnlisted ? ["  none"] : report.update.slots.flatMap((s) => slotLines(s, isBooted(s), live))),
    ...(bootedUnlisted ? [`  ${booted.device}  ${booted.label}  (booted)`, `    now: ${describeLive(live)}`] : []),
    `update: ${report.update.check.decision}: ${report.update.check.reason}`,
    ...(report.update.install === undefined
      ? []
      : [`  install: ${report.update.install.detail} (${report.update.install.bytesFetched} bytes in ${report.update.install.durationMs} ms)`]),
    ...(report.update.network.interfaces ?? []).map((i) => `network: ${i.name}: ${i.address ?? "no address"} (${i.detail})`),
    ...(report.services?.ssh === undefined ? [] : [`ssh: ${report.services.ssh.status}: ${report.services.ssh.detail}`]),
    ...(report.services?.lldpd === undefined ? [] : [`lldpd: ${report.services.lldpd.status}: ${report.services.lldpd.detail}`]),
    ...(report.wait === undefined ? [] : [`wait: ${report.wait.detail}`]),
    ...(report.command === undefined ? [] : [`command: ${report.command.status}: ${report.command.detail}`]),
    "partitions:",
    ...list(report.partitions, (p) => `${p.device}  ${p.fsType ?? "-"}  ${p.label ?? "(no label)"}`),
    "mounts:",
    ...list(report.mounts, (m) => `${m.target}  ${m.fsType}  ${m.source}  (${m.purpose})`),
    "overmounts:",
    ...list(report.overmounts, (o) => `${o.entry}: ${o.status}${o.target === undefined ? "" : ` on ${o.target}`}${o.detail === "" ? "" : ` (${o.detail})`}`),
    "config:",
    ...list(report.config.layers, (l) => `${l.source}: ${l.status}`),
    ...report.config.problems.map((p) => `  problem: ${p}`),
    "warnings and errors:",
    ...list(report.notices, (n) => `${n.level}: ${n.scope === "" ? "" : `${n.scope}: `}${n.message}`),
    "stages (ms since the controller started):",
    ...list(report.stages, (s) => `${s.stage.padEnd(13)} at ${String(s.startMs).padStart(6)}  took ${String(s.durationMs).padStart(6)}  ${s.outcome}${s.error === undefined ? "" : `: ${s.error}`}`),
    `subprocesses: ${describeSubprocesses(report.subprocesses)}`,
  ];
  return `${lines.join("\n")}\n`;
}
