"""The ticket store's contract: what the engine and the API may rely on, whatever the backend.

Errors, mapped at the boundary from sqlite3/psycopg (the driver's exception is the
``__cause__``)::

    StoreError                  anything the database refused or could not do
    ├── ConstraintViolation     a write broke a uniqueness or reference rule
    │   └── DuplicateTicket     a second active ticket for one dedup_key (or group key)
    └── ConcurrentUpdate        the ticket changed since it was read (stale ``version``),
                                or PostgreSQL aborted the unit of work to break a
                                deadlock; retrying the whole unit of work is safe

Units of work: ``with store.transaction() as tx:`` is ONE database transaction,
committed when the block ends and rolled back when it raises. Work on one dedup_key
is serialised: SQLite has one writer at a time (``BEGIN IMMEDIATE``); PostgreSQL takes
a transaction-level advisory lock on the key in :meth:`Transaction.lock_key` (called by
``active_ticket``, ``latest_ticket`` and ``open_group``) plus ``SELECT ... FOR UPDATE``
on the ticket rows it returns, so two collectors can never both open a ticket for the
same key nor lose each other's updates. A transaction holds its connection: inside it,
read through ``tx``, not through the store.

Group (parent) tickets have ``is_group=True`` and ``dedup_key`` = the group key. At most
one non-closed ticket exists per (dedup_key, is_group); ``active_ticket(key)`` never
returns a group ticket, ``open_group(key)`` only returns one.

Times are epoch float seconds (UTC).

Beside tickets the store holds the helpdesk outbox (:mod:`.dispatch`), credentials and
web sessions (:mod:`.credentials`) and measurement history (:mod:`.history`); their
members are declared here so that callers are checked against one contract, and
documented where they are implemented.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from patrol.collector.model import Ticket, TimelineEntry

if TYPE_CHECKING:
    from patrol.collector.store.history import Sample, SampleRow


class StoreError(Exception):
    """The database refused or failed an operation; the message says which."""


class ConstraintViolation(StoreError):
    """A write broke a uniqueness or reference rule (e.g. a timeline for no ticket)."""


class DuplicateTicket(ConstraintViolation):
    """A second non-closed ticket for a dedup_key that already has one."""


class ConcurrentUpdate(StoreError):
    """The ticket changed since it was read; re-read it and redo the unit of work."""


@dataclass(frozen=True)
class WatchWindow:
    """Which open tickets the watchdog's pass at ``now`` must judge: the rest cannot have
    a timer or an SLA step due, and at 100,000 open tickets reading them all cost ~4 s
    of CPU per pass. The policy still decides for each ticket read; this only leaves
    out tickets for which it could decide nothing:

    - every group or flapping ticket, every open recovering (``recovered_at``) one and
      every ``stale:`` one (the staleness duty reads those);
    - a resolved ticket resolved at or before ``resolved_before`` (its close is due);
    - a new, unacknowledged ticket whose respond-by is near (at or before
      ``respond_near[priority]``) and that has not reached ``respond_near_level``, or
      whose respond-by passed and that has not reached ``respond_near_level + 1``;
      the same for any open ticket's resolve-by with ``resolve_near``.
    """

    now: float
    respond_near: Mapping[str, float]
    resolve_near: Mapping[str, float]
    resolved_before: float
    respond_near_level: int
    resolve_near_level: int


class TicketReads(Protocol):
    """Reads offered both by the store (each its own short read) and by a transaction."""

    def get_ticket(self, number: str) -> Ticket | None:
        """By number (``TS20231027001``); locked FOR UPDATE inside a PostgreSQL tx."""

    def get_ticket_by_id(self, ticket_id: int) -> Ticket | None:
        """By id; locked FOR UPDATE inside a PostgreSQL transaction."""

    def list_tickets(self, status: list[str] | None = None,
                     priority: list[str] | None = None, host: str | None = None,
                     check: str | None = None, limit: int = 100,
                     offset: int = 0) -> list[Ticket]:
        """Filtered (None = any). Order: open ones (new, in_progress, pending) first,
        most urgent priority first, then earliest respond_by; then the rest, newest first."""

    def timeline(self, ticket_id: int) -> list[TimelineEntry]:
        """The ticket's entries by ``at``, ties in insertion order."""

    def hosts(self) -> list[dict[str, Any]]:
        """Per host, by name: host, agent_id, version, labels (dict), last_heartbeat,
        interval (seconds), reachable (bool), timezone (IANA name or None)."""

    def host(self, host: str) -> dict[str, Any] | None:
        """One row of :meth:`hosts`, or None for a host never heard from."""

    def check_states(self, host: str | None = None) -> list[dict[str, Any]]:
        """The check grid by host then check: host, check, type, status, summary,
        since, last_run, interval, next_due, timeout (the last four may be None)."""

    def past_tickets(self, host: str | None, check: str, limit: int = 5) -> list[Ticket]:
        """Resolved or closed non-group tickets of ``check`` (on ``host`` unless None),
        newest first: the "past occurrences" of a ticket body."""

    def children(self, parent_id: int) -> list[Ticket]:
        """Tickets whose ``parent_id`` is this group ticket, oldest first."""

    def open_tickets(self, light: bool = False) -> list[Ticket]:
        """Every ticket not closed (resolved included: its close timer still runs),
        oldest first. For the watchdogs. ``light`` leaves out the body, diagnostics and
        measurements (the timers need none of them)."""

    def open_ticket_pages(self, size: int = 1000) -> Iterator[list[Ticket]]:
        """The tickets :meth:`open_tickets` ``(light=True)`` returns, ``size`` at a time
        in id order, so a reader of every open ticket (the watchdog, the fleet
        inventory) never holds 100,000 of them at once."""

    def watched_ticket_pages(self, window: WatchWindow, size: int = 1000
                             ) -> Iterator[list[Ticket]]:
        """Of the tickets :meth:`open_ticket_pages` returns, those the watchdog may have
        something to do for (:class:`WatchWindow`), in the same light pages."""

    def count_open(self) -> int:
        """How many tickets :meth:`open_tickets` would return."""

    def stats(self) -> dict[str, dict[str, int]]:
        """``{"status": {status: count}, "priority": {priority: count of open tickets}}``
        where open means new, in_progress or pending."""

    def maintenance_windows(self) -> list[dict[str, Any]]:
        """Every stored window spec as given to ``add_maintenance``, plus its ``id``."""

    def events_since(self, since: float) -> list[dict[str, Any]]:
        """Events received at or after ``since``, oldest first: dedup_key and payload."""

    # -- the helpdesk outbox and links (store/dispatch.py) ---------------------------------
    def dispatch_rows(self, ticket_id: int | None = None,
                      state: str | None = None) -> list[dict[str, Any]]: ...

    def dispatch_backlog(self, now: float) -> list[dict[str, Any]]: ...

    def links(self, ticket_id: int | None = None) -> list[dict[str, Any]]: ...

    def link(self, ticket_id: int, helpdesk: str) -> dict[str, Any] | None: ...

    # -- credentials, web sessions, collector keys (store/credentials.py) ------------------
    def credential_by_hash(self, token_sha256: str) -> dict[str, Any] | None: ...

    def credentials(self, kind: str | None = None) -> list[dict[str, Any]]: ...

    def web_session(self, session_sha256: str) -> dict[str, Any] | None: ...

    def collector_key(self, name: str) -> str | None: ...

    # -- measurement history (store/history.py) --------------------------------------------
    def rollups(self, size: str, start: float, end: float, host: str | None = None,
                check: str | None = None) -> list[dict[str, Any]]: ...

    def breach_series(self, dedup_key: str, before: float | None = None
                      ) -> list[dict[str, Any]]: ...

    def resolutions(self, check_type: str | None = None, limit: int = 200
                    ) -> list[dict[str, Any]]: ...

    # -- scheduled reports mailed (store/report_mailings.py) -------------------------------
    def report_mailing(self, name: str) -> dict[str, Any] | None: ...

    def report_mailings(self, names: Sequence[str]) -> dict[str, float]: ...

    # -- check-set pulls (store/check_set_pulls.py) ----------------------------------------
    def check_set_pulls(self) -> dict[str, dict[str, Any]]: ...


