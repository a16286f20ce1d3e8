"""The collector's domain: tickets, their timeline, priorities and statuses.

A *ticket* is the record of one incident, keyed by ``dedup_key`` (host + check)
while it is active; it follows DOMAIN.md's lifecycle
new -> in_progress -> pending -> resolved -> closed, and resolved goes back to
in_progress when the problem comes back within the reopen window. Times are epoch
seconds (float, UTC) throughout: they compare and subtract without time zones.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any


class Priority(enum.StrEnum):
    """P1 is the most urgent. Ordered: ``min()`` of priorities is the most urgent."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def rank(self) -> int:
        return int(self.value[1])

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank < other.rank


class TicketStatus(enum.StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        """Still work for a person (not resolved, not closed)."""
        return self in (TicketStatus.NEW, TicketStatus.IN_PROGRESS, TicketStatus.PENDING)


# Wire severities (PagerDuty Events v2), most severe first.
SEVERITIES = ("critical", "error", "warning", "info")


@dataclass
class TimelineEntry:
    """One thing that happened to a ticket, for the record and the web page."""

    at: float
    kind: str  # opened, repeated, severity, priority, comment, acknowledged, resolved, ...
    text: str
    author: str = "patrol"
    data: dict[str, Any] = field(default_factory=dict)
    ticket_id: int | None = None
    id: int | None = None


@dataclass(frozen=True)
class Shown:
    """Where a ticket field appears besides the store (which keeps every field).

    ``api``: its key in the API's ticket JSON (:func:`api_fields`); ``detail``: only
    in one ticket's JSON, not in lists; ``view``: its name in the helpdesk adapters'
    ``TicketView`` (:func:`view_fields`); ``body``: ``(section, label)`` of a line the
    ticket body adds for it when it has a value (:func:`body_lines`). The API lists
    fields in declaration order, detail fields last."""

    api: str | None = None
    detail: bool = False
    view: str | None = None
    body: tuple[str, str] | None = None


def shown(api: str | None = None, *, detail: bool = False, view: str | None = None,
          body: tuple[str, str] | None = None) -> dict[str, Shown]:
    """The ``metadata`` of a :class:`Ticket` field (see :class:`Shown`)."""
    return {"shown": Shown(api, detail, view, body)}


@dataclass(kw_only=True)
class Ticket:
    """One incident's ticket. ``version`` guards concurrent updates (optimistic lock).

    Every field is stored (:mod:`collector.store.codec` derives the columns); its
    ``shown`` metadata says where else it appears: the API's JSON, the helpdesk
    adapters' view, the body. Adding a field is this declaration, a migration for its
    column, and the code that fills it."""

    number: str = field(default="", metadata=shown("number", view="number"))
    title: str = field(metadata=shown("title", view="title"))
    status: TicketStatus = field(metadata=shown("status", view="status"))
    priority: Priority = field(metadata=shown("priority", view="priority"))
    severity: str = field(metadata=shown("severity", view="severity"))
    category: str = field(metadata=shown("category", view="category"))
    host: str = field(metadata=shown("host", view="host"))
    check: str = field(metadata=shown("check", view="check"))
    check_type: str = field(metadata=shown("type", view="check_type"))
    dedup_key: str = field(metadata=shown("dedup_key"))
    labels: dict[str, str] = field(default_factory=dict,
                                   metadata=shown("labels", view="labels"))
    # The latest observed status of the check.
    check_status: str = field(default="CRITICAL", metadata=shown("check_status"))
    occurrences: int = field(default=1, metadata=shown("occurrences"))
    first_seen: float = field(metadata=shown("first_seen"))
    last_seen: float = field(metadata=shown("last_seen"))
    opened_at: float = field(metadata=shown("opened_at"))
    respond_by: float = field(metadata=shown("respond_by", view="respond_by"))
    resolve_by: float = field(metadata=shown("resolve_by", view="resolve_by"))
    acknowledged_at: float | None = field(default=None, metadata=shown("acknowledged_at"))
    # Check seen OK since; verification runs from here.
    recovered_at: float | None = field(default=None, metadata=shown("recovered_at"))
    resolved_at: float | None = field(default=None, metadata=shown("resolved_at"))
    closed_at: float | None = field(default=None, metadata=shown("closed_at"))
    resolution: str | None = field(default=None, metadata=shown("resolution"))
    state_changes: list[float] = field(default_factory=list)  # recent, for flapping
    flapping: bool = field(default=False, metadata=shown("flapping"))
    is_group: bool = field(default=False, metadata=shown("is_group"))
    # For group tickets: the affected hosts.
    hosts: list[str] = field(default_factory=list, metadata=shown("hosts", view="hosts"))
    # A group ticket this one belongs to.
    parent_id: int | None = field(default=None, metadata=shown("parent_id"))
    # An earlier, closed ticket for the same problem.
    previous_id: int | None = field(default=None, metadata=shown("previous_id"))
    # SLA watchdog level reached: 0 none, 1-4 (collector.policy.priority).
    escalation: int = field(default=0, metadata=shown("escalation"))
    runbook: str | None = field(default=None, metadata=shown(
        "runbook", body=("Suggested first actions", "Runbook")))
    measurements: list[dict[str, Any]] = field(default_factory=list,
                                               metadata=shown("measurements"))
    diagnostics: dict[str, Any] = field(default_factory=dict,
                                        metadata=shown("diagnostics", detail=True))
    body: str = field(default="", metadata=shown("body", detail=True, view="body"))
    id: int | None = None
    version: int = 0

    @property
    def stored_id(self) -> int:
        """``id`` of a ticket the store has written (``create_ticket`` sets it), for the
        store's ``ticket_id`` parameters; ValueError for a ticket not stored yet."""
        if self.id is None:
            raise ValueError(f"ticket for {self.dedup_key!r} has not been stored yet")
        return self.id

    @property
    def active(self) -> bool:
        return self.status is not TicketStatus.CLOSED


_DECLARED: dict[type[Ticket], tuple[tuple[str, Shown], ...]] = {}


def declared(cls: type[Ticket] = Ticket) -> tuple[tuple[str, Shown], ...]:
    """``(field name, Shown)`` of every field ``cls`` declares beyond the store, in
    declaration order."""
    found = _DECLARED.get(cls)
    if found is None:
        found = _DECLARED[cls] = tuple((f.name, f.metadata["shown"]) for f in fields(cls)
                                       if "shown" in f.metadata)
    return found


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, enum.Enum) else value


