// The fleet's page and a machine's page (fleet/page/fleet-page.ts,
// machine-page.ts) rendered with what a hostile machine could send in every
// field: every value shows as its text, no tag or attribute of its own gets
// in, links carry only checked machine-ids. The machines' table in pages of
// MACHINES_PER_PAGE, its links keeping the filter.

import { describe, expect, test } from "bun:test";
import { summarizeBootReport } from "../../../../controller/fleet/boot-summary.ts";
import { fleetPage, MACHINES_PER_PAGE } from "../../../../controller/fleet/page/fleet-page.ts";
import { escapeHtml } from "../../../../controller/fleet/page/html.ts";
import { machinePage } from "../../../../controller/fleet/page/machine-page.ts";
import type { MachineRecord, StoredReport } from "../../../../controller/fleet/store.ts";
import { HOSTILE, hostileReport, MACHINE_ID, machineRecord, PAGE_NOW } from "../../../fleet-envelopes.ts";

/** The tags the pages are built of, and their attributes: anything else came from a value that was not escaped. */
const TAGS = new Set(["!doctype", "html", "head", "meta", "title", "style", "body", "h1", "h2", "nav", "p", "span", "br", "a", "strong", "form", "label", "select", "option", "input", "button", "div", "table", "thead", "tbody", "tr", "th", "td", "ul", "li", "dl", "dt", "dd", "pre"]);
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

/** A last boot that ran `version` after an update check that was offered 2.0, rolled out to 25 %, and decided `decision`. */
function offered(version: string, decision: string) {
  return summarizeBootReport({ ...hostileReport("x"), update: { slots: [], check: { decision, reason: "r", manifest: { version: "2.0" }, rollout: { percent: 25 } } }, diskless: { version } });
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
    const empty = fleetPage([], {}, PAGE_NOW).text;
    expect(empty).toContain("No machine has reported yet.");
    // no versions table of headers only
    expect(empty).toContain('<h2>Versions</h2>\n<p class="small">No machine has reported a boot yet.</p>');
    expect(empty).not.toContain('id="versions"');
    expect(fleetPage([machineRecord()], { version: "9" }, PAGE_NOW).text).toContain("No machine matches the filter.");
  });

  test("the rollout table: the share, and how many of the machines offered it run it", () => {
    const page = fleetPage([machineRecord({ lastBoot: offered("2.0", "install") }), machineRecord({ lastBoot: offered("1.0", "not-in-rollout") })], {}, PAGE_NOW).text;
    expect(page).toContain('<tr><td>2.0</td><td class="number">25 %</td><td class="number">1 of 2</td><td class="number">0</td><td class="number">1</td><td class="number">0</td></tr>');
  });
});

/** `count` machines named node-0, node-1…, their machine-ids in the same order; `changes` replaces fields of the machine at each index. */
function fleetOf(count: number, changes: (index: number) => Partial<MachineRecord> = () => ({})): MachineRecord[] {
  return Array.from({ length: count }, (_, index) => machineRecord({ machineId: index.toString(16).padStart(32, "0"), hostname: `node-${index}`, ...changes(index) }));
}

/** The hostnames of the machines' table's rows, in order. */
function rowNames(page: string): string[] {
  return [...page.matchAll(/<td><a href="machines\/[0-9a-f]{32}">([^<]*)<br>/g)].map(([, name]) => name ?? "");
}

