"""Text and numbers every store can hold: one cleaning rule for SQLite and PostgreSQL.

What arrives from agents is whatever a check or a Nagios plugin printed. Three things
in it are fine in Python and in SQLite but refused by PostgreSQL, which used to turn
one odd plugin output into a 500 on PostgreSQL only (and an agent retrying it forever):

- a NUL character (text and jsonb cannot contain U+0000),
- a lone surrogate (what ``surrogateescape`` makes of an undecodable byte, or a
  ``\\ud800`` escape in JSON): not valid UTF-8, so neither driver can even send it,
- NaN and +/-Infinity inside JSON (jsonb follows the JSON standard, which has no such
  numbers; SQLite would store non-standard JSON text).

Decisions, applied by both backends to every value bound to a statement (reads too, so a
lookup by a dirty name finds the clean row) and by the API to a payload before it is
validated (so the engine, the ticket body and the helpdesks see the same text as the
store):

- NUL and lone surrogates become U+FFFD, the replacement character: what a UTF-8
  decoder shows for bytes it cannot read, so an operator still sees *where* something
  odd was printed, and the rest of the text is kept. Dropping them silently could join
  two words; refusing the event would lose a real breach over one unreadable byte.
- A non-finite number inside JSON (diagnostics, thresholds, a stored measurement)
  becomes null: JSON has no other spelling for "no number". A non-finite plain float
  bound to a column becomes NULL too, because SQLite stores NaN as NULL anyway.
  The API refuses a non-finite *measurement* value outright (see collector/ingest/api.py).

Cost: the common clean value is checked, not rebuilt. A string is scanned only when it
is not ASCII or holds a NUL; JSON is encoded first and walked only if its text shows a
marker (``\\u0000``, a ``\\ud8xx``-``\\udfxx`` escape, ``NaN``, ``Infinity``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

REPLACEMENT = "\ufffd"

_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
# In JSON text made with ensure_ascii (every non-ASCII character escaped): the escapes
# of NUL and of surrogates (valid pairs too: those are walked and kept), and the tokens
# json writes for non-finite floats. A false positive only costs a walk.
_MARKERS = re.compile(r"\\u0000|\\u[dD][89abcdefABCDEF]|NaN|Infinity")
_MARKER_BYTES = re.compile(rb"\\u0000|\\u[dD][89abcdefABCDEF]|NaN|Infinity")
_encode = json.JSONEncoder(separators=(",", ":")).encode


def clean_text(text: str) -> str:
    """``text`` with NUL and every surrogate code point as U+FFFD. (JSON's escaped
    surrogate *pairs* are already one character once parsed; a surrogate left in a
    Python string is always an error of some decoding.)"""
    if text.isascii() and "\x00" not in text:
        return text
    return _BAD_CHARS.sub(REPLACEMENT, text)


def clean_json(value: Any) -> Any:
    """``value`` (JSON-shaped: dict, list, str, numbers, None) with every string and
    key cleaned by :func:`clean_text` and non-finite floats as None. Returns ``value``
    itself when nothing needed cleaning."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean_json(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    return value


def json_text(value: Any) -> str:
    """Compact JSON text of ``value`` after :func:`clean_json`:
    ``json.dumps(clean_json(value), separators=(",", ":"))``, but only walks ``value``
    when its encoding shows something to clean."""
    text = _encode(value)
    if _MARKERS.search(text) is None:
        return text
    return _encode(clean_json(value))


def needs_cleaning(raw: bytes) -> bool:
    """Whether a JSON request body may hold something :func:`clean_json` changes
    (checked on the bytes, so the usual clean body is never walked)."""
    return _MARKER_BYTES.search(raw) is not None or b"\x00" in raw


def clean_params(params: Sequence[Any]) -> Sequence[Any]:
    """Statement parameters with strings cleaned and non-finite floats as None."""
    for value in params:
        kind = type(value)
        if (kind is str and not (value.isascii() and "\x00" not in value)) or \
                (kind is float and not math.isfinite(value)):
            break
    else:
        return params
    return [clean_text(v) if type(v) is str else
            (None if type(v) is float and not math.isfinite(v) else v) for v in params]


def clean_payload(payload: Any) -> Any:
    """A parsed JSON request body as :func:`clean_json` leaves it, walked only when its
    encoding shows something to clean (the body of an agent is usually clean)."""
    return clean_json(payload) if _MARKERS.search(_encode(payload)) else payload
