"""What an agent could put into a ticket body, through every helpdesk markup.

A body's summary line, diagnostics values, log lines and process titles come from the
agent, unescaped (``collector/tickets/body.py`` writes them as Markdown). Whatever they
say, a helpdesk must show them as text: no HTML, no link other than http(s)/mailto, no
Textile or Jira-wiki structure, nothing dropped, and no crash or long stall on hostile
sizes. Redmine's Textile is checked by Redmine's own renderer
(``tests/redmine_textile.rb``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from patrol.contract.markup import to_adf, to_html, to_jira_wiki, to_text, to_textile
from tests.conftest import unavailable

ATTACKS = {
    "script": "<script>alert(1)</script>",
    "img-onerror": "x <img src=x onerror=alert(1)> y",
    "html-block": "<div onclick=alert(1)>\n\nhi\n\n</div>",
    "javascript-link": "[x](javascript:alert(1))",
    "javascript-link-mixed-case": "[x](JaVaScRiPt:alert(1))",
    "javascript-link-entity": "[x](&#106;avascript:alert(1))",
    "javascript-link-angle": "[x](<javascript:alert(1)>)",
    "javascript-link-title": '[x](javascript:alert(1) "t")',
    "data-link": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "data-image": "![x](data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=)",
    "image": "![x](https://evil.example/track.png)",
    "vbscript-link": "[x](vbscript:msgbox)",
    "empty-links": "[x]() and [y](<>)",
    "reference-link": "[x][r]\n\n[r]: javascript:alert(1)",
    "autolink-javascript": "<javascript:alert(1)>",
    "autolink-http": "<https://evil.example/a>",
    "autolink-mail": "<ops@evil.example>",
    "quote-in-url": '[q](https://a"onmouseover="alert(1))',
    "quote-in-bare-url": 'https://a.example/"onmouseover="alert(1)',
    "control-character-in-url": "[c](https://a\x01b.example)",
    "quote-in-mailto": '[m](mailto:a@b.example?subject=x"onclick="y)',
    "html-in-label": "[<b>x</b>](https://a.example)",
    "entities": "&lt;script&gt; &#60;script&#62; &amp; &#x3C;b&#x3E;",
    "code-span-break-out": "`</code><script>alert(1)</script>`",
    "fence-break-out": "```\n</pre><script>alert(1)</script>\n{code}\n{noformat}\n```",
    "fence-info": "```\"><script>alert(1)</script>\n<x>\n```",
    "html-in-heading": "## <svg onload=alert(1)>",
    "html-in-table": "| <b>h</b> |\n|---|\n| <iframe src=x> |",
    "html-in-list": "- <img src=x onerror=alert(1)>",
    "html-in-bold": "**<script>**",
    "textile-heading": "h2. injected heading",
    "textile-quote": "bq. injected quote",
    "textile-footnote": "fn1. footnote",
    "textile-styled-paragraph": "p{background:url(javascript:alert(1))}. styled",
    "textile-link": '"click":javascript:alert(1) and "x":https://evil.example',
    "textile-image": "!https://evil.example/x.png! and !/images/x.png!",
    "textile-notextile": "<notextile><script>alert(1)</script></notextile> ==<b>x</b>==",
    "textile-spans": "%{color:red}red% *b* _i_ @c@ -s- +u+ ^sup^ ~sub~ ??cite??",
    "textile-table": "|_. a |\n| b |",
    "textile-lists": "* not a list\n# not numbered",
    "redmine-macros": "{{toc}} {{include(Secret)}} [[Wiki]] #1",
    "jira-heading": "h1. injected",
    "jira-macros": "{html}<script>alert(1)</script>{html} {color:red}x{color} {panel}p{panel}",
    "jira-links": "[click|javascript:alert(1)] [~admin] [^attachment.txt]",
    "jira-image": "!https://evil.example/x.png|onerror=alert(1)!",
    "jira-table": "||a||\n|b|",
    "nul": "a\x00b",
}
SAFE_URL = re.compile(r"(https?://|mailto:)", re.IGNORECASE)
ELEMENTS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "code",
            "pre", "a", "br", "table", "thead", "tbody", "tr", "th", "td"}


class _Elements(HTMLParser):
    """Every element and attribute of an HTML fragment."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, attrs))


def _unsafe_html(html: str) -> list[str]:
    """Elements and attributes the ticket HTML must never have."""
    problems = []
    for tag, attrs in _Elements(html).seen:
        if tag not in ELEMENTS:
            problems.append(f"<{tag}>")
        for name, value in attrs:
            allowed = (
                ((tag, name) == ("a", "href") and SAFE_URL.match(value or ""))
                or (tag, name, value) == ("a", "class", "external")  # Redmine's
                or (tag, name) == ("ol", "start")
                or ((tag, name) == ("code", "class")
                    and re.fullmatch(r"language-[\w+.-]+", value or "")))
            if not allowed:
                problems.append(f"<{tag} {name}={value!r}>")
    return problems


@pytest.mark.parametrize("markdown", ATTACKS.values(), ids=ATTACKS.keys())
def test_html_has_only_ticket_elements_and_safe_links(markdown: str) -> None:
    html = to_html(markdown)
    assert _unsafe_html(html) == []
    if "<" in markdown:  # shown as text, not dropped
        assert "&lt;" in html


@pytest.mark.parametrize("markdown", ATTACKS.values(), ids=ATTACKS.keys())
def test_adf_links_are_safe(markdown: str) -> None:
    hrefs = re.findall(r'"href": "([^"]*)"', json.dumps(to_adf(markdown)))
    assert [h for h in hrefs if not SAFE_URL.match(h)] == []


