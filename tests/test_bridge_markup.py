"""patrol.contract.markup: one Markdown body, five helpdesk markups, exact output.

``tests/adf_schema_v1.json`` is Atlassian's published ADF JSON schema
(``@atlaskit/adf-schema`` 57.7.22, ``dist/json-schema/v1/full.json``, Apache-2.0).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patrol.contract.markup import to_adf, to_html, to_jira_wiki, to_text, to_textile
from tests.conftest import unavailable

# A body as collector/tickets/body.py writes it, cut down to one of each construct.
BODY = "\n".join([
    "## Problem",
    "",
    "- **Symptom**: /var is 96.2% full on db-01 (critical at 95%)",
    "- **Source**: check `var-disk` (type `disk`)",
    "",
    "## Measured values",
    "",
    "| Measurement | Item | Value |",
    "|---|---|---|",
    "| used_ratio | /var | 96.2% |",
    "| free_bytes | /var | 1.8 GiB |",
    "",
    "## Suggested first actions",
    "",
    "1. Rotate logs (`logrotate -f`).",
    "2. Extend the filesystem.",
    "",
    "Runbook: https://wiki.example.com/runbooks/disk-full",
    "",
    "## How to verify",
    "",
    "On db-01:",
    "",
    "```",
    "patrol check --only var-disk",
    "```",
    "",
])


def test_html_of_a_ticket_body() -> None:
    assert to_html(BODY) == "\n".join([
        "<h2>Problem</h2>",
        "<ul><li><strong>Symptom</strong>: /var is 96.2% full on db-01 (critical at 95%)</li>"
        "<li><strong>Source</strong>: check <code>var-disk</code> (type <code>disk</code>)"
        "</li></ul>",
        "<h2>Measured values</h2>",
        "<table><thead><tr><th>Measurement</th><th>Item</th><th>Value</th></tr></thead>"
        "<tbody><tr><td>used_ratio</td><td>/var</td><td>96.2%</td></tr>"
        "<tr><td>free_bytes</td><td>/var</td><td>1.8 GiB</td></tr></tbody></table>",
        "<h2>Suggested first actions</h2>",
        "<ol><li>Rotate logs (<code>logrotate -f</code>).</li>"
        "<li>Extend the filesystem.</li></ol>",
        '<p>Runbook: <a href="https://wiki.example.com/runbooks/disk-full">'
        "https://wiki.example.com/runbooks/disk-full</a></p>",
        "<h2>How to verify</h2>",
        "<p>On db-01:</p>",
        "<pre><code>patrol check --only var-disk</code></pre>",
    ])


def test_text_of_a_ticket_body() -> None:
    assert to_text(BODY) == "\n".join([
        "Problem",
        "-------",
        "",
        "- Symptom: /var is 96.2% full on db-01 (critical at 95%)",
        "- Source: check var-disk (type disk)",
        "",
        "Measured values",
        "---------------",
        "",
        "Measurement | Item | Value",
        "------------+------+--------",
        "used_ratio  | /var | 96.2%",
        "free_bytes  | /var | 1.8 GiB",
        "",
        "Suggested first actions",
        "-----------------------",
        "",
        "1. Rotate logs (logrotate -f).",
        "2. Extend the filesystem.",
        "",
        "Runbook: https://wiki.example.com/runbooks/disk-full",
        "",
        "How to verify",
        "-------------",
        "",
        "On db-01:",
        "",
        "    patrol check --only var-disk",
    ])


def test_textile_of_a_ticket_body() -> None:
    assert to_textile(BODY) == "\n".join([
        "h2. Problem",
        "",
        "* *Symptom*: /var is 96.2% full on db-01 (critical at 95%)",
        "* *Source*: check @var-disk@ (type @disk@)",
        "",
        "h2. Measured values",
        "",
        "|_. Measurement |_. Item |_. Value |",
        "| used_ratio | /var | 96.2% |",
        "| free_bytes | /var | 1.8 GiB |",
        "",
        "h2. Suggested first actions",
        "",
        "# Rotate logs (@logrotate -f@).",
        "# Extend the filesystem.",
        "",
        'Runbook: "https://wiki.example.com/runbooks/disk-full":'
        "https://wiki.example.com/runbooks/disk-full",
        "",
        "h2. How to verify",
        "",
        "On db-01:",
        "",
        "<pre>",
        "patrol check --only var-disk",
        "</pre>",
    ])


def test_jira_wiki_of_a_ticket_body() -> None:
    assert to_jira_wiki(BODY) == "\n".join([
        "h2. Problem",
        "",
        "* *Symptom*: /var is 96.2% full on db-01 (critical at 95%)",
        "* *Source*: check {{var-disk}} (type {{disk}})",
        "",
        "h2. Measured values",
        "",
        "||Measurement||Item||Value||",
        "|used_ratio|/var|96.2%|",
        "|free_bytes|/var|1.8 GiB|",
        "",
        "h2. Suggested first actions",
        "",
        "# Rotate logs ({{logrotate \\-f}}).",
        "# Extend the filesystem.",
        "",
        "Runbook: [https://wiki.example.com/runbooks/disk-full]",
        "",
        "h2. How to verify",
        "",
        "On db-01:",
        "",
        "{code}",
        "patrol check --only var-disk",
        "{code}",
    ])


def _text(text: str, *marks: dict) -> dict:
    node: dict = {"type": "text", "text": text}
    if marks:
        node["marks"] = list(marks)
    return node


def _para(*content: dict) -> dict:
    return {"type": "paragraph", "content": list(content)}


STRONG, CODE = {"type": "strong"}, {"type": "code"}


def test_adf_of_a_ticket_body() -> None:
    runbook = "https://wiki.example.com/runbooks/disk-full"
    heading = lambda text: {"type": "heading", "attrs": {"level": 2},  # noqa: E731
                            "content": [_text(text)]}
    row = lambda kind, *cells: {"type": "tableRow", "content": [  # noqa: E731
        {"type": kind, "content": [_para(_text(c))]} for c in cells]}
    item = lambda *content: {"type": "listItem", "content": [_para(*content)]}  # noqa: E731
    assert to_adf(BODY) == {"version": 1, "type": "doc", "content": [
        heading("Problem"),
        {"type": "bulletList", "content": [
            item(_text("Symptom", STRONG),
                 _text(": /var is 96.2% full on db-01 (critical at 95%)")),
            item(_text("Source", STRONG), _text(": check "), _text("var-disk", CODE),
                 _text(" (type "), _text("disk", CODE), _text(")"))]},
        heading("Measured values"),
        {"type": "table", "content": [row("tableHeader", "Measurement", "Item", "Value"),
                                      row("tableCell", "used_ratio", "/var", "96.2%"),
                                      row("tableCell", "free_bytes", "/var", "1.8 GiB")]},
        heading("Suggested first actions"),
        {"type": "orderedList", "content": [
            item(_text("Rotate logs ("), _text("logrotate -f", CODE), _text(").")),
            item(_text("Extend the filesystem."))]},
        _para(_text("Runbook: "), _text(runbook, {"type": "link", "attrs": {"href": runbook}})),
        heading("How to verify"),
        _para(_text("On db-01:")),
        {"type": "codeBlock", "content": [_text("patrol check --only var-disk")]},
    ]}


NESTED = "- disk\n  - /var\n    1. rotate\n    2. extend\n  - /home\n- memory"


@pytest.mark.parametrize(("render", "expected"), [
    (to_html, "<ul><li>disk<ul><li>/var<ol><li>rotate</li><li>extend</li></ol></li>"
              "<li>/home</li></ul></li><li>memory</li></ul>"),
    (to_text, "- disk\n  - /var\n    1. rotate\n    2. extend\n  - /home\n- memory"),
    (to_textile, "* disk\n** /var\n**# rotate\n**# extend\n** /home\n* memory"),
    (to_jira_wiki, "* disk\n** /var\n**# rotate\n**# extend\n** /home\n* memory"),
], ids=["html", "text", "textile", "jira"])
def test_nested_lists(render, expected) -> None:
    assert render(NESTED) == expected


def test_nested_lists_in_adf_are_list_items_children() -> None:
    doc = to_adf("- disk\n  1. rotate\n- memory")
    assert doc["content"] == [{"type": "bulletList", "content": [
        {"type": "listItem", "content": [
            _para(_text("disk")),
            {"type": "orderedList", "content": [
                {"type": "listItem", "content": [_para(_text("rotate"))]}]}]},
        {"type": "listItem", "content": [_para(_text("memory"))]}]}]


@pytest.mark.parametrize(("markdown", "textile"), [
    ("a *b* _c_ +d+ ^e^ ~f~ %g% ??h?? -i- ==j==",
     "a &#42;b* &#95;c_ &#43;d+ &#94;e^ &#126;f~ &#37;g% &#63;&#63;h?&#63; &#45;i- "
     "&#61;&#61;j=&#61;"),
    ("db-01 used_ratio 2023-10-27 95% a+b", "db-01 used_ratio 2023-10-27 95% a+b"),
    ('@bob "q":x !img! [[Wiki]] {{toc}} #123 a|b',
     "&#64;bob &#34;q&#34;:x &#33;img&#33; &#91;&#91;Wiki&#93;&#93; &#123;&#123;toc&#125;&#125; "
     "&#35;123 a&#124;b"),
    ("<pre>x</pre> &amp; <script>", "&lt;pre&gt;x&lt;/pre&gt; &amp;amp; &lt;script&gt;"),
    ("CPU(s) and time(s)", "CPU&#40;s) and time(s)"),
    # Redmine (RedCloth3 block_textile_prefix) would make these a heading, a quote, a
    # footnote: the dot becomes an entity, the reader still sees "h2. ..."
    ("h2. not a heading", "h2&#46; not a heading"),
    ("bq. not a quote\nh1. second line", "bq&#46; not a quote\nh1. second line"),
    ("fn1. not a footnote", "fn1&#46; not a footnote"),
    ("p(x). padded and p. plain", "p(x)&#46; padded and p. plain"),
    ("ph2. Done. e.g. this", "ph2. Done. e.g. this"),
    ("`a@b|c` and `</pre> &amp;`", "@a&#64;b&#124;c@ and @&lt;/pre> &amp;amp;@"),
    # CommonMark: "**" followed by a space opens nothing, so this is not bold; the
    # markers stay text (bold content never has edge spaces for Textile to trip on)
    ("**  spaced  **", "&#42;&#42;  spaced  &#42;&#42;"),
    ("[a \"b\"](https://x.example/a b)",
     '&#91;a &#34;b&#34;&#93;("https://x.example/a":https://x.example/a b)'),
    ("[a \"b\"](https://x.example/p)", '"a &#34;b&#34;":https://x.example/p'),
], ids=["span-markers-at-word-start", "span-markers-inside-words", "always-escaped",
        "html-and-entities", "abbreviation", "block-prefix-in-paragraph", "quote-prefix",
        "footnote-prefix", "padded-paragraph-prefix", "not-a-prefix", "code-span",
        "spaced-markers-are-text", "url-with-space-links-only-the-url", "link-label"])
def test_textile_escaping(markdown, textile) -> None:
    assert to_textile(markdown) == textile


def test_textile_code_block_is_raw_except_a_closing_tag() -> None:
    assert to_textile("```\n*a* <b> &amp;\n</pre> done\n```") == (
        "<pre>\n*a* <b> &amp;\n<\u200b/pre> done\n</pre>")


@pytest.mark.parametrize(("markdown", "jira"), [
    ("a *b* _c_ +d+ ^e^ ~f~ ??h?? -i- ----",
     "a \\*b* \\_c_ \\+d+ \\^e^ \\~f~ \\?\\?h?\\? \\-i- \\-\\-\\-\\-"),
    ("db-01 used_ratio 2023-10-27 a+b", "db-01 used_ratio 2023-10-27 a+b"),
    ("{code} [x] a|b !img! #1", "\\{code\\} \\[x\\] a\\|b \\!img\\! \\#1"),
    ("C:\\\\tmp and \\\\\\\\ share", "C:&#92;tmp and &#92;&#92; share"),
    ("`{{x}}` and `-h`", "{{\\{\\{x\\}\\}}} and {{\\-h}}"),
    ("[a|b](https://x.example/p|q]) [t](https://x.example/)",
     "[a\\|b|https://x.example/p%7Cq%5D] [t|https://x.example/]"),
    ("**bold** line\nnext", "*bold* line\nnext"),
    # a heading or quote signature at any line's start in a paragraph
    ("h1. not a heading\nbq. nor a quote\n h3. nor this", "h1&#46; not a heading\n"
     "bq&#46; nor a quote\nh3&#46; nor this"),
    ("th1. fine h2. fine", "th1. fine h2. fine"),
], ids=["span-markers-at-word-start", "span-markers-inside-words", "always-escaped",
        "backslash", "code-span", "links", "line-break", "block-prefixes", "not-prefixes"])
def test_jira_escaping(markdown, jira) -> None:
    assert to_jira_wiki(markdown) == jira


@pytest.mark.parametrize(("markdown", "jira"), [
    ("```json\n{\"a\": 1}\n```", '{code:json}\n{"a": 1}\n{code}'),
    ("```weird\nx\n```", "{code}\nx\n{code}"),
    ("```\nuse {code} here\n```", "{noformat}\nuse {code} here\n{noformat}"),
], ids=["known-language", "unknown-language", "contains-code-macro"])
def test_jira_code_blocks(markdown, jira) -> None:
    assert to_jira_wiki(markdown) == jira


@pytest.mark.parametrize("markdown", [
    "<script>alert(1)</script>",
    "- <img src=x onerror=alert(1)>",
    "| <b>h</b> |\n|---|\n| <iframe> |",
    "## <svg onload=alert(1)>",
    "**<script>**",
    "[x](javascript:alert(1))",
], ids=["paragraph", "list", "table", "heading", "bold", "javascript-link"])
def test_html_never_passes_markup_through(markdown) -> None:
    html = to_html(markdown)
    assert "<script" not in html and "<img" not in html and "<iframe" not in html
    assert "<svg" not in html and "<b>" not in html and "href" not in html
    if "<" in markdown:  # shown as text, not dropped
        assert "&lt;" in html


@pytest.mark.parametrize(("markdown", "html"), [
    ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>"),
    ("[t](/tickets/1)", "<p>[t](/tickets/1)</p>"),
    ("[m](mailto:ops@example.com)", '<p><a href="mailto:ops@example.com">m</a></p>'),
    # a quote in a URL is percent-encoded (as a browser would send it), so it cannot
    # end the attribute
    ('[q](https://a"onmouseover="x)', '<p><a href="https://a%22onmouseover=%22x">q</a></p>'),
    ("see https://example.org/x.", '<p>see <a href="https://example.org/x">'
                                   "https://example.org/x</a>.</p>"),
    (r"a \*literal\* \| pipe", "<p>a *literal* | pipe</p>"),
    ("one\ntwo", "<p>one<br>two</p>"),
    ("3. third", '<ol start="3"><li>third</li></ol>'),
    ("````\n```\n<b>\n```\n````", "<pre><code>```\n&lt;b&gt;\n```</code></pre>"),
    ("[x](javascript:alert)", "<p>[x](javascript:alert)</p>"),
    ("[x](//evil.example)", "<p>[x](//evil.example)</p>"),
    ("[wiki](https://wiki.example.org/a?b=1&c=2)",
     '<p><a href="https://wiki.example.org/a?b=1&amp;c=2">wiki</a></p>'),
    ("## Problem", "<h2>Problem</h2>"),
    ("#### largest_directories ##", "<h4>largest_directories</h4>"),
    ("####### seven", "<p>####### seven</p>"),
    ("#\n\n## ##", "<p>#</p>\n<p>##</p>"),
    ("- one\n- **two**: 2", "<ul><li>one</li><li><strong>two</strong>: 2</li></ul>"),
    ("1. first\n2. second", "<ol><li>first</li><li>second</li></ol>"),
    ("run `df -h /var` now", "<p>run <code>df -h /var</code> now</p>"),
    ("``a ` b``", "<p><code>a ` b</code></p>"),
], ids=["javascript", "relative-path", "mailto", "quote-in-url", "bare-url", "escapes",
        "line-break", "ordered-start", "long-fence", "javascript-no-parens",
        "scheme-relative", "query-escaped", "h2", "closing-hashes", "not-a-heading",
        "empty-heading",
        "bullets", "ordered", "code-span", "code-span-with-tick"])
def test_html_inline_and_links(markdown, html) -> None:
    assert to_html(markdown) == html


def test_html_table_with_escaped_pipes_backslashes_and_a_short_row() -> None:
    text = ("| path | note |\n|---|---|\n| /var/log | a \\| b |\n| C:\\\\tmp | short |"
            "\n| only one |")
    assert to_html(text) == (
        "<table><thead><tr><th>path</th><th>note</th></tr></thead><tbody>"
        "<tr><td>/var/log</td><td>a | b</td></tr>"
        "<tr><td>C:\\tmp</td><td>short</td></tr>"
        "<tr><td>only one</td><td></td></tr></tbody></table>")


@pytest.mark.parametrize(("markdown", "html"), [
    ("````\n```\ninside <b>\n```\n````\nafter",
     "<pre><code>```\ninside &lt;b&gt;\n```</code></pre>\n<p>after</p>"),
    ("```json\n{\"a\": 1}\n```",
     '<pre><code class="language-json">{&quot;a&quot;: 1}</code></pre>'),
    ("```\nno end\n\n## not a heading", "<pre><code>no end\n\n## not a heading</code></pre>"),
    ("## SLA\n\n- **Priority**: P1\n\n## How to verify\n\nOn db-01:\n\n```\npatrol\n```\n",
     "<h2>SLA</h2>\n<ul><li><strong>Priority</strong>: P1</li></ul>\n"
     "<h2>How to verify</h2>\n<p>On db-01:</p>\n<pre><code>patrol</code></pre>"),
], ids=["long-fence-then-paragraph", "language", "unclosed", "body-sections"])
def test_html_code_fences(markdown, html) -> None:
    assert to_html(markdown) == html


@pytest.mark.parametrize(("markdown", "text"), [
    ("# Title", "Title\n====="),
    ("### Sub", "Sub\n~~~"),
    ("#### deep", "deep"),
    ("[wiki](https://w.example/a) and https://b.example",
     "wiki (https://w.example/a) and https://b.example"),
    ("| a | b |\n|---|---|\n| long value |", "a          | b\n-----------+--\nlong value |"),
    ("```\nline 1\n\nline 3\n```", "    line 1\n\n    line 3"),
    ("10. ten\n11. eleven", "10. ten\n11. eleven"),
    ("<b>raw</b> **x**", "<b>raw</b> x"),
], ids=["h1", "h3", "h4", "links", "table-short-row", "code", "ordered-start", "raw-html"])
def test_text(markdown, text) -> None:
    assert to_text(markdown) == text


def test_adf_marks_nest_and_code_drops_bold() -> None:
    doc = to_adf("**bold `code` [link](https://l.example)**\n`c`")
    link = {"type": "link", "attrs": {"href": "https://l.example"}}
    assert doc["content"] == [_para(
        _text("bold ", STRONG), _text("code", CODE), _text(" ", STRONG),
        _text("link", STRONG, link), {"type": "hardBreak"}, _text("c", CODE))]


def test_adf_has_no_empty_text_nodes() -> None:
    doc = to_adf("| a | |\n|---|---|\n\n```\n```")
    assert doc["content"] == [
        {"type": "table", "content": [{"type": "tableRow", "content": [
            {"type": "tableHeader", "content": [_para(_text("a"))]},
            {"type": "tableHeader", "content": [_para()]}]}]},
        {"type": "codeBlock", "content": []}]


SCHEMA = Path(__file__).with_name("adf_schema_v1.json")
ADF_CASES = [BODY, NESTED, "**b `c` [l](https://l.example)**", "| a | |\n|---|---|\n| | x |",
             "```python\nprint(1)\n```", "```\n```", "3. three\n4. four", "#### h4\n\ntext"]


@pytest.mark.parametrize("markdown", ADF_CASES, ids=[
    "body", "nested", "marks", "empty-cells", "code-language", "empty-code", "order", "h4"])
def test_adf_is_valid_per_atlassians_schema(markdown) -> None:
    try:
        import jsonschema
    except ImportError:
        unavailable("jsonschema is not installed (pip install jsonschema)")
    validator = jsonschema.Draft4Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(
        to_adf(markdown))]
    assert errors == []


def test_the_schema_rejects_what_the_renderer_avoids() -> None:
    """The schema check is not vacuous: empty text and code+strong are invalid."""
    try:
        import jsonschema
    except ImportError:
        unavailable("jsonschema is not installed (pip install jsonschema)")
    validator = jsonschema.Draft4Validator(json.loads(SCHEMA.read_text()))
    for bad in (_para(_text("")), _para(_text("x", STRONG, CODE))):
        assert not validator.is_valid({"version": 1, "type": "doc", "content": [bad]})


def test_realistic_body_round_trips_through_every_renderer() -> None:
    """collector/tickets/body.py's exact expected body renders without losing a section."""
    from tests.test_body import EXPECTED
    text = to_text(EXPECTED)
    for title in ("Problem", "Measured values", "Diagnostics", "Past occurrences", "SLA"):
        assert f"{title}\n{'-' * len(title)}" in text
        assert f"h2. {title}" in to_textile(EXPECTED) and f"h2. {title}" in to_jira_wiki(
            EXPECTED)
    assert "| TS20231003004 | 2023-10-03T08:12:00Z | 2023-10-03T09:40:00Z | rotated " \
           "/var/log/postgresql &#124; logrotate was disabled |" in to_textile(EXPECTED)
    assert "|TS20231003004|2023-10-03T08:12:00Z|2023-10-03T09:40:00Z|rotated " \
           "/var/log/postgresql \\| logrotate was disabled|" in to_jira_wiki(EXPECTED)
