"""Size budget: shrink a JSON-like document until its JSON fits, keeping it valid.

Each step finds the single heaviest shrinkable node (by serialised size): a list
with more than one element loses its second half (collectors sort lists most
important first, so the head is what matters), or a string longer than
``MIN_STRING`` is cut to half and ends in "..." (ASCII: "…" costs 6 bytes escaped).
Structure is never broken: no key
disappears and every list keeps its first element. A shrunk dict gets
``"truncated": true``; anything else is wrapped as ``{"value": ..., "truncated": true}``.
If even that cannot fit (a dict with thousands of keys), the document is replaced
by an error that says how big it was.
"""

from __future__ import annotations

import copy
import json
from typing import Any

MIN_STRING = 64
_MAX_STEPS = 500
_ELLIPSIS = "..."


def json_size(obj: Any) -> int:
    """Bytes of ``obj`` serialised as the agent sends it (ASCII-escaped JSON)."""
    return len(json.dumps(obj, default=str))


def _heaviest(node: Any, best: list[Any], parent: Any = None, key: Any = None) -> int:
    """Serialised size of ``node``; records the heaviest shrinkable node in ``best``
    as [size, container, key-in-parent]."""
    if isinstance(node, dict):
        size = 2 + sum(json_size(k) + 2 + _heaviest(v, best, node, k) for k, v in node.items())
        size += 2 * max(0, len(node) - 1)
    elif isinstance(node, list):
        size = 2 + sum(_heaviest(v, best, node, i) for i, v in enumerate(node))
        size += 2 * max(0, len(node) - 1)
        if len(node) > 1 and size > best[0]:
            best[:] = [size, node, None]
    else:
        size = json_size(node)
        if isinstance(node, str) and len(node) > MIN_STRING + len(_ELLIPSIS) and size > best[0]:
            best[:] = [size, parent, key]
    return size


def _shrink_once(doc: Any) -> bool:
    best: list[Any] = [0, None, None]
    _heaviest(doc, best)
    _, container, key = best
    if container is None:
        return False
    if key is None and isinstance(container, list):
        del container[(len(container) + 1) // 2:]
    else:
        text = container[key]
        container[key] = text[: max(MIN_STRING, len(text) // 2)] + _ELLIPSIS
    return True


def fit(obj: Any, limit: int) -> tuple[Any, bool]:
    """``(document, truncated)`` where ``json_size(document) <= limit``."""
    if json_size(obj) <= limit:
        return obj, False
    doc = copy.deepcopy(obj)
    if not isinstance(doc, dict):
        doc = {"value": doc}
    doc["truncated"] = True
    for _ in range(_MAX_STEPS):
        if json_size(doc) <= limit or not _shrink_once(doc):
            break
    if json_size(doc) <= limit:
        return doc, True
    return {"truncated": True,
            "error": f"output of {json_size(obj)} bytes does not fit the {limit}-byte budget"}, True
