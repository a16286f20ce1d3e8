"""Reading the kernel log incrementally from /dev/kmsg, the journal or dmesg.

Every source yields :class:`KernelLine` records (seconds since boot on the kernel's
monotonic clock, syslog facility, text) and an opaque *cursor* that the next read
continues after, so a check sees each line once:

* ``/dev/kmsg`` (root or CAP_SYSLOG): no subprocess, exact sequence numbers as the
  cursor. A reader opened on it starts at the oldest record still in the ring buffer;
  records overwritten while we read (``EPIPE``) are skipped, as ``dmesg`` does.
* ``journalctl -k -o json`` (members of ``systemd-journal``/``adm``): the journal's
  own cursor, and it keeps lines the ring buffer has already dropped.
* ``dmesg -r`` (where ``kernel.dmesg_restrict=0``): the last timestamp as the cursor.

Facility 0 is the kernel itself; anything userspace writes into the kernel log
arrives with another facility (the kernel forces LOG_USER on writes to /dev/kmsg).
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KMSG = "/dev/kmsg"
_DMESG_RAW = re.compile(r"^<(\d+)>\[\s*(\d+\.\d+)\]\s?(.*)$")


@dataclass(frozen=True, slots=True)
class KernelLine:
    seconds: float  # since boot, CLOCK_MONOTONIC as the kernel stamps it
    facility: int
    text: str


Reader = Callable[[Any], tuple[list[KernelLine], Any]]


def parse_kmsg_record(record: bytes) -> tuple[int, KernelLine] | None:
    """``prio,seq,usec,flags;text`` (plus `` KEY=value`` continuation lines) ->
    (sequence number, line); None for a malformed record. Documented in the kernel's
    Documentation/ABI/testing/dev-kmsg."""
    head, sep, body = record.decode("utf-8", "replace").partition(";")
    fields = head.split(",")
    if not sep or len(fields) < 3:
        return None
    try:
        prio, seq, usec = int(fields[0]), int(fields[1]), int(fields[2])
    except ValueError:
        return None
    text = body.split("\n", 1)[0]
    return seq, KernelLine(usec / 1e6, prio >> 3, text)


def read_kmsg(cursor: int | None, path: str = KMSG) -> tuple[list[KernelLine], int | None]:
    """Every record after sequence number ``cursor`` (all when None)."""
    lines: list[KernelLine] = []
    last = cursor
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        while True:
            try:
                record = os.read(fd, 16384)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # overwritten while we read: go on
                    continue
                raise
            if not record:
                break
            parsed = parse_kmsg_record(record)
            if parsed is None:
                continue
            seq, line = parsed
            if cursor is None or seq > cursor:
                lines.append(line)
                last = seq
    finally:
        os.close(fd)
    return lines, last


def parse_journal_json(text: str) -> tuple[list[KernelLine], str | None]:
    """``journalctl -o json`` output (one object per line) -> lines and last cursor.
    MESSAGE may be a list of bytes when it is not valid UTF-8 (systemd's JSON format
    documentation); such messages are decoded with replacement."""
    lines: list[KernelLine] = []
    cursor = None
    for raw in text.splitlines():
        if not raw.strip():
            continue
        entry = json.loads(raw)
        message = entry.get("MESSAGE", "")
        if isinstance(message, list):
            message = bytes(message).decode("utf-8", "replace")
        lines.append(KernelLine(int(entry.get("__MONOTONIC_TIMESTAMP", 0)) / 1e6,
                                int(entry.get("SYSLOG_FACILITY", 0)), str(message)))
        cursor = entry.get("__CURSOR", cursor)
    return lines, cursor


def parse_dmesg_raw(text: str) -> list[KernelLine]:
    """``dmesg -r`` lines: ``<prio>[seconds] text``, prio including the facility."""
    out = []
    for raw in text.splitlines():
        match = _DMESG_RAW.match(raw)
        if match:
            prio, seconds, body = match.groups()
            out.append(KernelLine(float(seconds), int(prio) >> 3, body))
    return out


def journal_has_data() -> bool:
    """True where journald keeps a journal (volatile or persistent) to read."""
    return any(Path(d).is_dir() and any(Path(d).iterdir())
               for d in ("/run/log/journal", "/var/log/journal"))


def journal_reader(run: Callable[[Sequence[str], float], Any], timeout: float,
                   since_epoch: Callable[[], float]) -> Reader:
    """A reader over ``journalctl -k``; the first read starts at ``since_epoch()``."""

    def read(cursor: str | None) -> tuple[list[KernelLine], str | None]:
        where = (["--after-cursor", cursor] if cursor
                 else ["--since", f"@{int(since_epoch())}"])
        done = run(["journalctl", "-k", "-o", "json", "-q", "--no-pager", *where], timeout)
        if done.returncode != 0:
            raise OSError(f"journalctl -k failed: {(done.stderr or '').strip()[:300]}")
        lines, last = parse_journal_json(done.stdout)
        return lines, last or cursor

    return read


def dmesg_reader(run: Callable[[Sequence[str], float], Any], timeout: float) -> Reader:
    """A reader over ``dmesg -r``; the cursor is the last timestamp seen."""

    def read(cursor: float | None) -> tuple[list[KernelLine], float | None]:
        done = run(["dmesg", "-r"], timeout)
        if done.returncode != 0:
            raise OSError(f"dmesg failed: {(done.stderr or '').strip()[:300]}")
        lines = [ln for ln in parse_dmesg_raw(done.stdout)
                 if cursor is None or ln.seconds > cursor]
        return lines, (lines[-1].seconds if lines else cursor)

    return read
