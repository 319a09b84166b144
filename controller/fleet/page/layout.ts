// What every page of the fleet has: the document around its body, one small
// inline style sheet that reads on a phone (wide tables scroll sideways in
// their own box, the page itself does not), and the headers that keep a
// browser from running anything in it: no script, no image, no frame, no
// form sent anywhere but back here, whatever a machine managed to put in it.

import { Html, html } from "./html.ts";

/**
 * Sent with every page. The pages hold no script, so the policy allows none,
 * inline or not: markup a machine's text smuggled past escaping would still
 * not run. `form-action` and `frame-ancestors` do not fall back to
 * `default-src`, so they are said too.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Type": "text/html; charset=utf-8",
  "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  // the pages hold the fleet's state as the read token sees it: no cache keeps a copy
  "Cache-Control": "no-store",
};

const STYLE = `
body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; padding: 0.5rem 0.75rem; max-width: 90rem; color: #111; background: #fff; }
h1 { font-size: 1.4rem; margin: 0.4rem 0; } h2 { font-size: 1.1rem; margin: 1.2rem 0 0.4rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: 0.3rem 0.5rem; border-bottom: 1px solid #ddd; }
th { background: #f2f2f2; white-space: nowrap; }
td { overflow-wrap: anywhere; min-width: 4rem; max-width: 28rem; }
td.number, th.number { text-align: right; }
.small { font-size: 0.85em; color: #555; }
.health { font-weight: 600; white-space: nowrap; }
.health-good { color: #176b2c; } .health-booting, .health-shut-down { color: #555; }
.health-rolled-back, .health-not-marked-good, .health-nothing-booted, .health-not-seen { color: #a31515; }
form { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: end; margin: 0.5rem 0; }
label { display: flex; flex-direction: column; font-size: 0.85em; }
input, select, button { font: inherit; max-width: 14rem; }
input[type=number] { width: 6rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
pre { background: #f6f6f6; padding: 0.5rem; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.8rem; }
.problems li { color: #a31515; }
.pages { display: flex; flex-wrap: wrap; gap: 0.3rem 1.2rem; align-items: baseline; margin: 0.5rem 0; }
.pages a { padding: 0.3rem 0; }
`;

/** A whole document. */
export function pageDocument(title: string, body: Html): Html {
  return html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<style>${new Html(STYLE)}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

/** A page that says why a request was refused: a title, and the problems as a list. */
export function messagePage(title: string, problems: readonly string[], link?: { readonly href: string; readonly text: string }): Html {
  return pageDocument(
    title,
    html`<h1>${title}</h1>
<ul class="problems">${problems.map((problem) => html`<li>${problem}</li>`)}</ul>
${link === undefined ? undefined : html`<p><a href="${link.href}">${link.text}</a></p>`}`,
  );
}

/** Text cut to `max` characters with "…": a table cell stays a cell; the machine's page shows the whole. */
export function clip(text: string, max = 120): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
