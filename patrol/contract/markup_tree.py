"""Patrol's ticket Markdown as a small block/inline tree, for the renderers in
:mod:`patrol.contract.markup` (the helpdesk adapters, and the collector's web page,
which shows bodies with ``to_html`` so it shows what a helpdesk shows).

The Markdown is parsed by markdown-it-py (a maintained CommonMark parser), switched
down to the subset ticket bodies (``collector/tickets/body.py``) use; every character
of a body can come from an agent (summaries, diagnostics, log lines), so everything
outside the subset stays text, and each renderer escapes text for its own markup in
one place.

- blocks: ATX headings, paragraphs (a newline inside one is a line break), ``-``/
  ``*``/``+`` bullets and numbered items (nested by CommonMark's indentation rules),
  GFM pipe tables (``\\|`` is a pipe inside a cell; short rows padded), fenced code
  blocks (an unclosed fence runs to the end);
- inline: code spans, ``**bold**``, ``[text](url)`` links, bare ``http(s)://`` URLs,
  backslash escapes.

Off, so they stay text as the agent wrote them: raw HTML, HTML entities (``&amp;``
shows as ``&amp;``), indented code, block quotes, rules, setext headings, reference
links, images, ``<...>`` autolinks, strikethrough. ``*em*``, ``_em_`` and ``__bold__``
keep their markers as text: bodies never write them, and in diagnostics they are
names such as ``__init__.py`` or globs such as ``*.log``.

Links are kept only for ``http``, ``https`` and ``mailto`` URLs (:func:`safe_url`,
also the web page's rule for a ticket's runbook link), a ``[text](url)`` link's URL
percent-encoded by markdown-it (so a ``"`` in it is ``%22``); any other link (``javascript:``,
``data:``, relative paths that mean nothing in a helpdesk, ``//host``) stays literal
text. Nesting is bounded (markdown-it's ``maxNesting``; bold inside bold is one
bold), so hostile input cannot make the renderers recurse deeply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock, list_block
from markdown_it.token import Token

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
    """A link; ``children`` is the label (the URL as written for a bare URL)."""

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
    """A list item: one run of inline content, then any nested lists. (Other blocks
    CommonMark allows in an item, which bodies never write, join the inline run after
    a line break: every helpdesk markup can show that.)"""

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

# --- the parser -------------------------------------------------------------------

_SAFE_URL = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)
# A bare URL ends before trailing punctuation ("see https://x.example/a." links
# https://x.example/a)
_BARE_URL = re.compile(r"https?://[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]]")
_LANGUAGE = re.compile(r"[\w+.-]+")
# markdown-it counts open tokens (a list level is two: list and item) and, at this
# depth, drops everything to the end of the document; :func:`_list_within_depth`
# keeps lists from getting there, so deeper items stay text and nothing is lost.
MAX_NESTING = 20


def safe_url(url: str) -> bool:
    """Whether ``url`` may become a link: http, https or mailto, no control characters."""
    return bool(_SAFE_URL.match(url)) and not any(ord(c) < 32 for c in url)


class _TicketMarkdown(MarkdownIt):
    """markdown-it with Patrol's link rule: a link whose URL fails it is not a link."""

    def validateLink(self, url: str) -> bool:  # markdown-it's name and signature
        return safe_url(url)


