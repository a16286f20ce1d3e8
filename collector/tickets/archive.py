"""The knowledge archive: how people fixed past tickets, for the next ticket of its kind.

A ticket resolved or closed *by a person* (``patrol tickets resolve -m``, the web page,
or a resolution note read back from a helpdesk) is archived with its note, its root
cause category and who/when. Patrol's own resolutions (a verified recovery) are not:
they say nothing a person learnt.

The root cause category is the ticket's category unless the note names one on a line
of its own: ``cause: config`` or ``root cause: hardware`` (a word or hyphenated words),
so a helpdesk note can set it without a form field.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from patrol.collector.model import Ticket

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketReads, Transaction

_CAUSE = re.compile(r"^\s*(?:root\s+)?cause\s*:\s*([A-Za-z][\w-]{0,40})\s*$",
                    re.IGNORECASE | re.MULTILINE)
MAX_NOTE = 2000


def root_cause(note: str, default: str) -> str:
    """The category a note names (``cause: disk-full``), else ``default``."""
    found = _CAUSE.search(note)
    return found.group(1).lower() if found else default


def archive(tx: Transaction, ticket: Ticket, note: str, author: str, at: float) -> bool:
    """Archive a person's resolution of ``ticket``; False (nothing kept) without a note."""
    text = note.strip()
    if not text or ticket.is_group:
        return False
    tx.archive_resolution(ticket.number, ticket.host, ticket.check, ticket.check_type,
                          root_cause(text, ticket.category), text[:MAX_NOTE], author, at)
    return True


def last_fix(store: TicketReads, ticket: Ticket,
             read: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any] | None:
    """The latest archived fix for ``ticket``'s check type, the same host's first (a
    reopened ticket's own earlier fix included: it is the most telling one). ``read``
    keeps the rows per check type for the caller's unit of work: its bodies ask once
    (a query per new ticket was 11 % of ingest on PostgreSQL)."""
    rows = read.get(ticket.check_type) if read is not None else None
    if rows is None:
        rows = store.resolutions(ticket.check_type, limit=50)
        if read is not None:
            read[ticket.check_type] = rows
    same_host = [r for r in rows if r["host"] == ticket.host]
    return (same_host or rows)[0] if rows else None
