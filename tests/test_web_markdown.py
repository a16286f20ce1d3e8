"""collector.markdown: the subset ticket bodies use, rendered safely."""

from __future__ import annotations

import pytest
from markupsafe import Markup

from collector.markdown import render


@pytest.mark.parametrize(("text", "html"), [
    ("## Problem", "<h2>Problem</h2>"),
    ("#### largest_directories ##", "<h4>largest_directories</h4>"),
    ("####### seven", "<p>####### seven</p>"),
    ("- one\n- **two**: 2", "<ul><li>one</li><li><strong>two</strong>: 2</li></ul>"),
    ("1. first\n2. second", "<ol><li>first</li><li>second</li></ol>"),
    ("3. third", '<ol start="3"><li>third</li></ol>'),
    ("a line\nand the next", "<p>a line<br>and the next</p>"),
    ("run `df -h /var` now", "<p>run <code>df -h /var</code> now</p>"),
    ("``a ` b``", "<p><code>a ` b</code></p>"),
    (r"a \*literal\* \| pipe", "<p>a *literal* | pipe</p>"),
], ids=["h2", "closing-hashes", "not-a-heading", "bullets", "ordered", "ordered-start",
        "paragraph", "code-span", "code-span-with-tick", "escapes"])
def test_blocks_and_inline(text, html):
    assert render(text) == html


def test_table_with_escaped_pipes_and_backslashes():
    text = ("| path | note |\n|---|---|\n| /var/log | a \\| b |\n| C:\\\\tmp | short |"
            "\n| only one |")
    assert render(text) == (
        "<table><thead><tr><th>path</th><th>note</th></tr></thead><tbody>"
        "<tr><td>/var/log</td><td>a | b</td></tr>"
        "<tr><td>C:\\tmp</td><td>short</td></tr>"
        "<tr><td>only one</td><td></td></tr></tbody></table>")


def test_fence_longer_than_the_backticks_inside_it_keeps_them():
    text = "````\n```\ninside <b>\n```\n````\nafter"
    assert render(text) == "<pre><code>```\ninside &lt;b&gt;\n```</code></pre>\n<p>after</p>"


def test_fence_with_language_and_unclosed_fence():
    assert render("```json\n{\"a\": 1}\n```") == (
        '<pre><code class="language-json">{&quot;a&quot;: 1}</code></pre>')
    assert render("```\nno end\n\n## not a heading") == (
        "<pre><code>no end\n\n## not a heading</code></pre>")


def test_sections_as_collector_body_writes_them():
    text = "## SLA\n\n- **Priority**: P1\n\n## How to verify\n\nOn db-01:\n\n```\npatrol\n```\n"
    assert render(text) == ("<h2>SLA</h2>\n<ul><li><strong>Priority</strong>: P1</li></ul>\n"
                            "<h2>How to verify</h2>\n<p>On db-01:</p>\n"
                            "<pre><code>patrol</code></pre>")


@pytest.mark.parametrize(("text", "html"), [
    ("[wiki](https://wiki.example.org/a?b=1&c=2)",
     '<p><a href="https://wiki.example.org/a?b=1&amp;c=2">wiki</a></p>'),
    ("[ticket](/tickets/TS20231027001)", '<p><a href="/tickets/TS20231027001">ticket</a></p>'),
    ("see https://example.org/runbook.", '<p>see <a href="https://example.org/runbook">'
     "https://example.org/runbook</a>.</p>"),
    ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>"),
    ("[x](javascript:alert)", "<p>[x](javascript:alert)</p>"),
    ("[x](//evil.example)", "<p>[x](//evil.example)</p>"),
    ('[x](https://a"onmouseover="alert)', '<p><a href="https://a&quot;onmouseover=&quot;'
     'alert">x</a></p>'),
], ids=["https", "local", "bare-url", "javascript", "javascript-no-parens",
        "scheme-relative", "quote-in-url"])
def test_links_only_for_safe_urls(text, html):
    assert render(text) == html


@pytest.mark.parametrize("text", [
    "<script>alert(1)</script>",
    "- <img src=x onerror=alert(1)>",
    "| <b>h</b> |\n|---|\n| <iframe> |",
    "## <svg onload=alert(1)>",
    "**<script>**",
], ids=["paragraph", "list", "table", "heading", "bold"])
def test_raw_html_is_shown_as_text(text):
    html = render(text)
    assert isinstance(html, Markup)
    for tag in ("<script", "<img", "<b>", "<iframe", "<svg"):
        assert tag not in html
    assert "&lt;" in html
