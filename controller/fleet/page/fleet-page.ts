// The fleet's page (GET /): the filters as a GET form, the counts per booted
// version and per offered version (how far each rollout has gone), and one
// row per machine, MACHINES_PER_PAGE at most, with links to the other pages.
// Pure: the machines, the filter, the page and the server's clock in, the
// page out; every value a machine sent goes through html``'s escaping.

import { isMachineId } from "../envelope.ts";
import type { MachineRecord } from "../store.ts";
import { type FleetFilter, filterQuery, filtering, matchesFilter, PAGE_PARAMETER, VERSION_MAX } from "./filters.ts";
import { HEALTH_WORDS, type HealthWord, healthWord, NOT_SEEN_HOURS } from "./health.ts";
import { type Html, html } from "./html.ts";
import { clip, pageDocument } from "./layout.ts";
import { countRollouts, countVersions, type RolloutCount, type VersionCount } from "./rollout.ts";
import { describeDuration, describeTime, utcMinute } from "./time.ts";

/**
 * At most this many machines in the table of one page: a lab of 40 machines
 * sees them all on one, while 1000 machines made 555 KB for the whole page
 * (bench/RESULTS.md), about 0.6 s to the load event in chromium; a page of
 * 200 is a fifth of that.
 */
export const MACHINES_PER_PAGE = 200;

/** Page `page` of a table of `count` machines, of `pages` (1 for an empty table): it shows the machines from index `first` to before `end`, none past the last page. */
interface PageSpan {
  readonly page: number;
  readonly pages: number;
  readonly first: number;
  readonly end: number;
}

/** Pure: which of `count` machines page `page` (from 1) shows. */
function pageSpan(count: number, page: number): PageSpan {
  const first = Math.min((page - 1) * MACHINES_PER_PAGE, count);
  return { page, pages: Math.max(1, Math.ceil(count / MACHINES_PER_PAGE)), first, end: Math.min(first + MACHINES_PER_PAGE, count) };
}

/** The fleet's page itself at `page` with `filter`, relative as machineHref is; page 1 without the parameter, as the form asks for it. */
function pageHref(filter: FleetFilter, page: number): string {
  const query = filterQuery(filter);
  if (page > 1) query.set(PAGE_PARAMETER, String(page));
  return query.size === 0 ? "./" : `./?${query}`;
}

/** The machine's page, relative to the fleet's (so the pages work behind a proxy under any prefix); undefined for an id that is not one. */
export function machineHref(machineId: string): string | undefined {
  return isMachineId(machineId) ? `machines/${machineId}` : undefined;
}

export function healthCell(word: HealthWord): Html {
  return html`<span class="health health-${word.replaceAll(" ", "-")}">${word}</span>`;
}

function option(value: string, text: string, selected: boolean): Html {
  return html`<option value="${value}"${selected ? html` selected` : undefined}>${text}</option>`;
}

function filterForm(machines: readonly MachineRecord[], filter: FleetFilter): Html {
  // a version too long for the filter to take is not offered: choosing it would answer 400
  const versions = [...new Set(machines.flatMap((machine) => machine.lastBoot?.version ?? []))].filter((version) => version.length <= VERSION_MAX).sort();
  return html`<form method="get" action="./">
<label>Version <select name="version">${option("", "any", filter.version === undefined)}${versions.map((version) => option(version, clip(version, 40), version === filter.version))}</select></label>
<label>Health <select name="health">${option("", "any", filter.health === undefined)}${HEALTH_WORDS.map((word) => option(word, word, word === filter.health))}</select></label>
<label>Rolled back <select name="rolledBack">${option("", "any", filter.rolledBack === undefined)}${option("yes", "at least once", filter.rolledBack === true)}${option("no", "never", filter.rolledBack === false)}</select></label>
<label>Not seen for more than (hours) <input type="number" name="notSeenHours" min="0" step="any" value="${filter.notSeenHours ?? ""}" placeholder="${NOT_SEEN_HOURS}"></label>
<button type="submit">Filter</button>${filtering(filter) ? html` <a href="./">Clear</a>` : undefined}
</form>`;
}

function versionTable(counts: readonly VersionCount[]): Html {
  if (counts.length === 0) return html`<p class="small">No machine has reported a boot yet.</p>`;
  return html`<div class="scroll"><table id="versions">
<thead><tr><th>Version booted</th><th class="number">Machines</th><th class="number">Good</th><th class="number">Rolled back</th></tr></thead>
<tbody>${counts.map(
    (count) =>
      html`<tr><td>${count.version === undefined ? html`<span class="small">none</span>` : clip(count.version)}</td><td class="number">${count.machines}</td><td class="number">${count.good}</td><td class="number">${count.rolledBack}</td></tr>`,
  )}</tbody>
</table></div>`;
}

function rolloutTable(rollouts: readonly RolloutCount[]): Html {
  if (rollouts.length === 0) return html`<p class="small">No update check offered a version yet.</p>`;
  return html`<div class="scroll"><table id="rollouts">
<thead><tr><th>Version offered</th><th class="number">Share</th><th class="number">Running it</th><th class="number">Installing</th><th class="number">Not in rollout</th><th class="number">Outside window</th></tr></thead>
<tbody>${rollouts.map((rollout) => {
    const waiting = rollout.installing + rollout.notInRollout + rollout.outsideWindow;
    const share = rollout.percent === undefined ? "" : `${rollout.percent} %`;
    return html`<tr><td>${clip(rollout.version)}</td><td class="number">${share}</td><td class="number">${rollout.running} of ${rollout.running + waiting}</td><td class="number">${rollout.installing}</td><td class="number">${rollout.notInRollout}</td><td class="number">${rollout.outsideWindow}</td></tr>`;
  })}</tbody>
</table></div>`;
}

