"""Which collector replica runs the watchdog's duties.

Several ``patrol collector`` replicas may share one PostgreSQL database; each would
otherwise resolve, close, escalate and ticket silence on its own, so the same SLA
comment would reach the helpdesk once per replica. One replica leads:

- PostgreSQL: a *session-level* advisory lock (``pg_try_advisory_lock``) held on a
  connection of its own, outside the store's pool (a pooled connection is shared and
  its session would hand the lock to whatever borrowed it next). Every pass calls
  :meth:`PostgresLeadership.lead`: a follower tries to take the lock, the leader
  checks its connection still answers. When the leader dies, even by ``kill -9``,
  the server ends its session and the lock is free, so a follower takes over on its
  next pass. The lock's key is derived from the schema (``current_schema()``), so
  collectors of different Patrol installations in one database do not compete.
- SQLite: one process per database file, always the leader.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Protocol

log = logging.getLogger("patrol.collector.leader")

LOCK_CLASS = 7284  # first half of the two-int advisory key; 7283 is the migration lock
_TRY = "SELECT pg_try_advisory_lock(%s, hashtext(current_schema())) AS held"
CONNECT_TIMEOUT = 5  # seconds: an unreachable database must not stall the watchdog's loop
# The server probes the leader's connection: a leader cut off by the network (not
# dead, so its socket never closes) loses its session, and the lock, in ~25 s rather
# than after the operating system's default of two hours.
_KEEPALIVE = ("SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5;"
              " SET tcp_keepalives_count = 3")


class Leadership(Protocol):
    def lead(self) -> bool:
        """Whether this process leads now (taking the lead if it is free)."""

    def close(self) -> None:
        """Give the lead up."""


class AlwaysLeader:
    """The only collector on its store (SQLite, or a test's own engine)."""

    def lead(self) -> bool:
        return True

    def close(self) -> None:
        pass


class PostgresLeadership:
    """The advisory lock on a dedicated connection; see the module docstring."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None
        self.held = False

    def __repr__(self) -> str:
        return f"PostgresLeadership(held={self.held})"  # the URL may hold a password

    def lead(self) -> bool:
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self.held = False
                self._conn = psycopg.connect(self.url, autocommit=True,
                                             connect_timeout=CONNECT_TIMEOUT)
                self._conn.execute(_KEEPALIVE)
            if self.held:
                self._conn.execute("SELECT 1")  # still our session, so still our lock
            else:
                row = self._conn.execute(_TRY, (LOCK_CLASS,)).fetchone()
                self.held = bool(row and row[0])
                if self.held:
                    log.info("this collector now runs the watchdog duties")
        except psycopg.Error as exc:
            if self.held:
                log.warning("lost the watchdog lead with the database connection: %s", exc)
            self.held = False
            self._drop()
        return self.held

    def _drop(self) -> None:
        if self._conn is not None:
            # A broken connection may fail to close; it is gone anyway.
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        self.held = False
        self._drop()  # ending the session frees the lock at once


def leadership_for(store_url: str, backend: str) -> Leadership:
    if backend == "postgresql":
        return PostgresLeadership(store_url)
    return AlwaysLeader()