/** The page links' texts and addresses, each bar of them (above and below the table) on its own. */
function pageLinkBars(page: string): string[][] {
  return [...page.matchAll(/<nav class="pages">(.*?)<\/nav>/g)].map(([, bar = ""]) => [...bar.matchAll(/<a href="([^"]*)">([^<]*)<\/a>|<span>([^<]*)<\/span>/g)].map(([, href, text, here]) => (here ?? `${text} ${href}`)));
}

function counts(page: string): string {
  return page.match(/<p class="small">([^.]*)\./)?.[1] ?? "";
}

describe("the fleet's page in pages", () => {
  test("200 machines a page: 0, 1 and 200 machines on one page without links; 201 and 401 on two and three", () => {
    expect(MACHINES_PER_PAGE).toBe(200);
    const names = (from: number, to: number) => Array.from({ length: to - from }, (_, index) => `node-${from + index}`);
    const cases: [machines: number, page: number, rows: string[], count: string, bars: number][] = [
      [0, 1, [], "0 machines", 0],
      [1, 1, names(0, 1), "1 machine", 0],
      [200, 1, names(0, 200), "200 machines", 0],
      [201, 1, names(0, 200), "201 machines, page 1 of 2, machines 1–200", 2],
      [201, 2, names(200, 201), "201 machines, page 2 of 2, machines 201–201", 2],
      [401, 2, names(200, 400), "401 machines, page 2 of 3, machines 201–400", 2],
      [401, 3, names(400, 401), "401 machines, page 3 of 3, machines 401–401", 2],
    ];
    for (const [machines, number, rows, count, bars] of cases) {
      const page = fleetPage(fleetOf(machines), {}, PAGE_NOW, number).text;
      expect({ machines, number, rows: rowNames(page), count: counts(page), bars: pageLinkBars(page).length }).toEqual({ machines, number, rows, count, bars });
    }
  });

  test("the links: first and previous, where this page is, next and last; none to go before the first or past the last", () => {
    const fleet = fleetOf(401);
    expect(pageLinkBars(fleetPage(fleet, {}, PAGE_NOW, 1).text)).toEqual(Array(2).fill(["Page 1 of 3", "Next → ./?page=2", "Last ./?page=3"]));
    expect(pageLinkBars(fleetPage(fleet, {}, PAGE_NOW, 2).text)).toEqual(Array(2).fill(["First ./", "← Previous ./", "Page 2 of 3", "Next → ./?page=3", "Last ./?page=3"]));
    expect(pageLinkBars(fleetPage(fleet, {}, PAGE_NOW, 3).text)).toEqual(Array(2).fill(["First ./", "← Previous ./?page=2", "Page 3 of 3"]));
  });

  test("the pages together show every machine once, in the order the store lists them", () => {
    const fleet = fleetOf(401).reverse();
    const shown = [1, 2, 3].flatMap((number) => rowNames(fleetPage(fleet, {}, PAGE_NOW, number).text));
    expect(shown).toEqual(fleet.map((machine) => machine.hostname));
  });

  test("with a filter: the pages are of the machines it keeps, and every link keeps the filter, escaped; the form does not carry the page", () => {
    const version = `2.0 &<b>"`;
    // every third machine booted 1.0, which the filter leaves out
    const fleet = fleetOf(375, (index) => ({ lastBoot: { version: index % 3 === 0 ? "1.0" : version } }));
    const filter = { version, rolledBack: false };
    const page = fleetPage(fleet, filter, PAGE_NOW, 2).text;
    const query = "version=2.0+%26%3Cb%3E%22&amp;rolledBack=no";
    expect(counts(page)).toBe("375 machines, 250 shown, page 2 of 2, machines 201–250");
    expect(rowNames(page)).toEqual(fleet.filter((_, index) => index % 3 !== 0).slice(200).map((machine) => machine.hostname));
    expect(pageLinkBars(page)).toEqual(Array(2).fill([`First ./?${query}`, `← Previous ./?${query}`, "Page 2 of 2"]));
    expect(pageLinkBars(fleetPage(fleet, filter, PAGE_NOW, 1).text)[0]).toEqual(["Page 1 of 2", `Next → ./?${query}&amp;page=2`, `Last ./?${query}&amp;page=2`]);
    checkMarkup(page);
    expect(page).not.toContain('name="page"');
    expect(page).toContain('<a href="./">Clear</a>');
  });

  test("the Versions and Rollouts tables count the whole fleet, whatever the page", () => {
    const fleet = fleetOf(401, (index) => ({ lastBoot: index < 300 ? offered("2.0", "install") : offered("1.0", "not-in-rollout") }));
    for (const number of [1, 3, 4]) {
      const page = fleetPage(fleet, {}, PAGE_NOW, number).text;
      expect(page).toContain('<tr><td>2.0</td><td class="number">300</td>');
      expect(page).toContain('<tr><td>1.0</td><td class="number">101</td>');
      expect(page).toContain('<tr><td>2.0</td><td class="number">25 %</td><td class="number">300 of 401</td><td class="number">0</td><td class="number">101</td><td class="number">0</td></tr>');
    }
  });

  test("a page past the last: no table, a sentence with the machines and pages there are, and a link to the last page", () => {
    const past = fleetPage(fleetOf(401), {}, PAGE_NOW, 4).text;
    expect(past).not.toContain('<table id="machines">');
    expect(pageLinkBars(past)).toEqual([]);
    expect(counts(past)).toBe("401 machines");
    expect(past).toContain('<p id="no-machines">No machines on page 4: the fleet has 401 machines, pages 1–3. <a href="./?page=3">The last page</a></p>');
    const filtered = fleetPage(fleetOf(3, (index) => ({ rollbacks: index })), { rolledBack: true }, PAGE_NOW, 9007199254740991).text;
    expect(filtered).toContain('<p id="no-machines">No machines on page 9007199254740991: the filter matches 2 machines, page 1. <a href="./?rolledBack=yes">The last page</a></p>');
    expect(fleetPage(fleetOf(1), {}, PAGE_NOW, 2).text).toContain("No machines on page 2: the fleet has 1 machine, page 1.");
  });

  test("no machine, or none that matches, says so on any page", () => {
    expect(fleetPage([], {}, PAGE_NOW, 2).text).toContain('<p id="no-machines">No machine has reported yet.</p>');
    expect(fleetPage(fleetOf(201), { version: "9" }, PAGE_NOW, 2).text).toContain('<p id="no-machines">No machine matches the filter.</p>');
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

  test("a boot report without a rollback or an offered version says none, not unknown; with no update check, unknown", () => {
    const checked = summarizeBootReport({ ...hostileReport("x"), decisions: [], update: { slots: [], check: { decision: "no-servers", reason: "no update servers configured" } } });
    const page = machinePage(machineRecord({ lastBoot: checked } as never), reports, PAGE_NOW).text;
    expect(page).toContain("<dt>Rollback</dt><dd>none</dd>");
    expect(page).toContain("<dt>Offered</dt><dd>none</dd>");
    const unchecked = machinePage(machineRecord({ lastBoot: { ...checked, update: undefined } } as never), reports, PAGE_NOW).text;
    expect(unchecked).toContain('<dt>Offered</dt><dd><span class="small">unknown</span></dd>');
    expect(unchecked).toContain("<dt>Rollback</dt><dd>none</dd>");
  });

  test("a machine with no boot report kept says so", () => {
    const page = machinePage(machineRecord({ lastBoot: undefined } as never), [reports[0] as StoredReport], PAGE_NOW).text;
    expect(page).toContain("No boot report is kept.");
    expect(page).toContain("<dt>Version booted</dt><dd><span class=\"small\">unknown</span></dd>");
    expect(page).toContain("<dt>Rollback</dt><dd><span class=\"small\">unknown</span></dd>");
  });
});
