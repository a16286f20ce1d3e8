"""Ticket bodies in Atlassian Document Format (Jira Cloud REST v3); re-exported as
:func:`patrol.contract.markup.to_adf`.

Checked against Atlassian's published JSON schema (``@atlaskit/adf-schema``,
``json-schema/v1/full.json``; see ``tests/test_bridge_markup.py``): the ``code`` mark
may only be combined with ``link``, so code inside bold loses the bold; text nodes are
never empty (the schema requires at least one character); a list item starts with a
paragraph, nested lists follow it; table cells hold one paragraph.
"""

from __future__ import annotations

from typing import Any

from patrol.contract.markup_tree import (
    Block,
    Break,
    Code,
    Heading,
    Inline,
    Item,
    Link,
    ListBlock,
    Paragraph,
    Strong,
    Table,
    parse,
)


def _adf_inline(nodes: tuple[Inline, ...], marks: tuple[dict[str, Any], ...] = ()
                ) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for node in nodes:
        if isinstance(node, Break):
            out.append({"type": "hardBreak"})
        elif isinstance(node, Strong):
            out += _adf_inline(node.children, (*marks, {"type": "strong"}))
        elif isinstance(node, Link):
            out += _adf_inline(node.children,
                               (*marks, {"type": "link", "attrs": {"href": node.url}}))
        elif node.text:
            own = marks
            if isinstance(node, Code):  # code combines with link only (ADF schema)
                own = (*(m for m in marks if m["type"] == "link"), {"type": "code"})
            text: dict[str, Any] = {"type": "text", "text": node.text}
            if own:
                text["marks"] = [dict(m) for m in own]
            out.append(text)
    return out


def _paragraph(nodes: tuple[Inline, ...]) -> dict[str, Any]:
    return {"type": "paragraph", "content": _adf_inline(nodes)}


def _adf_item(item: Item) -> dict[str, Any]:
    return {"type": "listItem",
            "content": [_paragraph(item.children), *(_adf_list(sub) for sub in item.lists)]}


def _adf_list(block: ListBlock) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "orderedList" if block.ordered else "bulletList",
                            "content": [_adf_item(item) for item in block.items]}
    if block.ordered and block.start != 1:
        node["attrs"] = {"order": block.start}
    return node


def _adf_row(cells: tuple[tuple[Inline, ...], ...], kind: str) -> dict[str, Any]:
    return {"type": "tableRow",
            "content": [{"type": kind, "content": [_paragraph(c)]} for c in cells]}


def _adf_block(block: Block) -> dict[str, Any]:
    if isinstance(block, Heading):
        return {"type": "heading", "attrs": {"level": block.level},
                "content": _adf_inline(block.children)}
    if isinstance(block, Paragraph):
        return _paragraph(block.children)
    if isinstance(block, ListBlock):
        return _adf_list(block)
    if isinstance(block, Table):
        return {"type": "table", "content": [_adf_row(block.header, "tableHeader"),
                                             *(_adf_row(r, "tableCell") for r in block.rows)]}
    node: dict[str, Any] = {"type": "codeBlock",
                            "content": [{"type": "text", "text": block.text}] if block.text
                            else []}
    if block.language:
        node["attrs"] = {"language": block.language}
    return node


def to_adf(markdown: str) -> dict[str, Any]:
    """An Atlassian Document Format document (Jira Cloud REST v3):
    ``{"version": 1, "type": "doc", "content": [...]}`` with heading, paragraph,
    bulletList/orderedList/listItem, table/tableRow/tableHeader/tableCell and codeBlock
    nodes; text marks strong, code and link."""
    return {"version": 1, "type": "doc", "content": [_adf_block(b) for b in parse(markdown)]}
