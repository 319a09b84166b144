// HTML built from template literals that escape every value put into them:
// what machines send is text, never markup, so a hostname, a version or a
// reason that holds "<script>" shows as those characters. Only fragments this
// module built (the Html class) go in as they are.

/** Markup that html`` built, its values already escaped. */
export class Html {
  constructor(readonly text: string) {}
}

const ENTITIES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/**
 * Control characters other than tab, newline and carriage return (a parse
 * error in HTML, and invisible or worse in a terminal someone copies them
 * into), and the bidirectional embeddings, overrides and isolates, with which
 * a value could show its own text, or its cell's neighbours, reversed.
 */
const UNSHOWN = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u202a-\u202e\u2066-\u2069]/g;

/** Text as HTML that shows it, in an element or a quoted attribute; the characters of UNSHOWN show as U+FFFD, the replacement character. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ENTITIES[character] ?? character).replace(UNSHOWN, "\ufffd");
}

/** A value in a template: markup as it is, a list item by item, nothing for undefined, null and false, anything else escaped as text. */
export type HtmlValue = Html | string | number | boolean | undefined | null | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join("");
  if (value === undefined || value === null || value === false) return "";
  return escapeHtml(String(value));
}

/** Tagged template: html`<td>${hostname}</td>` escapes `hostname`. */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): Html {
  return new Html(strings.reduce((text, part, index) => text + render(values[index - 1] as HtmlValue) + part));
}
