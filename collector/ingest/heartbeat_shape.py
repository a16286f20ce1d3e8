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

Where each value goes (which check's ``last_run``) is the host's :class:`Layout`, read
once from the fully validated body; so a quiet heartbeat is not even parsed as JSON.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from patrol.contract.wire import MAX_SEQUENCE, Timestamp

_TIMES = re.compile(rb'"(sent_at|last_run|next_due|sequence)":("[^"\\]*"|0|[1-9][0-9]*)')
_SOURCE = re.compile(rb'"source":"([^"\\]*)"')
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)
_SEQUENCE = b"sequence"
_LAST_RUN = b"last_run"
_CHECK_TIMES = ("last_run", "next_due")


@dataclass(frozen=True)
class Layout:
    """Where a shape's values go: per value, the index of the check it belongs to (-1
    for ``sent_at`` and ``sequence``); and the checks' names. Equal layouts of many
    hosts (one fleet, one set of checks) are kept as one object."""

    slots: tuple[int, ...]
    checks: tuple[str, ...]


@dataclass(frozen=True)
class Shape:
    """A heartbeat body cut into its shape (``key``) and its changing values."""

    key: bytes
    host: str | None  # the first "source" string in the body: the host, if the key matches
    keys: list[bytes]
    values: list[bytes]
    times: dict[bytes, float]  # each timestamp value (quoted, as sent) -> its POSIX time

    def runs(self, layout: Layout, host: str, summaries: Sequence[str]
             ) -> list[tuple[float | None, float | None, str, str, str]]:
        """Per check (last_run, next_due, summary, host, check), as the quiet path keeps
        them, for a body of the same shape as the one ``layout`` was made from (whose
        checks said ``summaries``: the same bytes, so the same here)."""
        last: list[float | None] = [None] * len(layout.checks)
        due: list[float | None] = [None] * len(layout.checks)
        times = self.times
        for key, value, slot in zip(self.keys, self.values, layout.slots, strict=True):
            if slot >= 0:
                (last if key == _LAST_RUN else due)[slot] = times[value]
        return [(last[i], due[i], summaries[i], host, name)
                for i, name in enumerate(layout.checks)]

    def layout(self, payload: dict[str, Any]) -> Layout | None:
        """Where this body's values go, read from ``payload`` (the same body parsed,
        and validated in full by the caller); None unless every value the shape cut
        out is one of ``sequence``, ``sent_at`` or a check's ``last_run`` or
        ``next_due`` (a label of that name, say: then this host takes the usual path)."""
        expected: list[tuple[str, int, Any]] = []
        for key, value in payload.items():
            if key == "checks":
                for index, check in enumerate(value):
                    expected += [(name, index, time) for name, time in check.items()
                                 if name in _CHECK_TIMES and type(time) is str]
            elif (key, type(value)) in (("sent_at", str), ("sequence", int)):
                expected.append((key, -1, value))
        found = [(key.decode(), int(value) if key == _SEQUENCE else value[1:-1].decode())
                 for key, value in zip(self.keys, self.values, strict=True)]
        if found != [(key, value) for key, _, value in expected]:
            return None
        return Layout(tuple(slot for _, slot, _ in expected),
                      tuple(sys.intern(check["check"]) for check in payload["checks"]))


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
    times: dict[bytes, float] = {}
    try:
        for value in strings:
            times[value] = _TIMESTAMP.validate_python(value[1:-1].decode()).timestamp()
        source = _SOURCE.search(body)
        host = source.group(1).decode() if source is not None else None
    except (UnicodeDecodeError, ValidationError):
        return None
    key = hashlib.blake2b(b"\x00".join(parts[0::3]), digest_size=16)
    key.update(b"\x01" + b",".join(keys))
    return Shape(key.digest(), host, keys, values, times)
