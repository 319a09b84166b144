// The fleet's page and a machine's page (fleet/page/fleet-page.ts,
// machine-page.ts) rendered with what a hostile machine could send in every
// field: every value shows as its text, no tag or attribute of its own gets
// in, links carry only checked machine-ids.

import { describe, expect, test } from "bun:test";
import { summarizeBootReport } from "../../../../controller/fleet/boot-summary.ts";
import { fleetPage } from "../../../../controller/fleet/page/fleet-page.ts";
import { escapeHtml } from "../../../../controller/fleet/page/html.ts";
import { machinePage } from "../../../../controller/fleet/page/machine-page.ts";
import type { StoredReport } from "../../../../controller/fleet/store.ts";
import { HOSTILE, hostileReport, MACHINE_ID, machineRecord, PAGE_NOW } from "../../../fleet-envelopes.ts";

/** The tags the pages are built of, and their attributes: anything else came from a value that was not escaped. */
const TAGS = new Set(["!doctype", "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "span", "br", "a", "strong", "form", "label", "select", "option", "input", "button", "div", "table", "thead", "tbody", "tr", "th", "td", "ul", "li", "dl", "dt", "dd", "pre"]);
const ATTRIBUTES = new Set(["lang", "charset", "name", "content", "class", "id", "href", "method", "action", "value", "selected", "type", "min", "step", "placeholder"]);

/** Every tag's name and attribute names in `page`, checked against the lists; the href values too. */
function checkMarkup(page: string): string[] {
  const hrefs: string[] = [];
  for (const [, name = "", attributes = ""] of page.matchAll(/<\/?([!a-zA-Z][a-zA-Z0-9]*)([^>]*)>/g)) {
    expect(TAGS).toContain(name.toLowerCase());
    for (const [, attribute = "", value] of attributes.matchAll(/\s([^\s=]+)(?:="([^"]*)")?/g)) {
      if (name.toLowerCase() === "!doctype") continue;
      expect(ATTRIBUTES).toContain(attribute.toLowerCase());
      if (attribute === "href" && value !== undefined) hrefs.push(value);
    }
  }
  return hrefs;
}

const hostileMachine = machineRecord({
  hostname: "lab-07",
  lastKind: "boot",
  lastBoot: summarizeBootReport(hostileReport()),
  lastMarkGoodAt: HOSTILE,
  firstSeenAt: HOSTILE,
  rollbacks: 1,
});

describe("the fleet's page", () => {
  test("a hostile machine's every field shows as text: no tag or attribute of its own, no script", () => {
    const page = fleetPage([hostileMachine, machineRecord({ machineId: "f".repeat(32), hostname: "lab-02" })], {}, PAGE_NOW).text;
    const hrefs = checkMarkup(page);
    expect(hrefs.sort()).toEqual(["machines/0123456789abcdef0123456789abcdef", `machines/${"f".repeat(32)}`]);
    expect(page).not.toContain(HOSTILE);
    expect(page).not.toContain("<script");
    expect(page).not.toContain("<img");
    for (const shown of [`version ${HOSTILE}`, `reason ${HOSTILE}`, `offered ${HOSTILE}`, "label <script>alert(1)</script>", "decision <script>alert(1)</script>"]) expect(page).toContain(escapeHtml(shown));
  });

  test("the columns of a machine's row, its health word and the counts", () => {
    const page = fleetPage([machineRecord()], {}, PAGE_NOW).text;
    expect(page).toContain('<a href="machines/0123456789abcdef0123456789abcdef">lab-01<br><span class="small">01234567</span></a>');
    expect(page).toContain('<span class="health health-good">good</span>');
    expect(page).toContain("<strong>up-to-date</strong><br><span class=\"small\">the running system is version 2.0, the channel&#39;s</span>");
    expect(page).toContain("2026-12-06 10:00 UTC (2 h ago)");
    expect(page).toContain("1.25 s");
    expect(page).toContain("<p class=\"small\">1 machine. Times in UTC");
    expect(page).toContain("<tr><td>2.0</td><td class=\"number\">1</td><td class=\"number\">1</td><td class=\"number\">0</td></tr>");
  });

  test("a machine-id that is not one gets no link; a very long hostname or version is cut in the table", () => {
    const page = fleetPage([machineRecord({ machineId: "../../etc/passwd", hostname: "x".repeat(500), lastBoot: { version: "9".repeat(10_000) } })], {}, PAGE_NOW).text;
    expect(page).not.toContain("<a href=\"machines/");
    expect(page).not.toContain("x".repeat(64));
    expect(page).toContain(`${"9".repeat(120)}…`);
    expect(page).not.toContain("9".repeat(121));
  });

  test("the filter form keeps what was chosen and offers the versions booted; a version too long to filter on is not offered", () => {
    const machines = [machineRecord(), machineRecord({ lastBoot: { version: `1.0"><script>` } }), machineRecord({ lastBoot: { version: "v".repeat(201) } })];
    const page = fleetPage(machines, { version: "2.0", health: "good", rolledBack: false, notSeenHours: 48 }, PAGE_NOW).text;
    expect(page).toContain('<option value="2.0" selected>2.0</option>');
    expect(page).toContain('<option value="1.0&quot;&gt;&lt;script&gt;">1.0&quot;&gt;&lt;script&gt;</option>');
    expect(page).not.toContain("v".repeat(201));
    expect(page).toContain('<option value="good" selected>good</option>');
    expect(page).toContain('<option value="no" selected>never</option>');
    expect(page).toContain('name="notSeenHours" min="0" step="any" value="48"');
    // a machine seen an hour ago is not one "not seen for more than 48 hours"
    expect(page).toContain("3 machines, 0 shown");
    expect(page).toContain('<a href="./">Clear</a>');
  });

  test("no machine yet, and none that matches", () => {
    expect(fleetPage([], {}, PAGE_NOW).text).toContain("No machine has reported yet.");
    expect(fleetPage([machineRecord()], { version: "9" }, PAGE_NOW).text).toContain("No machine matches the filter.");
  });

  test("the rollout table: the share, and how many of the machines offered it run it", () => {
    const offered = (version: string, decision: string) => summarizeBootReport({ ...hostileReport("x"), update: { slots: [], check: { decision, reason: "r", manifest: { version: "2.0" }, rollout: { percent: 25 } } }, diskless: { version } });
    const page = fleetPage([machineRecord({ lastBoot: offered("2.0", "install") }), machineRecord({ lastBoot: offered("1.0", "not-in-rollout") })], {}, PAGE_NOW).text;
    expect(page).toContain('<tr><td>2.0</td><td class="number">25 %</td><td class="number">1 of 2</td><td class="number">0</td><td class="number">1</td><td class="number">0</td></tr>');
  });
});

describe("a machine's page", () => {
  const reports: StoredReport[] = [
    { id: 3, machineId: MACHINE_ID, kind: "mark-good", receivedAt: "2026-12-06T11:00:00.000Z", sentAt: "2026-12-06T11:00:00.000Z", hostname: "lab-07", macs: [] },
    { id: 2, machineId: MACHINE_ID, kind: "boot", receivedAt: "2026-12-06T10:00:00.000Z", sentAt: "2026-12-06T10:00:00.000Z", hostname: "lab-07", macs: [], report: hostileReport() },
  ];

  test("the facts, the history and the whole report, every value as text", () => {
    const page = machinePage(hostileMachine, reports, PAGE_NOW).text;
    expect(checkMarkup(page)).toEqual(["../"]);
    expect(page).not.toContain(HOSTILE);
    expect(page).toContain(`<pre id="report">${escapeHtml(JSON.stringify(hostileReport(), null, 2))}</pre>`);
    expect(page).toContain(`<dt>Rollback</dt><dd>${escapeHtml(`rollback: ${HOSTILE}`)}</dd>`);
    expect(page).toContain(`<dt>First seen</dt><dd>${escapeHtml(HOSTILE)}</dd>`);
    expect([...page.matchAll(/<tr>\n<td>/g)]).toHaveLength(2);
    expect(page).toContain("<td>mark-good</td>");
  });

  test("a machine with no boot report kept says so", () => {
    const page = machinePage(machineRecord({ lastBoot: undefined } as never), [reports[0] as StoredReport], PAGE_NOW).text;
    expect(page).toContain("No boot report is kept.");
    expect(page).toContain("<dt>Version booted</dt><dd><span class=\"small\">unknown</span></dd>");
  });
});
