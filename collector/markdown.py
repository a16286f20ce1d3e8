"""A small, safe Markdown-to-HTML renderer for ticket bodies on the web pages.

Why our own: the bodies come from :mod:`collector.body`, which writes a small, known
subset, and every character of them can be agent-provided (summaries, diagnostics,
log lines). A renderer that only knows this subset and escapes everything else is
short enough to read in full, and needs no dependency whose raw-HTML pass-through
we would have to switch off.

Supported, as CommonMark writes it:

- blocks: ATX headings (``#`` to ``######``), paragraphs, ``-``/``*`` bullet lists,
  ``1.`` ordered lists (flat, one line per item), pipe tables with a ``|---|``
  separator row (``\\|`` is a pipe inside a cell), fenced code blocks (three or more
  backticks, closed by a fence at least as long; an unclosed fence runs to the end);
- inline: code spans, ``**bold**``, ``[text](url)`` links, bare ``http(s)://`` URLs
  and backslash escapes of ASCII punctuation.

Safety contract: raw HTML is never passed through (it is shown as text); every text
and attribute value is escaped; links are emitted only for ``http``, ``https`` and
``mailto`` URLs and for paths on this site (``/...``, not ``//host``), so a
``javascript:`` link stays text. Output is :class:`markupsafe.Markup`.
"""

from __future__ import annotations

import re
from html import escape

from markupsafe import Markup

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^[ ]{0,3}(`{3,})[ \t]*([\w+.-]*)[ \t]*$")
_BULLET = re.compile(r"^[ ]{0,3}[-*][ \t]+(.*)$")
_ORDERED = re.compile(r"^[ ]{0,3}(\d{1,9})\.[ \t]+(.*)$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_INLINE = re.compile(
    r"(?P<code>`+)(?P<code_text>.+?)(?P=code)(?!`)"
    r"|\\(?P<escaped>[!-/:-@\[-`{-~])"
    r"|\[(?P<link_text>[^\]\n]+)\]\((?P<link_url>[^()\s]+)\)"
    r"|\*\*(?P<bold>[^*\n]+?)\*\*"
    r"|(?P<url>https?://[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]])"
)
_SAFE_URL = re.compile(r"^(https?://|mailto:|/(?![/\\]))", re.IGNORECASE)


def safe_url(url: str) -> bool:
    """Whether ``url`` may become a link: http(s), mailto, or a path on this site."""
    return bool(_SAFE_URL.match(url)) and not any(ord(c) < 32 for c in url)


def inline(text: str) -> str:
    """One line of inline Markdown as escaped HTML."""
    out: list[str] = []
    pos = 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[pos:match.start()]))
        pos = match.end()
        if match["code"]:
            out.append(f"<code>{escape(match['code_text'].strip() or match['code_text'])}</code>")
        elif match["escaped"]:
            out.append(escape(match["escaped"]))
        elif match["link_text"]:
            url = match["link_url"]
            label = inline(match["link_text"])
            out.append(f'<a href="{escape(url)}">{label}</a>' if safe_url(url)
                       else f"[{label}]({escape(url)})")
        elif match["bold"]:
            out.append(f"<strong>{inline(match['bold'])}</strong>")
        else:
            out.append(f'<a href="{escape(match["url"])}">{escape(match["url"])}</a>')
    out.append(escape(text[pos:]))
    return "".join(out)


def split_row(line: str) -> list[str]:
    """A table row's cells, split on pipes that are not backslash-escaped."""
    line = line.strip()
    cells, current, i = [], [], 0
    while i < len(line):
        char = line[i]
        if char == "\\" and i + 1 < len(line):
            current.append(line[i:i + 2])  # kept escaped; inline() unescapes it
            i += 2
            continue
        if char == "|":
            cells.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    cells.append("".join(current))
    if line.startswith("|"):
        cells = cells[1:]
    if line.endswith("|") and not line.endswith("\\|") and cells:
        cells = cells[:-1]
    return [cell.strip() for cell in cells]


def _table(lines: list[str]) -> str:
    head = split_row(lines[0])
    rows = [split_row(line) for line in lines[2:]]
    html = ["<table>", "<thead><tr>", *(f"<th>{inline(c)}</th>" for c in head),
            "</tr></thead>", "<tbody>"]
    for row in rows:
        row = (row + [""] * len(head))[:len(head)]
        html += ["<tr>", *(f"<td>{inline(c)}</td>" for c in row), "</tr>"]
    return "".join([*html, "</tbody></table>"])


def _is_table_start(lines: list[str], i: int) -> bool:
    return ("|" in lines[i] and i + 1 < len(lines) and "-" in lines[i + 1]
            and bool(_TABLE_SEPARATOR.match(lines[i + 1])))


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    return bool(not line.strip() or _HEADING.match(line) or _FENCE.match(line)
                or _BULLET.match(line) or _ORDERED.match(line) or _is_table_start(lines, i))


def render(text: str) -> Markup:
    """``text`` (Markdown) as safe HTML; see the module docstring for what is supported."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    html: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif fence := _FENCE.match(line):
            ticks, language = fence.group(1), fence.group(2)
            body: list[str] = []
            i += 1
            while i < len(lines) and not re.match(rf"^[ ]{{0,3}}`{{{len(ticks)},}}\s*$",
                                                  lines[i]):
                body.append(lines[i])
                i += 1
            i += 1  # the closing fence (or past the end)
            cls = f' class="language-{escape(language)}"' if language else ""
            html.append(f"<pre><code{cls}>{escape(chr(10).join(body))}</code></pre>")
        elif heading := _HEADING.match(line):
            level = len(heading.group(1))
            html.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
            i += 1
        elif _is_table_start(lines, i):
            end = i + 2
            while end < len(lines) and lines[end].strip().startswith("|"):
                end += 1
            html.append(_table(lines[i:end]))
            i = end
        elif _BULLET.match(line) or _ORDERED.match(line):
            pattern, tag = (_BULLET, "ul") if _BULLET.match(line) else (_ORDERED, "ol")
            items = []
            first = _ORDERED.match(line)
            while i < len(lines) and (item := pattern.match(lines[i])):
                items.append(f"<li>{inline(item.group(item.lastindex or 1))}</li>")
                i += 1
            start = f' start="{int(first.group(1))}"' if first and first.group(1) != "1" else ""
            html.append(f"<{tag}{start}>{''.join(items)}</{tag}>")
        else:
            para = [line.strip()]
            i += 1
            while i < len(lines) and not _starts_block(lines, i):
                para.append(lines[i].strip())
                i += 1
            html.append(f"<p>{'<br>'.join(inline(p) for p in para)}</p>")
    return Markup("\n".join(html))
