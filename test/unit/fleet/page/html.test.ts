// html`` (fleet/page/html.ts): every value escaped for an element and a
// quoted attribute, control characters made visible, fragments it built kept.

import { describe, expect, test } from "bun:test";
import { escapeHtml, Html, html } from "../../../../controller/fleet/page/html.ts";

describe("escapeHtml", () => {
  test("the five characters that end text or an attribute become entities", () => {
    expect(escapeHtml(`<a href="x" title='y'>&amp;</a>`)).toBe("&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;");
  });

  test("control characters show as U+FFFD; tab, newline and carriage return stay; unicode stays", () => {
    expect(escapeHtml("a\u0000b\u0007c\u001b[31md\u007fe\tf\ng\rh")).toBe("a\ufffdb\ufffdc\ufffd[31md\ufffde\tf\ng\rh");
    expect(escapeHtml("𝕏 ünï € 日本 עברית")).toBe("𝕏 ünï € 日本 עברית");
  });

  test("bidirectional overrides, embeddings and isolates show as U+FFFD: a value cannot reverse what is shown", () => {
    expect(escapeHtml("a\u202eb\u202ac\u2066d\u2069e\u200ff")).toBe("a\ufffdb\ufffdc\ufffdd\ufffde\u200ff");
  });
});

describe("html``", () => {
  test("values are escaped, fragments kept, lists joined, undefined, null and false left out, numbers and true as text", () => {
    const inner = html`<b>${"<i>"}</b>`;
    expect(html`<p title="${'"><script>'}">${inner}${["<", html`<br>`]}${undefined}${null}${false}${0}${true}</p>`.text).toBe(
      '<p title="&quot;&gt;&lt;script&gt;"><b>&lt;i&gt;</b>&lt;<br>0true</p>',
    );
  });

  test("a string that looks like markup is not a fragment: only Html is", () => {
    expect(html`${"<script>alert(1)</script>"}`.text).toBe("&lt;script&gt;alert(1)&lt;/script&gt;");
    expect(html`${new Html("<hr>")}`.text).toBe("<hr>");
  });

  test("a very long value is kept whole and escaped", () => {
    const long = "<".repeat(100_000);
    expect(html`${long}`.text).toBe("&lt;".repeat(100_000));
  });
});
