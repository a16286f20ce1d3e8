"""Patrol's ticket Markdown parsed into a small block/inline tree, for the renderers in
:mod:`patrol.contract.markup` (the helpdesk adapters, and the collector's web page,
which shows bodies with ``to_html`` so it shows what a helpdesk shows).

Why our own parser: ticket bodies (``collector/tickets/body.py``) use a small, known subset,
and every character of them can come from an agent (summaries, diagnostics, log
lines). A parser that knows only this subset, and keeps everything else as text,
lets every renderer escape text for its own markup in one place.

The subset, as CommonMark writes it:

- blocks: ATX headings (``#`` .. ``######``), paragraphs (a newline inside one is a
  line break), ``-``/``*``/``+`` bullets and ``1.`` numbered items, nested by
  indentation (two or more spaces deeper than the parent item), pipe tables with a
  ``|---|`` separator row (``\\|`` is a pipe inside a cell), fenced code blocks
  (three or more backticks, closed by a fence at least as long; an unclosed fence
  runs to the end);
- inline: code spans, ``**bold**``, ``[text](url)`` links, bare ``http(s)://`` URLs,
  backslash escapes of ASCII punctuation.

Links are kept only for ``http``, ``https`` and ``mailto`` URLs (:func:`safe_url`,
also the web page's rule for a ticket's runbook link); any other link (``javascript:``,
relative paths that mean nothing in a helpdesk, ``//host``) stays literal text. Raw
HTML is text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

# --- inline nodes ---------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Strong:
    children: tuple[Inline, ...]


@dataclass(frozen=True)
class Link:
    """A link; ``children`` is the label (equal to the URL for a bare URL)."""

    children: tuple[Inline, ...]
    url: str


@dataclass(frozen=True)
class Break:
    """A line break inside a paragraph."""


Inline = Union[Text, Code, Strong, Link, Break]  # noqa: UP007 (used at runtime)

# --- block nodes ----------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    level: int
    children: tuple[Inline, ...]


@dataclass(frozen=True)
class Paragraph:
    children: tuple[Inline, ...]


@dataclass(frozen=True)
class Item:
    """A list item: one line of inline content, then any nested lists."""

    children: tuple[Inline, ...]
    lists: tuple[ListBlock, ...] = ()


@dataclass(frozen=True)
class ListBlock:
    ordered: bool
    items: tuple[Item, ...]
    start: int = 1


@dataclass(frozen=True)
class Table:
    """``header`` and every row have the same number of cells."""

    header: tuple[tuple[Inline, ...], ...]
    rows: tuple[tuple[tuple[Inline, ...], ...], ...]


@dataclass(frozen=True)
class CodeBlock:
    text: str
    language: str = ""


Block = Union[Heading, Paragraph, ListBlock, Table, CodeBlock]  # noqa: UP007

# --- inline parsing -------------------------------------------------------------

_INLINE = re.compile(
    r"(?P<code>`+)(?P<code_text>.+?)(?P=code)(?!`)"
    r"|\\(?P<escaped>[!-/:-@\[-`{-~])"
    r"|\[(?P<link_text>[^\]\n]+)\]\((?P<link_url>[^()\s]+)\)"
    r"|\*\*(?P<bold>[^*\n]+?)\*\*"
    r"|(?P<url>https?://[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]])"
)
_SAFE_URL = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)


def safe_url(url: str) -> bool:
    """Whether ``url`` may become a link: http, https or mailto, no control characters."""
    return bool(_SAFE_URL.match(url)) and not any(ord(c) < 32 for c in url)


def _merge(nodes: list[Inline]) -> tuple[Inline, ...]:
    """Adjacent text nodes joined, empty ones dropped: renderers see whole runs."""
    out: list[Inline] = []
    for node in nodes:
        if isinstance(node, Text):
            if not node.text:
                continue
            if out and isinstance(out[-1], Text):
                out[-1] = Text(out[-1].text + node.text)
                continue
        out.append(node)
    return tuple(out)


def parse_inline(text: str) -> tuple[Inline, ...]:
    """One line of inline Markdown as inline nodes."""
    nodes: list[Inline] = []
    pos = 0
    for match in _INLINE.finditer(text):
        nodes.append(Text(text[pos:match.start()]))
        pos = match.end()
        if match["code"]:
            nodes.append(Code(match["code_text"].strip() or match["code_text"]))
        elif match["escaped"]:
            nodes.append(Text(match["escaped"]))
        elif match["link_text"]:
            label, url = parse_inline(match["link_text"]), match["link_url"]
            if safe_url(url):
                nodes.append(Link(label, url))
            else:
                nodes += [Text("["), *label, Text(f"]({url})")]
        elif match["bold"]:
            nodes.append(Strong(parse_inline(match["bold"])))
        else:
            nodes.append(Link((Text(match["url"]),), match["url"]))
    nodes.append(Text(text[pos:]))
    return _merge(nodes)


# --- block parsing --------------------------------------------------------------

_HEADING = re.compile(r"^[ ]{0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^[ ]{0,3}(`{3,})[ \t]*([\w+.-]*)[ \t]*$")
_ITEM = re.compile(r"^(?P<indent>[ ]*)(?:(?P<bullet>[-*+])|(?P<number>\d{1,9})[.)])"
                   r"[ \t]+(?P<text>.*)$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def split_row(line: str) -> list[str]:
    """A table row's cells, split on pipes that are not backslash-escaped (escapes are
    kept for :func:`parse_inline`)."""
    line = line.strip()
    cells, current, i = [], [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            current.append(line[i:i + 2])
            i += 2
            continue
        if line[i] == "|":
            cells.append("".join(current))
            current = []
        else:
            current.append(line[i])
        i += 1
    cells.append("".join(current))
    if line.startswith("|"):
        cells = cells[1:]
    if line.endswith("|") and not line.endswith("\\|") and cells:
        cells = cells[:-1]
    return [cell.strip() for cell in cells]


def _is_table_start(lines: list[str], i: int) -> bool:
    return ("|" in lines[i] and i + 1 < len(lines) and "-" in lines[i + 1]
            and bool(_TABLE_SEPARATOR.match(lines[i + 1])))


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    return bool(not line.strip() or _HEADING.match(line) or _FENCE.match(line)
                or _ITEM.match(line) or _is_table_start(lines, i))


def _table(lines: list[str]) -> Table:
    header = split_row(lines[0])
    rows = []
    for line in lines[2:]:
        cells = (split_row(line) + [""] * len(header))[:len(header)]
        rows.append(tuple(parse_inline(c) for c in cells))
    return Table(tuple(parse_inline(c) for c in header), tuple(rows))


def _list(lines: list[str], i: int) -> tuple[ListBlock, int]:
    """The list starting at ``lines[i]``; items indented two or more spaces deeper
    than the current level nest under the previous item."""
    first = _ITEM.match(lines[i])
    assert first is not None
    indent, ordered = len(first["indent"]), first["number"] is not None
    start = int(first["number"]) if ordered else 1
    items: list[Item] = []
    while i < len(lines) and (m := _ITEM.match(lines[i])):
        depth = len(m["indent"])
        if depth < indent:
            break
        if depth >= indent + 2 and items:
            child, i = _list(lines, i)
            items[-1] = Item(items[-1].children, (*items[-1].lists, child))
            continue
        if (m["number"] is not None) != ordered:
            break
        items.append(Item(parse_inline(m["text"].strip())))
        i += 1
    return ListBlock(ordered, tuple(items), start), i


def parse(markdown: str) -> tuple[Block, ...]:
    """``markdown`` as a tuple of blocks (see the module docstring for the subset)."""
    lines = markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif fence := _FENCE.match(line):
            ticks, body = len(fence.group(1)), []
            i += 1
            while i < len(lines) and not re.match(rf"^[ ]{{0,3}}`{{{ticks},}}\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            i += 1  # the closing fence (or past the end)
            blocks.append(CodeBlock("\n".join(body), fence.group(2)))
        elif heading := _HEADING.match(line):
            blocks.append(Heading(len(heading.group(1)), parse_inline(heading.group(2))))
            i += 1
        elif _is_table_start(lines, i):
            end = i + 2
            while end < len(lines) and lines[end].strip().startswith("|"):
                end += 1
            blocks.append(_table(lines[i:end]))
            i = end
        elif _ITEM.match(line):
            block, i = _list(lines, i)
            blocks.append(block)
        else:
            parts: list[Inline] = list(parse_inline(line.strip()))
            i += 1
            while i < len(lines) and not _starts_block(lines, i):
                parts += [Break(), *parse_inline(lines[i].strip())]
                i += 1
            blocks.append(Paragraph(_merge(parts)))
    return tuple(blocks)


def plain(nodes: tuple[Inline, ...]) -> str:
    """The text of inline nodes without any formatting (a link shows its label)."""
    out = []
    for node in nodes:
        if isinstance(node, Text | Code):
            out.append(node.text)
        elif isinstance(node, Strong | Link):
            out.append(plain(node.children))
        else:
            out.append("\n")
    return "".join(out)
