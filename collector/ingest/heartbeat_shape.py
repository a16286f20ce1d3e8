"""A quiet heartbeat recognised from its bytes, without validating it all again.

Why: on the quiet path (collector/ingest/heartbeats.py) validating a heartbeat of 25
checks with the wire model cost ~0.19 ms of CPU, most of the request, although nothing
but its times differs from the last heartbeat of that host that was validated in full.

What a *shape* is: the body's bytes with the values of ``sent_at``, ``last_run``,
``next_due`` (JSON strings without escapes) and ``sequence`` (a JSON integer) cut
out, plus the names of those keys in order, hashed. Two bodies of one shape are the
same JSON text except those values. So when a host's body has the shape of its last
body that passed full validation, validating it again would give the same answer for
everything but those values -- and those are validated here, each by what its key
holds on the wire (a timestamp, or an integer in range). Anything unusual -- a value
of another JSON type or with escapes (it stays in the shape: no match), a key of that
name elsewhere holding the other kind of value, a failed validation -- takes the full
path, which answers as before (422 with the model's reasons, etc.).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from patrol.contract.wire import MAX_SEQUENCE, Timestamp

_TIMES = re.compile(rb'"(sent_at|last_run|next_due|sequence)":("[^"\\]*"|0|[1-9][0-9]*)')
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)
_SEQUENCE = b"sequence"


@dataclass(frozen=True)
class Shape:
    """A heartbeat body cut into its shape (``key``) and its changing values."""

    key: bytes
    times: dict[str, float]  # each timestamp string it holds -> its POSIX time

    def runs(self, payload: dict[str, Any]) -> tuple[str, list[tuple[Any, ...]]] | None:
        """The host and per check (last_run, next_due, host, check) as the quiet path
        keeps them, from the parsed body; None if a value is not one this shape read."""
        host, checks = payload.get("source"), payload.get("checks", [])
        if type(host) is not str or type(checks) is not list:
            return None
        times, runs = self.times, []
        for check in checks:
            last, due = check.get("last_run"), check.get("next_due")
            if (last is not None and last not in times) or \
                    (due is not None and due not in times):
                return None
            runs.append((None if last is None else times[last],
                         None if due is None else times[due], host, check["check"]))
        return host, runs


def shape_of(body: bytes) -> Shape | None:
    """``body``'s shape with its values validated; None if a value is not valid (or not
    of the kind its key holds), so that the full path answers it."""
    parts = _TIMES.split(body)
    keys, values = parts[1::3], parts[2::3]
    strings: set[bytes] = set()
    for key, value in zip(keys, values, strict=True):
        quoted = value[:1] == b'"'
        if quoted == (key == _SEQUENCE):
            return None  # a time that is not a string, or a sequence that is
        if quoted:
            strings.add(value)
        elif len(value) > 19 or int(value) > MAX_SEQUENCE:
            return None
    times: dict[str, float] = {}
    try:
        for value in strings:
            text = value[1:-1].decode()
            times[text] = _TIMESTAMP.validate_python(text).timestamp()
    except (UnicodeDecodeError, ValidationError):
        return None
    key = hashlib.blake2b(b"\x00".join(parts[0::3]), digest_size=16)
    key.update(b"\x01" + b",".join(keys))
    return Shape(key.digest(), times)