class Transaction(TicketReads, Protocol):
    """One unit of work; see the module docstring for isolation and locking."""

    def lock_key(self, dedup_key: str) -> None:
        """Serialise this unit of work with every other one on the same key until it
        ends. Idempotent; a no-op on SQLite, where writers are serialised anyway."""

    def record_event(self, event_id: str, dedup_key: str, received_at: float,
                     payload: dict[str, Any]) -> bool:
        """Remember an event; False if ``event_id`` was recorded before (a retried POST)."""

    def active_ticket(self, dedup_key: str) -> Ticket | None:
        """The non-closed, non-group ticket for the key (locks the key and the row)."""

    def latest_ticket(self, dedup_key: str, *, group: bool = False) -> Ticket | None:
        """The most recently opened ticket for the key, closed ones included."""

    def open_group(self, group_key: str) -> Ticket | None:
        """The non-closed group ticket whose dedup_key is ``group_key``."""

    def create_ticket(self, ticket: Ticket) -> Ticket:
        """Insert ``ticket``, setting its ``id``, ``number`` and ``version`` (1) in place,
        and return it. The number is ``TS`` + UTC date of ``opened_at`` + a daily serial
        of at least 3 digits. Raises DuplicateTicket (leaving the transaction usable and
        no serial consumed) if the key already has an active ticket of that kind."""

    def update_ticket(self, ticket: Ticket) -> Ticket:
        """Write every field of ``ticket`` if its ``version`` is still the stored one,
        bump ``ticket.version`` in place and return it; else raise ConcurrentUpdate.
        ``id`` and ``number`` never change."""

    def add_timeline(self, ticket_id: int, entry: TimelineEntry) -> TimelineEntry:
        """Append; sets ``entry.id`` and ``entry.ticket_id`` in place and returns it."""

    def upsert_host(self, host: str, agent_id: str, version: str, labels: dict[str, str],
                    heartbeat_at: float, interval: float, timezone: str | None = None,
                    metrics_address: str | None = None) -> None:
        """Record a heartbeat. A new host starts reachable; an existing host's
        ``reachable`` is left alone (the engine decides when it came back)."""

    def set_check_states(self, host: str, states: list[dict[str, Any]]) -> None:
        """Replace the host's grid rows; each state has the keys check, type, status,
        summary, since, last_run (since/last_run may be None) and optionally interval,
        next_due (epoch) and timeout (seconds)."""

    def set_host_reachable(self, host: str, reachable: bool) -> None:
        """Mark a known host (un)reachable; unknown hosts are ignored."""

    def add_maintenance(self, window: dict[str, Any]) -> int:
        """Store a window spec (JSON-serialisable; an ``id`` key is dropped); its id."""

    def delete_maintenance(self, window_id: int) -> bool:
        """Remove a window; False if there was none with that id."""

    def prune_events(self, before: float) -> int:
        """Forget events received before ``before``; how many were removed."""

    # -- batched ingest (store/sql.py documents each) --------------------------------------
    def record_events(self, rows: Sequence[tuple[str, str, float, dict[str, Any]]]
                      ) -> set[str]: ...

    def keys_with_tickets(self, keys: Sequence[str]) -> set[str]: ...

    def prefetch_past(self, pairs: Iterable[tuple[str, str]]) -> None: ...

    def reserve_serials(self, opened_at: float, count: int) -> None: ...

    def known_vacant(self, dedup_key: str) -> None: ...

    def touch_hosts(self, beats: Sequence[tuple[float, str]],
                    runs: Sequence[tuple[Any, ...]],
                    samples: Sequence[SampleRow] = ()) -> list[str]: ...

    # -- the helpdesk outbox and links (store/dispatch.py) ---------------------------------
    def enqueue_dispatch(self, ticket_id: int, helpdesk: str, action: str,
                         payload: dict[str, Any], now: float) -> None: ...

    def claim_dispatch(self, now: float, limit: int, lease: float, owner: str = "", *,
                       helpdesk: str | None = None,
                       other_than: Sequence[str] = ()) -> list[dict[str, Any]]: ...

    def renew_dispatch(self, dispatch_id: int, token: str, until: float) -> bool: ...

    def release_leases(self, now: float) -> int: ...

    def complete_dispatch(self, dispatch_id: int, now: float, token: str) -> bool: ...

    def retry_dispatch(self, dispatch_id: int, next_at: float, error: str,
                       token: str) -> bool: ...

    def fail_dispatch(self, dispatch_id: int, now: float, error: str, token: str) -> bool: ...

    def prune_dispatch(self, before: float) -> int: ...

    def requeue_failed(self, helpdesk: str | None, now: float) -> int: ...

    def save_link(self, ticket_id: int, helpdesk: str, external_id: str, url: str | None,
                  destination: dict[str, Any]) -> None: ...

    def set_link_state(self, ticket_id: int, helpdesk: str, remote_state: str | None,
                       assignee: str | None, now: float, error: str | None = None) -> None: ...

    def cancel_unsent_open(self, ticket_id: int, helpdesk: str) -> bool: ...

    def unsent_dispatch(self, ticket_id: int, helpdesk: str) -> list[dict[str, Any]]: ...

    def amend_unsent_dispatch(self, dispatch_id: int, payload: dict[str, Any],
                              action: str | None = None) -> bool: ...

    # -- credentials, web sessions, collector keys (store/credentials.py) ------------------
    def add_credential(self, kind: str, name: str, token_sha256: str, hosts: list[str],
                       created_at: float, created_by: str,
                       expires_at: float | None = None) -> int: ...

    def expire_credentials(self, kind: str, name: str, at: float) -> int: ...

    def revoke_credentials(self, kind: str, name: str, at: float) -> int: ...

    def revoke_credential(self, credential_id: int, at: float) -> bool: ...

    def add_web_session(self, session_sha256: str, operator: str, csrf: str,
                        created_at: float, expires_at: float) -> None: ...

    def end_web_session(self, session_sha256: str, at: float) -> bool: ...

    def prune_web_sessions(self, before: float) -> int: ...

    def ensure_collector_key(self, name: str, value: str) -> str: ...

    # -- measurement history (store/history.py) --------------------------------------------
    def record_samples(self, host: str, samples: Iterable[Sample]) -> None: ...

    def record_breach_series(self, dedup_key: str, host: str, check: str, observed_at: float,
                             series: Iterable[tuple[str, str, list[Any]]],
                             levels: Mapping[str, Any]) -> None: ...

    def archive_resolution(self, ticket_number: str, host: str, check: str, check_type: str,
                           category: str, note: str, author: str, at: float) -> None: ...

    def prune_history(self, now: float) -> int: ...

    def record_report_mailing(self, name: str, at: float, recipients: list[str],
                              message_id: str) -> bool: ...

    def record_check_set_pull(self, host: str, held: str | None, assigned: str,
                              at: float) -> None: ...

    def prune_check_set_pulls(self, before: float) -> int: ...


class TicketStore(TicketReads, Protocol):
    """A ticket database. Thread-safe: share one instance between threads."""

    backend: str  # "sqlite" or "postgresql"

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A unit of work; nesting one in the same thread raises StoreError."""

    def migrate(self) -> list[int]:
        """Apply pending numbered migrations; the versions applied (usually [])."""

    def schema_version(self) -> int:
        """The highest migration applied."""

    def refresh_statistics(self) -> bool:
        """Bring the planner's statistics of the tickets table up to date if many rows
        changed since they were taken; whether it did. The ticket list's plan depends
        on them on PostgreSQL (see ``SqlReads.list_tickets``); the watchdog calls this
        every pass."""

    def close(self) -> None:
        """Close every connection; the store is unusable afterwards."""

