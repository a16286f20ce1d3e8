"""Reading the tickets a report needs from any :class:`collector.store.TicketStore`.

The store's contract has no "opened between" query, so this pages through
``list_tickets``: every open ticket (few), then resolved and closed ones newest
first, stopping at the first page that reaches back before ``since``. Group (parent)
tickets are left out: their members are the incidents, counting both would count
every grouped problem twice.
"""

from __future__ import annotations

from collections.abc import Iterator

from patrol.collector.model import Ticket, TicketStatus
from patrol.collector.reports.facts import TicketFacts, facts_of
from patrol.collector.store.base import TicketReads

PAGE = 500
OPEN = [s.value for s in TicketStatus if s.is_open]
DONE = [s.value for s in TicketStatus if not s.is_open]


def _pages(store: TicketReads, status: list[str], since: float | None,
           size: int) -> Iterator[Ticket]:
    offset = 0
    while True:
        page = store.list_tickets(status=status, limit=size, offset=offset)
        yield from page
        if len(page) < size or (since is not None and page[-1].opened_at < since):
            return
        offset += size


def tickets_since(store: TicketReads, since: float, page: int = PAGE) -> list[TicketFacts]:
    """Non-group tickets opened at or after ``since``, and every open one, with the
    facts of their timelines; oldest first. ``page``: tickets read per query."""
    found = {t.id: t for t in _pages(store, OPEN, None, page) if not t.is_group}
    for ticket in _pages(store, DONE, since, page):
        if not ticket.is_group and ticket.opened_at >= since:
            found[ticket.id] = ticket
    ordered = sorted(found.values(), key=lambda t: (t.opened_at, t.id or 0))
    return [facts_of(t, store.timeline(t.id)) for t in ordered if t.id is not None]