def _list_within_depth(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """markdown-it's list rule, refusing a list whose items would reach ``MAX_NESTING``
    (the line then stays text in the item around it)."""
    return state.level + 2 < MAX_NESTING and list_block(state, start, end, silent)


_MARKDOWN = _TicketMarkdown("zero", {"maxNesting": MAX_NESTING}).enable([
    "heading", "list", "table", "fence", "newline", "escape", "backticks", "emphasis",
    "link"])
# the same alternatives markdown-it registers the list rule with (it may end them)
_MARKDOWN.block.ruler.at("list", _list_within_depth,
                         {"alt": ["paragraph", "reference", "blockquote"]})


def _merge(nodes: list[Inline]) -> tuple[Inline, ...]:
    """Adjacent text nodes joined (once per run, so linear), empty ones dropped:
    renderers see whole runs."""
    out: list[Inline] = []
    run: list[str] = []
    for node in (*nodes, None):
        if isinstance(node, Text):
            run.append(node.text)
            continue
        if text := "".join(run):
            out.append(Text(text))
        run = []
        if node is not None:
            out.append(node)
    return tuple(out)


def _bare_urls(nodes: tuple[Inline, ...]) -> tuple[Inline, ...]:
    """Bare ``http(s)://`` URLs in text (outside links and code) made links, the URL as
    written (the pattern leaves out spaces, quotes and angle brackets; renderers escape
    the rest), so label and URL stay equal and text and Jira show the URL once."""
    if not any(isinstance(node, Strong) or (isinstance(node, Text) and "://" in node.text)
               for node in nodes):
        return nodes  # most runs: nothing to split, already merged
    out: list[Inline] = []
    for node in nodes:
        if isinstance(node, Strong):
            out.append(Strong(_bare_urls(node.children)))
        elif isinstance(node, Text) and "://" in node.text:
            pos = 0
            for match in _BARE_URL.finditer(node.text):
                if not safe_url(match[0]):
                    continue
                out += [Text(node.text[pos:match.start()]), Link((Text(match[0]),), match[0])]
                pos = match.end()
            out.append(Text(node.text[pos:]))
        else:
            out.append(node)
    return _merge(out)


def _inline(token: Token) -> tuple[Inline, ...]:
    """An ``inline`` token's children as inline nodes. Only bold and links open a
    frame (at most three deep: a link in bold in a link cannot happen, bold in bold is
    one bold); literal markers and spliced bold cost nothing, so hostile nesting
    stays linear."""
    frames: list[tuple[str, list[Inline]]] = [("", [])]  # (the link's URL or "", nodes)
    bold: list[bool] = []  # for each open "**": did it open a frame?
    for child in token.children or ():
        nodes = frames[-1][1]
        if child.type in ("text", "text_special"):
            nodes.append(Text(child.content))
        elif child.type == "code_inline":
            nodes.append(Code(child.content))
        elif child.type in ("softbreak", "hardbreak"):
            nodes.append(Break())
        elif child.type in ("strong_open", "strong_close") and child.markup == "**":
            if child.type == "strong_open":
                bold.append(not any(bold))
                if bold[-1]:
                    frames.append(("", []))
            elif bold.pop():
                inner = frames.pop()[1]
                frames[-1][1].append(Strong(_merge(inner)))
        elif child.type in ("strong_open", "strong_close", "em_open", "em_close"):
            nodes.append(Text(child.markup))  # __x__, *x*, _x_: text, markers kept
        elif child.type == "link_open":
            frames.append((str(child.attrGet("href") or ""), []))
        elif child.type == "link_close":
            url, inner = frames.pop()
            if safe_url(url):
                frames[-1][1].append(Link(_merge(inner) or (Text(url),), url))
            else:  # markdown-it lets an empty URL through: the label alone
                frames[-1][1].extend(inner)
        else:
            nodes.append(Text(child.content))
    return _bare_urls(_merge(frames[0][1]))


def _flat(block: Block) -> tuple[Inline, ...]:
    """A block inside a list item as inline content (see :class:`Item`)."""
    if isinstance(block, Heading):
        return (Text("#" * block.level + " "), *block.children)
    if isinstance(block, Paragraph):
        return block.children
    if isinstance(block, CodeBlock):
        lines: list[Inline] = [Code(line) for line in block.text.split("\n") if line]
        return tuple(node for i, line in enumerate(lines)
                     for node in ((Break(), line) if i else (line,)))
    if isinstance(block, Table):
        rows = (block.header, *block.rows)
        out: list[Inline] = []
        for i, row in enumerate(rows):
            out += [Break()] * bool(i)
            for j, cell in enumerate(row):
                out += [Text(" | ")] * bool(j)
                out += cell
        return _merge(out)
    return ()


def _item(blocks: list[Block]) -> Item:
    children: list[Inline] = []
    lists: list[ListBlock] = []
    for block in blocks:
        if isinstance(block, ListBlock):
            lists.append(block)
        elif flat := _flat(block):
            children += [Break(), *flat] if children else flat
    return Item(_merge(children), tuple(lists))


def _blocks(tokens: list[Token], i: int, end: str) -> tuple[list[Block], int]:
    """Blocks from ``tokens[i]`` up to the token of type ``end``, and the index after it."""
    blocks: list[Block] = []
    while i < len(tokens) and tokens[i].type != end:
        token = tokens[i]
        if token.type == "heading_open":
            title = _inline(tokens[i + 1])
            # a lone "#" (a diagnostics value, a comment line) is an empty heading to
            # CommonMark; an empty heading tells a reader nothing, the "#" does
            blocks.append(Heading(int(token.tag[1:]), title) if title
                          else Paragraph((Text(token.markup),)))
            i += 3
        elif token.type == "paragraph_open":
            blocks.append(Paragraph(_inline(tokens[i + 1])))
            i += 3
        elif token.type == "fence":
            words = token.info.split()
            language = words[0] if words and _LANGUAGE.fullmatch(words[0]) else ""
            text = token.content[:-1] if token.content.endswith("\n") else token.content
            blocks.append(CodeBlock(text, language))
            i += 1
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            ordered = token.type == "ordered_list_open"
            start = int(token.attrGet("start") or 1) if ordered else 1
            items, i = [], i + 1
            while tokens[i].type == "list_item_open":
                content, i = _blocks(tokens, i + 1, "list_item_close")
                items.append(_item(content))
            blocks.append(ListBlock(ordered, tuple(items), start))
            i += 1  # the list's close
        elif token.type == "table_open":
            rows: list[tuple[tuple[Inline, ...], ...]] = []
            i += 1
            while tokens[i].type != "table_close":
                if tokens[i].type == "tr_open":
                    cells = []
                    i += 1
                    while tokens[i].type != "tr_close":
                        if tokens[i].type == "inline":
                            cells.append(_inline(tokens[i]))
                        i += 1
                    rows.append(tuple(cells))
                i += 1
            blocks.append(Table(rows[0], tuple(rows[1:])))
            i += 1
        else:  # nothing else is enabled; skip rather than guess
            i += 1
    return blocks, i + 1


def parse(markdown: str) -> tuple[Block, ...]:
    """``markdown`` as a tuple of blocks (see the module docstring for the subset)."""
    return tuple(_blocks(_MARKDOWN.parse(markdown), 0, "")[0])


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
