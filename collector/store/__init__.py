"""The collector's ticket store: :func:`open_store` and the contract in :mod:`.base`.

URLs::

    sqlite:///relative/path.db       relative to the working directory
    sqlite:////var/lib/patrol/t.db   absolute (four slashes, as in SQLAlchemy)
    /var/lib/patrol/t.db             a bare path is a SQLite file too
    postgresql://user@host:5432/db   (or postgres://) any libpq URI

SQLite in memory is refused: every thread has its own connection, so each would see
a different empty database.

PostgreSQL sessions run with ``synchronous_commit=off`` (the durability SQLite's WAL
mode with ``synchronous=NORMAL`` gives: see collector/store/postgres.py); to flush
every commit, say so in the URL: ``postgresql://...?options=-csynchronous_commit%3Don``.
"""

from __future__ import annotations

from patrol.collector.store.base import (
    ConcurrentUpdate,
    ConstraintViolation,
    DuplicateTicket,
    StoreError,
    TicketReads,
    TicketStore,
    Transaction,
)

__all__ = [
    "ConcurrentUpdate",
    "ConstraintViolation",
    "DuplicateTicket",
    "StoreError",
    "TicketReads",
    "TicketStore",
    "Transaction",
    "open_store",
    "sqlite_path",
]

DEFAULT_POOL_SIZE = 8


def sqlite_path(url: str) -> str:
    """The file a ``sqlite:`` URL or bare path names; StoreError if it names none."""
    if "://" not in url:
        path = url
    elif url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
    else:
        raise StoreError(f"cannot use store URL {url!r}: expected sqlite:///relative.db, "
                         "sqlite:////absolute/path.db, a file path or postgresql://...")
    if path in ("", ":memory:"):
        raise StoreError(f"store URL {url!r} names no file; the ticket store needs one "
                         "(an in-memory database would be empty in every thread)")
    return path


def open_store(url: str, *, pool_size: int = DEFAULT_POOL_SIZE) -> TicketStore:
    """Open the store ``url`` names and apply pending migrations.

    ``pool_size`` caps PostgreSQL connections (SQLite has one per thread).
    """
    store: TicketStore
    if url.startswith(("postgresql://", "postgres://")):
        from patrol.collector.store.postgres import PostgresStore

        store = PostgresStore(url, pool_size=pool_size)
    else:
        from patrol.collector.store.sqlite import SqliteStore

        store = SqliteStore(sqlite_path(url))
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store
