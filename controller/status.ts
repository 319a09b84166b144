// `controller status`: the boot report, for a person, in the booted system.

import type { BootReport } from "./report.ts";

function list<T>(items: readonly T[], line: (item: T) => string, none = "none"): string[] {
  return items.length === 0 ? [`  ${none}`] : items.map((item) => `  ${line(item)}`);
}

/** The report as text: what booted, from where, what was mounted, what went wrong, how long it took. */
export function formatStatus(report: BootReport): string {
  const booted = report.boot.booted;
  const lines = [
    `controller ${report.controller.version} (${report.controller.commit}), boot started ${report.startedAt}`,
    `outcome: ${report.outcome}`,
    booted === undefined
      ? "booted: nothing"
      : `booted: ${booted.label} (${booted.role}) on ${booted.device}, image ${booted.image}, init ${report.handoff?.init.path ?? "chosen by dracut"}`,
    "decisions:",
    ...list(report.decisions, (d) => d),
    "slots:",
    ...list(report.update.slots, (s) => `${s.device}  ${s.label}  ${s.version === undefined ? `(${s.record === "none" ? "no signed record" : "record does not verify"})` : `version ${s.version}`}`),
    `update: ${report.update.check.decision}: ${report.update.check.reason}`,
    ...(report.update.install === undefined
      ? []
      : [`  install: ${report.update.install.detail} (${report.update.install.bytesFetched} bytes in ${report.update.install.durationMs} ms)`]),
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
  ];
  return `${lines.join("\n")}\n`;
}
