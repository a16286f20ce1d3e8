"""The one small protocol every helpdesk adapter speaks, and the narrow ticket view
it sees.

An adapter never sees the collector's store or models: it gets a
:class:`TicketView` (what a helpdesk ticket needs) and a :class:`Destination`
(where it goes: project or queue, team, assignee, mapped fields), and answers with
an :class:`ExternalRef`. Six operations::

    open(view, dest) -> ExternalRef          create the ticket (fingerprint stored)
    find(fingerprint, dest) -> ExternalRef|None   the open ticket carrying it, if any
    comment(ref, text, view)                  a note on the ticket
    set_priority(ref, view, dest)             the Patrol priority changed
    resolve(ref, text, view, dest)            verified fixed
    reopen(ref, text, view, dest)             it came back
    status(ref) -> RemoteStatus               read back (acknowledged? closed? by whom?)

Errors, mapped at the boundary from HTTP/SMTP failures::

    BridgeError
    ├── TemporaryError   retry later (5xx, timeouts, 429 with retry_after)
    └── PermanentError   retrying cannot help (401, 403, unknown project, 422)

``find`` is the second guard against duplicates: before creating, the dispatcher
asks the helpdesk whether a ticket with this fingerprint already exists (a crash
between "created" and "stored" must not create a second one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable


class BridgeError(Exception):
    """A helpdesk operation failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TemporaryError(BridgeError):
    """Worth retrying; ``retry_after`` (seconds) when the helpdesk said how long."""

    def __init__(self, message: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class PermanentError(BridgeError):
    """Retrying cannot help until someone fixes the config or the helpdesk."""


@dataclass(frozen=True)
class TicketView:
    """What a helpdesk ticket needs to know of a Patrol ticket."""

    number: str  # TS20261122001
    fingerprint: str  # stable per incident: searchable in the helpdesk
    title: str
    body: str  # Markdown; adapters convert it to their markup
    priority: str  # P1..P4
    severity: str  # critical, error, warning, info
    status: str  # new, in_progress, pending, resolved, closed
    category: str
    host: str
    check: str
    check_type: str
    labels: dict[str, str] = field(default_factory=dict)
    respond_by: float = 0.0
    resolve_by: float = 0.0
    url: str | None = None  # the ticket on Patrol's web page
    hosts: tuple[str, ...] = ()  # for group tickets


@dataclass(frozen=True)
class Destination:
    """Where a ticket goes, chosen by the routing rules."""

    helpdesk: str  # the configured helpdesk's name
    project: str | None = None  # project, queue, group, board... in the helpdesk's terms
    team: str | None = None
    assignee: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # extra mapped fields


@dataclass(frozen=True)
class ExternalRef:
    """A ticket in a helpdesk: its id there and a link a person can open."""

    helpdesk: str
    id: str
    url: str | None = None


@dataclass(frozen=True)
class RemoteStatus:
    """What the helpdesk says about a ticket.

    ``state``: ``open`` (nobody has touched it), ``acknowledged`` (assigned or
    in progress: a person took it), ``resolved``, ``closed``. ``wont_fix`` when the
    helpdesk's resolution says so (rejected, won't fix), so a close while the check
    still fails can be respected instead of reopened.
    """

    state: str
    assignee: str | None = None
    wont_fix: bool = False
    raw_status: str | None = None
    # The person's resolution note when resolved or closed (adapters that can read it
    # back: Redmine), for the knowledge archive; Patrol's own notes are never it.
    note: str | None = None
    note_author: str | None = None


def is_patrol_note(text: str) -> bool:
    """Whether a helpdesk note is one Patrol wrote (its updates say "Patrol:" or
    "NAME in Patrol:"; the chart note starts "Chart:"), not a person's."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first.startswith(("Patrol:", "Chart:")) or " in Patrol: " in first


@runtime_checkable
class Helpdesk(Protocol):
    """An adapter instance for one configured helpdesk.

    The class also has ``Config``, its pydantic settings model (a subclass of
    :class:`~patrol.ticketing_bridge.settings.AdapterSettings`, usually nested in the
    class); :func:`patrol.ticketing_bridge.registry.config_model` reads it.
    """

    type: ClassVar[str]

    def __init__(self, config: Any, name: str) -> None:
        """``config``: an instance of the class's ``Config`` (or a mapping for it);
        ``name``: the helpdesk's name in the collector config."""

    def open(self, view: TicketView, dest: Destination) -> ExternalRef: ...

    def find(self, fingerprint: str, dest: Destination) -> ExternalRef | None: ...

    def comment(self, ref: ExternalRef, text: str, view: TicketView) -> None: ...

    def set_priority(self, ref: ExternalRef, view: TicketView, dest: Destination) -> None: ...

    def resolve(self, ref: ExternalRef, text: str, view: TicketView,
                dest: Destination) -> None: ...

    def reopen(self, ref: ExternalRef, text: str, view: TicketView,
               dest: Destination) -> None: ...

    def status(self, ref: ExternalRef) -> RemoteStatus: ...


@dataclass(frozen=True)
class Attachment:
    """A file for a helpdesk ticket (the breach chart): name, MIME type and bytes."""

    filename: str
    content_type: str
    data: bytes


@runtime_checkable
class TakesAttachments(Protocol):
    """Optional: an adapter whose helpdesk API takes files (Redmine's uploads, RT's
    REST2 comment attachments). The dispatcher attaches the breach chart right after
    opening the ticket when the adapter has this; others only carry the link to the
    ticket page in the body."""

    def attach(self, ref: ExternalRef, attachment: Attachment, note: str) -> None: ...
