// One machine's page (GET /machines/MACHINE-ID): what its latest reports say,
// its history (every report kept, newest first) and its last boot report
// whole, as the JSON text it is. Pure, and every value escaped, as on the
// fleet's page. A fact the last boot report does not give reads "unknown";
// one it gives as absent (no rollback, nothing offered) reads "none".

import { summarizeBootReport, type UpdateSummary } from "../boot-summary.ts";
import type { MachineRecord, StoredReport } from "../store.ts";
import { healthCell } from "./fleet-page.ts";
import { healthWord } from "./health.ts";
import { type Html, type HtmlValue, html } from "./html.ts";
import { clip, pageDocument } from "./layout.ts";
import { describeDuration, describeTime } from "./time.ts";

function field(name: string, value: HtmlValue): Html {
  return html`<dt>${name}</dt><dd>${value === undefined ? html`<span class="small">unknown</span>` : value}</dd>`;
}

/**
 * What the update check was offered; "none" when it decided without a manifest (no server
 * configured or reached): "unknown" only when the report has no update check at all.
 */
function offeredText(update: UpdateSummary | undefined): string | undefined {
  if (update === undefined) return undefined;
  if (update.offered === undefined) return "none";
  const { version, rolloutPercent } = update.offered;
  return `${version}${rolloutPercent === undefined ? "" : ` (rolled out to ${rolloutPercent} %)`}`;
}

function facts(machine: MachineRecord, now: Date): Html {
  const boot = machine.lastBoot;
  const health = boot?.health;
  return html`<dl id="facts">
${field("Machine-id", machine.machineId)}
${field("MACs", machine.macs.length === 0 ? "none" : machine.macs.join(", "))}
${field("Health", healthCell(healthWord(machine, now)))}
${field("Version booted", boot?.version)}
${field("Slot", boot?.slot === undefined ? undefined : `${boot.slot.label} on ${boot.slot.device} (${boot.slot.role})`)}
${field("Slot's health", health === undefined ? undefined : `${health.attempts} ${health.attempts === 1 ? "boot" : "boots"} since the last mark-good; ${health.markedGood ? "marked good before" : "never marked good"}; ${health.cleanShutdown ? "clean shutdown" : "no clean shutdown yet"}`)}
${field("Outcome", boot?.outcome)}
${field("Last boot", boot?.startedAt === undefined ? undefined : `${describeTime(boot.startedAt, now)}, by the machine's clock`)}
${field("Boot time", boot?.durationMs === undefined ? undefined : describeDuration(boot.durationMs))}
${field("Marked good", machine.lastMarkGoodAt === undefined ? "never" : describeTime(machine.lastMarkGoodAt, now))}
${field("Rollbacks", machine.rollbacks)}
${field("Rollback", boot === undefined ? undefined : (boot.rollback ?? "none"))}
${field("Update check", boot?.update === undefined ? undefined : html`<strong>${boot.update.decision}</strong>: ${boot.update.reason}`)}
${field("Offered", offeredText(boot?.update))}
${field("Controller", boot?.controllerVersion)}
${field("First seen", describeTime(machine.firstSeenAt, now))}
${field("Last seen", `${describeTime(machine.lastSeenAt, now)}, a ${machine.lastKind} report`)}
${field("Reports kept", machine.reports)}
</dl>`;
}

function historyRow(report: StoredReport, now: Date): Html {
  const summary = report.report === undefined ? undefined : summarizeBootReport(report.report);
  return html`<tr>
<td>${describeTime(report.receivedAt, now)}</td>
<td>${report.kind}</td>
<td>${clip(report.hostname, 63)}</td>
<td>${summary?.version === undefined ? undefined : clip(summary.version)}</td>
<td>${summary?.outcome === undefined ? undefined : clip(summary.outcome, 40)}</td>
<td>${summary?.update === undefined ? undefined : html`<strong>${clip(summary.update.decision, 40)}</strong><br><span class="small">${clip(summary.update.reason, 200)}</span>`}</td>
<td>${summary?.rollback === undefined ? undefined : clip(summary.rollback, 200)}</td>
<td>${clip(report.sentAt, 40)}</td>
</tr>`;
}

/** Pure: `machine`'s page with its kept reports, newest first, at `now`. */
export function machinePage(machine: MachineRecord, reports: readonly StoredReport[], now: Date): Html {
  const lastBoot = reports.find((report) => report.report !== undefined);
  return pageDocument(
    `${clip(machine.hostname, 63)}: fleet`,
    html`<p><a href="../">← Fleet</a></p>
<h1>${clip(machine.hostname, 63)}</h1>
${facts(machine, now)}
<h2>History</h2>
<div class="scroll"><table id="history">
<thead><tr><th>Received</th><th>Kind</th><th>Hostname</th><th>Version</th><th>Outcome</th><th>Update check</th><th>Rollback</th><th>Sent (machine's clock)</th></tr></thead>
<tbody>${reports.map((report) => historyRow(report, now))}</tbody>
</table></div>
<h2>Last boot report</h2>
${
  lastBoot === undefined
    ? html`<p class="small">No boot report is kept.</p>`
    : html`<p class="small">Received ${describeTime(lastBoot.receivedAt, now)}, as the machine sent it.</p>
<pre id="report">${JSON.stringify(lastBoot.report, null, 2)}</pre>`
}`,
  );
}