/** Above and below the table: where this page is, and links to the pages around it; none where there is nothing to go to. */
function pageLinks(filter: FleetFilter, span: PageSpan): Html {
  const link = (page: number, text: string) => html`<a href="${pageHref(filter, page)}">${text}</a>`;
  const before = span.page > 1 ? [link(1, "First"), link(span.page - 1, "← Previous")] : [];
  const after = span.page < span.pages ? [link(span.page + 1, "Next →"), link(span.pages, "Last")] : [];
  return html`<nav class="pages">${before}<span>Page ${span.page} of ${span.pages}</span>${after}</nav>`;
}

function machineRow(machine: MachineRecord, now: Date, notSeenHours: number): Html {
  const boot = machine.lastBoot;
  const href = machineHref(machine.machineId);
  const name = html`${clip(machine.hostname, 63)}<br><span class="small">${machine.machineId.slice(0, 8)}</span>`;
  return html`<tr>
<td>${href === undefined ? name : html`<a href="${href}">${name}</a>`}</td>
<td>${boot?.version === undefined ? undefined : clip(boot.version)}</td>
<td>${boot?.slot === undefined ? undefined : html`${clip(boot.slot.label, 40)}<br><span class="small">${clip(boot.slot.device, 60)}</span>`}</td>
<td>${healthCell(healthWord(machine, now, notSeenHours))}</td>
<td>${boot?.startedAt === undefined ? undefined : describeTime(clip(boot.startedAt, 40), now)}</td>
<td>${machine.lastMarkGoodAt === undefined ? html`<span class="small">never</span>` : describeTime(machine.lastMarkGoodAt, now)}</td>
<td class="number">${machine.rollbacks}</td>
<td>${boot?.update === undefined ? undefined : html`<strong>${clip(boot.update.decision, 40)}</strong><br><span class="small">${clip(boot.update.reason, 200)}</span>`}</td>
<td class="number">${boot?.durationMs === undefined ? undefined : describeDuration(boot.durationMs)}</td>
<td>${describeTime(machine.lastSeenAt, now)}</td>
</tr>`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** The machines' table on page `span`, with its links when there are pages; a sentence instead when it has no row. */
function machineTable(machines: readonly MachineRecord[], shown: readonly MachineRecord[], filter: FleetFilter, span: PageSpan, now: Date): Html {
  if (shown.length === 0) return html`<p id="no-machines">${machines.length === 0 ? "No machine has reported yet." : "No machine matches the filter."}</p>`;
  if (span.first === span.end) {
    // a page past the last is no mistake to refuse: the fleet shrank, or a filter changed, since its link was made
    const pages = span.pages === 1 ? "page 1" : `pages 1–${span.pages}`;
    return html`<p id="no-machines">No machines on page ${span.page}: ${filtering(filter) ? "the filter matches" : "the fleet has"} ${plural(shown.length, "machine")}, ${pages}. <a href="${pageHref(filter, span.pages)}">The last page</a></p>`;
  }
  const notSeenHours = filter.notSeenHours ?? NOT_SEEN_HOURS;
  const links = span.pages > 1 ? pageLinks(filter, span) : undefined;
  return html`${links}<div class="scroll"><table id="machines">
<thead><tr><th>Machine</th><th>Version</th><th>Slot</th><th>Health</th><th>Last boot</th><th>Marked good</th><th class="number">Rollbacks</th><th>Update check</th><th class="number">Boot time</th><th>Last seen</th></tr></thead>
<tbody>${shown.slice(span.first, span.end).map((machine) => machineRow(machine, now, notSeenHours))}</tbody>
</table></div>${links}`;
}

/** Pure: the fleet's page for `machines`, those that pass `filter` in the table, page `page` of it, counted at `now`; the Versions and Rollouts tables count them all. */
export function fleetPage(machines: readonly MachineRecord[], filter: FleetFilter, now: Date, page = 1): Html {
  // in the store's order, by machine-id: the same at every load, so each page
  // starts where the one before it ended (a machine new since then moves the
  // machines after it by one)
  const shown = machines.filter((machine) => matchesFilter(machine, filter, now));
  const span = pageSpan(shown.length, page);
  const matched = filtering(filter) ? `, ${shown.length} shown` : "";
  const paged = span.pages > 1 && span.first < span.end ? `, page ${span.page} of ${span.pages}, machines ${span.first + 1}–${span.end}` : "";
  return pageDocument(
    "Fleet",
    html`<h1>Fleet</h1>
<p class="small">${plural(machines.length, "machine")}${matched}${paged}. Times in UTC; "ago" by the server's clock, ${utcMinute(now.toISOString())}. A last boot's time is the machine's own clock.</p>
${filterForm(machines, filter)}
<h2>Versions</h2>
${versionTable(countVersions(machines, now))}
<h2>Rollouts</h2>
${rolloutTable(countRollouts(machines))}
<h2>Machines</h2>
${machineTable(machines, shown, filter, span, now)}`,
  );
}
