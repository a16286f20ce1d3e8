"""Ticket bodies (Markdown, see :mod:`patrol.contract.markup_tree`) in each
helpdesk's markup.

=================  =========================================  ============================
function           for                                        text is made literal by
=================  =========================================  ============================
``to_html``        email, Zendesk, GLPI, Zammad, RT, web UI   HTML escaping
``to_text``        email text, RT, ServiceNow, chat robots    (nothing to escape)
``to_textile``     Redmine (Textile, Redmine's RedCloth3)     numeric character references
``to_jira_wiki``   Jira Server / Data Center (REST v2)        backslash escapes
``to_adf``         Jira Cloud (REST v3)                       JSON (ADF text nodes)
=================  =========================================  ============================

Decisions per markup, checked against the renderers' sources:

- Textile: Redmine keeps entities such as ``&#42;`` (``incoming_entities``) and the
  browser shows ``*``, so characters that could start markup become entities. The
  span markers (``* _ - + ^ ~ % ? =``) only open markup after a non-word character,
  so they are escaped only there: ``db-01`` and ``used_ratio`` stay readable in the
  source Redmine mails and shows in its editor. ``@ | ! " [ ] { } # < > &`` are always
  escaped (``#`` also stops ``#123`` becoming an issue link). A paragraph starting
  like a block signature (``h2. ``, ``bq. ``, ``fn1. ``, ``p(x). ``) would become that
  block (RedCloth3's ``block_textile_prefix``), so its dot is ``&#46;``. ``<pre>``
  content is HTML-escaped by Redmine itself, so code blocks are written raw.
- Jira wiki: the same word-start rule for span markers, ``\\`` before the others;
  a literal backslash is ``&#92;`` (``\\\\`` is a line break in Jira), and the dot
  of a line starting ``h1. `` .. ``h6. `` or ``bq. `` is ``&#46;``. ``{code}`` (or
  ``{noformat}`` when the code contains ``{code``) is left unprocessed by Jira; a
  fence's language is kept only when Jira knows it (else Jira shows an error panel).
- ADF: see :mod:`patrol.contract.markup_adf` (checked against Atlassian's schema).
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from patrol.contract.markup_adf import to_adf
from patrol.contract.markup_tree import (
    Block,
    Code,
    Heading,
    Inline,
    Link,
    ListBlock,
    Paragraph,
    Strong,
    Table,
    Text,
    parse,
    plain,
    safe_url,
)

__all__ = ["safe_url", "to_adf", "to_html", "to_jira_wiki", "to_text", "to_textile"]

# --- HTML -------------------------------------------------------------------------


def _html_inline(nodes: tuple[Inline, ...]) -> str:
    out = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(escape(node.text))
        elif isinstance(node, Code):
            out.append(f"<code>{escape(node.text)}</code>")
        elif isinstance(node, Strong):
            out.append(f"<strong>{_html_inline(node.children)}</strong>")
        elif isinstance(node, Link):
            out.append(f'<a href="{escape(node.url)}">{_html_inline(node.children)}</a>')
        else:
            out.append("<br>")
    return "".join(out)


def _html_list(block: ListBlock) -> str:
    tag = "ol" if block.ordered else "ul"
    start = f' start="{block.start}"' if block.ordered and block.start != 1 else ""
    items = "".join(f"<li>{_html_inline(item.children)}"
                    f"{''.join(_html_list(sub) for sub in item.lists)}</li>"
                    for item in block.items)
    return f"<{tag}{start}>{items}</{tag}>"


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{_html_inline(block.children)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_html_inline(block.children)}</p>"
    if isinstance(block, ListBlock):
        return _html_list(block)
    if isinstance(block, Table):
        head = "".join(f"<th>{_html_inline(c)}</th>" for c in block.header)
        rows = "".join("<tr>" + "".join(f"<td>{_html_inline(c)}</td>" for c in row) + "</tr>"
                       for row in block.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    cls = f' class="language-{escape(block.language)}"' if block.language else ""
    return f"<pre><code{cls}>{escape(block.text)}</code></pre>"


def to_html(markdown: str) -> str:
    """Safe HTML: every character of the input is escaped; raw HTML shows as text;
    only http(s)/mailto links become ``<a>``. Blocks are separated by newlines."""
    return "\n".join(_html_block(block) for block in parse(markdown))


# --- plain text -------------------------------------------------------------------

_UNDERLINE = {1: "=", 2: "-", 3: "~"}


def _text_inline(nodes: tuple[Inline, ...]) -> str:
    out = []
    for node in nodes:
        if isinstance(node, Link):
            label = plain(node.children)
            out.append(node.url if label == node.url else f"{label} ({node.url})")
        elif isinstance(node, Strong):
            out.append(_text_inline(node.children))
        else:
            out.append(plain((node,)))
    return "".join(out)


def _text_list(block: ListBlock, indent: str = "") -> list[str]:
    lines = []
    for n, item in enumerate(block.items, block.start):
        marker = f"{n}." if block.ordered else "-"
        lines.append(f"{indent}{marker} {_text_inline(item.children)}")
        for sub in item.lists:
            lines += _text_list(sub, indent + " " * (len(marker) + 1))
    return lines


def _text_table(table: Table) -> list[str]:
    grid = [[_text_inline(c) for c in table.header],
            *[[_text_inline(c) for c in row] for row in table.rows]]
    widths = [max(len(row[col]) for row in grid) for col in range(len(table.header))]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in grid]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return lines


def _text_block(block: Block) -> str:
    if isinstance(block, Heading):
        title = _text_inline(block.children)
        mark = _UNDERLINE.get(block.level)
        return f"{title}\n{mark * len(title)}" if mark else title
    if isinstance(block, Paragraph):
        return _text_inline(block.children)
    if isinstance(block, ListBlock):
        return "\n".join(_text_list(block))
    if isinstance(block, Table):
        return "\n".join(_text_table(block))
    return "\n".join(f"    {line}" if line else "" for line in block.text.split("\n"))


def to_text(markdown: str) -> str:
    """Readable plain text: headings underlined (``=``, ``-``, ``~`` for levels 1-3),
    list markers kept, tables aligned in columns, code indented four spaces, links as
    ``label (url)``, bold and code marks dropped."""
    return "\n\n".join(_text_block(block) for block in parse(markdown))


# --- shared by Textile and Jira wiki ----------------------------------------------

_SPAN_MARKERS = "*_-+^~%?="


def _escaper(always: dict[str, str], span: str) -> Any:
    """A function escaping text: ``always`` characters everywhere, span markers (with
    ``span`` formatting the character) where they could open a span: at the start or
    after a character that is not a letter or digit."""
    def run(text: str, at_start: bool = True) -> str:
        out = []
        for i, char in enumerate(text):
            if char in always:
                out.append(always[char])
            elif char in _SPAN_MARKERS and ((i == 0 and at_start)
                                            or (i > 0 and not text[i - 1].isalnum())):
                out.append(span.format(char=char, code=ord(char)))
            else:
                out.append(char)
        return "".join(out)
    return run


def _wiki_lists(block: ListBlock, prefix: str, inline: Any) -> list[str]:
    marker = prefix + ("#" if block.ordered else "*")
    lines = []
    for item in block.items:
        lines.append(f"{marker} {inline(item.children)}")
        for sub in item.lists:
            lines += _wiki_lists(sub, marker, inline)
    return lines


def _strip_edges(nodes: tuple[Inline, ...]) -> tuple[Inline, ...]:
    """Bold content without leading/trailing spaces: both markups need the marker
    next to a non-space character."""
    edged = list(nodes)
    if edged and isinstance(edged[0], Text):
        edged[0] = Text(edged[0].text.lstrip())
    if edged and isinstance(edged[-1], Text):
        edged[-1] = Text(edged[-1].text.rstrip())
    return tuple(n for n in edged if not (isinstance(n, Text) and not n.text))


# --- Textile (Redmine) ------------------------------------------------------------

_TEXTILE_ALWAYS = {c: f"&#{ord(c)};" for c in '@|!"[]{}#'} | {
    "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_textile_text = _escaper(_TEXTILE_ALWAYS, "&#{code};")
# @code@ content is not HTML-escaped by Redmine (entities in it are decoded), and an
# "@" would end it, a "|" split a table cell
_TEXTILE_CODE = {"@": "&#64;", "|": "&#124;", "&": "&amp;", "<": "&lt;"}
_ABBR = re.compile(r"(?<=[A-Z0-9])\(")
# RedCloth3's BLOCK_RE, /^(([a-z]+)(\d*))(#{A}#{C})\.(?::(\S+))? (.*)$/, for the tags it
# has handlers for; attributes (A, C) start with one of <>=()-^~{[ (or an entity we
# wrote for one) and run to the dot
_TEXTILE_SIGNATURE = re.compile(
    r"^((?:p|bq|h[1-6]|fn\d*)(?:[<>=()^~&\[{-][^\s.]*)?)\.(?=(?::\S+)? )")


def _textile_inline(nodes: tuple[Inline, ...]) -> str:
    out = []
    for node in nodes:
        if isinstance(node, Text):
            # "CPU(s)" would become an <abbr> of "CPU" titled "s" (RedCloth3 ``pgl``)
            out.append(_ABBR.sub("&#40;", _textile_text(node.text)))
        elif isinstance(node, Code):
            out.append("@" + "".join(_TEXTILE_CODE.get(c, c) for c in node.text) + "@")
        elif isinstance(node, Strong):
            inner = _strip_edges(node.children)
            out.append(f"*{_textile_inline(inner)}*" if inner else "")
        elif isinstance(node, Link):
            out.append(f'"{_textile_inline(node.children)}":{node.url.replace(" ", "%20")}')
        else:
            out.append("\n")
    return "".join(out)


def _textile_row(cells: tuple[tuple[Inline, ...], ...], head: str) -> str:
    return "|" + "|".join(f"{head} {_textile_inline(c)} " for c in cells) + "|"


def _textile_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"h{block.level}. {_textile_inline(block.children)}"
    if isinstance(block, Paragraph):
        return _TEXTILE_SIGNATURE.sub(r"\1&#46;", _textile_inline(block.children), count=1)
    if isinstance(block, ListBlock):
        return "\n".join(_wiki_lists(block, "", _textile_inline))
    if isinstance(block, Table):
        return "\n".join([_textile_row(block.header, "_."),
                          *(_textile_row(row, "") for row in block.rows)])
    # Redmine HTML-escapes <pre> content itself; only a closing tag could end it early
    text = re.sub(r"</(pre|code|kbd|notextile)", "<\u200b/\\1", block.text, flags=re.I)
    return f"<pre>\n{text}\n</pre>"


def to_textile(markdown: str) -> str:
    """Redmine Textile: ``h2.``, ``*``/``#`` lists (nested ``**``, ``#*``),
    ``|_. header |`` tables, ``<pre>`` code, ``*bold*``, ``@code@``, ``"text":url``;
    text escaped as the module docstring says."""
    return "\n\n".join(_textile_block(block) for block in parse(markdown))


# --- Jira wiki (Server / Data Center) ---------------------------------------------

_JIRA_ALWAYS = {c: f"\\{c}" for c in "|!{}[]#"} | {"\\": "&#92;"}
_jira_text = _escaper(_JIRA_ALWAYS, "\\{char}")
# languages Jira's {code} macro knows; another name would render an error panel
_JIRA_LANGUAGES = frozenset({"bash", "c", "cpp", "css", "go", "html", "java", "javascript",
                             "json", "perl", "php", "python", "ruby", "sql", "xml", "yaml"})


# Jira's block signatures at a line's start: headings and a one-line quote
_JIRA_SIGNATURE = re.compile(r"^(\s*(?:h[1-6]|bq))\.(?=\s)", re.IGNORECASE | re.MULTILINE)


def _jira_url(url: str) -> str:
    return url.replace("|", "%7C").replace("]", "%5D").replace(" ", "%20")


def _jira_inline(nodes: tuple[Inline, ...]) -> str:
    out = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(_jira_text(node.text))
        elif isinstance(node, Code):
            out.append("{{" + _jira_text(node.text) + "}}")
        elif isinstance(node, Strong):
            inner = _strip_edges(node.children)
            out.append(f"*{_jira_inline(inner)}*" if inner else "")
        elif isinstance(node, Link):
            label = plain(node.children)
            out.append(f"[{_jira_url(node.url)}]" if label == node.url
                       else f"[{_jira_inline(node.children)}|{_jira_url(node.url)}]")
        else:
            out.append("\n")
    return "".join(out)


def _jira_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"h{block.level}. {_jira_inline(block.children)}"
    if isinstance(block, Paragraph):
        return _JIRA_SIGNATURE.sub(r"\1&#46;", _jira_inline(block.children))
    if isinstance(block, ListBlock):
        return "\n".join(_wiki_lists(block, "", _jira_inline))
    if isinstance(block, Table):
        head = "||" + "||".join(_jira_inline(c) or " " for c in block.header) + "||"
        rows = ["|" + "|".join(_jira_inline(c) or " " for c in row) + "|"
                for row in block.rows]
        return "\n".join([head, *rows])
    macro = "noformat" if "{code" in block.text else "code"
    language = block.language.lower()
    opening = (f"{{code:{language}}}" if macro == "code" and language in _JIRA_LANGUAGES
               else f"{{{macro}}}")
    return f"{opening}\n{block.text}\n{{{macro}}}"


def to_jira_wiki(markdown: str) -> str:
    """Jira wiki markup (Server/Data Center, REST v2): ``h2.``, ``*``/``#`` lists,
    ``||header||`` tables, ``{code}``, ``*bold*``, ``{{code}}``, ``[text|url]``."""
    return "\n\n".join(_jira_block(block) for block in parse(markdown))