def api_fields(ticket: Ticket, detail: bool = False) -> dict[str, Any]:
    """``ticket`` as the API shows it: declared fields by API name, enums as their
    value; ``detail`` adds the fields only one ticket's JSON carries."""
    specs = declared(type(ticket))
    out = {s.api: _plain(getattr(ticket, name)) for name, s in specs
           if s.api is not None and not s.detail}
    if detail:
        out.update((s.api, _plain(getattr(ticket, name))) for name, s in specs
                   if s.api is not None and s.detail)
    return out


def view_fields(ticket: Ticket) -> dict[str, Any]:
    """The ``TicketView`` arguments ``ticket``'s declared fields give (the view is
    frozen: enums as their value, lists as tuples, dicts copied)."""
    out: dict[str, Any] = {}
    for name, spec in declared(type(ticket)):
        if spec.view is None:
            continue
        value = _plain(getattr(ticket, name))
        out[spec.view] = tuple(value) if isinstance(value, list) else \
            dict(value) if isinstance(value, dict) else value
    return out


def body_lines(ticket: Ticket, section: str) -> list[tuple[str, Any]]:
    """``(label, value)`` of the declared fields the body shows in ``section``, for
    those with a value."""
    return [(s.body[1], getattr(ticket, name)) for name, s in declared(type(ticket))
            if s.body is not None and s.body[0] == section and getattr(ticket, name)]