def _redmine_html(textile: str) -> str:
    redmine = Path("/usr/share/redmine/lib/redmine/wiki_formatting/textile/redcloth3.rb")
    if not shutil.which("ruby") or not redmine.exists():
        unavailable("Redmine's RedCloth3 and ruby are not installed (tests/setup_helpdesks.sh)")
    done = subprocess.run(["ruby", str(Path(__file__).with_name("redmine_textile.rb"))],
                          input=textile, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _elements(html: str) -> set[str]:
    return {tag for tag, _ in _Elements(html).seen}


@pytest.mark.parametrize("markdown", ATTACKS.values(), ids=ATTACKS.keys())
def test_redmine_shows_no_structure_the_markdown_did_not_have(markdown: str) -> None:
    """Redmine's rendering of our Textile has no element that our own HTML of the same
    body lacks (Redmine wraps text in <p> and breaks lines with <br>), and is as safe."""
    redmine = _redmine_html(to_textile(markdown))
    assert _elements(redmine) - _elements(to_html(markdown)) - {"p", "br"} == set()
    assert _unsafe_html(redmine) == []


def test_redmine_renders_the_textile_of_a_whole_body_as_its_html() -> None:
    from tests.test_body import EXPECTED
    redmine = _redmine_html(to_textile(EXPECTED))
    assert _elements(redmine) - _elements(to_html(EXPECTED)) - {"p", "br"} == set()
    assert redmine.count("<h2>") == to_html(EXPECTED).count("<h2>") == 9
    assert redmine.count("<tr>") == to_html(EXPECTED).count("<tr>")


@pytest.mark.parametrize(("markdown", "jira"), [
    ("[click|javascript:alert(1)] [~admin] [^a.txt]",
     "\\[click\\|javascript:alert(1)\\] \\[\\~admin\\] \\[\\^a.txt\\]"),
    ("{html}<script>{html} {color:red}x{color}",
     "\\{html\\}<script>\\{html\\} \\{color:red\\}x\\{color\\}"),
    # not an image: the "!" are escaped; the URL is an ordinary https link
    ("!https://evil.example/x.png|onerror=alert(1)!",
     "\\![https://evil.example/x.png%7Conerror=alert(1])\\!"),
    ("[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),
    ("||a||\n|b|", "\\|\\|a\\|\\|\n\\|b\\|"),
    ("h1. injected\nh2. again\n-- not a list",
     "h1&#46; injected\nh2&#46; again\n\\-\\- not a list"),
], ids=["links-mentions-attachments", "macros", "image", "javascript-link", "table",
        "line-starts"])
def test_jira_wiki_keeps_attacker_markup_literal(markdown: str, jira: str) -> None:
    assert to_jira_wiki(markdown) == jira


@pytest.mark.parametrize(("markdown", "html", "textile"), [
    ("&lt;script&gt; &amp;", "&amp;lt;script&amp;gt; &amp;amp;",
     "&amp;lt;script&amp;gt; &amp;amp;"),
    ("&#106;avascript", "&amp;#106;avascript", "&amp;&#35;106;avascript"),
], ids=["named", "numeric"])
def test_entities_are_shown_as_written(markdown: str, html: str, textile: str) -> None:
    """An entity in agent text is not decoded: the reader sees what the agent sent."""
    assert to_html(markdown) == f"<p>{html}</p>"
    assert to_textile(markdown) == textile
    assert to_text(markdown) == markdown
    assert "&lt;" not in _redmine_html(textile).replace("&amp;lt;", "")


RENDERERS = [to_html, to_text, to_textile, to_jira_wiki, to_adf]
HOSTILE = {
    "asterisks": "*" * 40_000,
    "nested-emphasis": "*a " * 5_000 + "b" + " a*" * 5_000,
    "nested-bold": "**a " * 5_000 + "b" + " a**" * 5_000,
    "brackets": "[" * 40_000,
    "link-openers": "[x](" * 10_000,
    "backticks": "`a``" * 10_000,
    "bullets-on-one-line": "- " * 5_000 + "deep",
    "nested-lists": "".join("  " * i + "- x\n" for i in range(300)),
    "wide-table": "|" + "a|" * 200 + "\n|" + "-|" * 200 + "\n" + ("|" + "b|" * 200 + "\n") * 50,
    "long-line": "word " * 40_000,
    "bare-urls": "https://x.example/ " * 5_000,
    "fences": "```\n" * 10_000,
}


@pytest.mark.parametrize("markdown", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_sizes_render_in_bounded_time(markdown: str) -> None:
    """The hand-written parser took 82 s on 50,000 "[" and raised RecursionError on
    lists 1,000 deep; these 40 kB render through all five markups in 0.1-3 s on a
    loaded two-core machine (markdown-it is linear; the bound leaves room for load)."""
    started = time.perf_counter()
    for render in RENDERERS:
        render(markdown + "\n\n## after")
    assert time.perf_counter() - started < 15


@pytest.mark.parametrize("depth", [5, 12, 40])
def test_deep_nesting_loses_nothing_after_it(depth: int) -> None:
    """markdown-it drops the rest of a document nested past its limit; the list rule is
    held back before that, so the sections after a hostile value still arrive."""
    for markdown in ("".join("  " * i + f"- x{i}\n" for i in range(depth)),
                     "- " * depth + "deep\n"):
        body = markdown + "\n## SLA\n\n- **Priority**: P1\n"
        html = to_html(body)
        assert html.endswith("<h2>SLA</h2>\n<ul><li><strong>Priority</strong>: P1</li></ul>")
        assert "deep" in html or f"x{depth - 1}" in html
        assert to_textile(body).endswith("h2. SLA\n\n* *Priority*: P1")
