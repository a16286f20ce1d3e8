"""The dispatch outbox and ticket links, one contract suite run on SQLite and PostgreSQL.

What the dispatcher relies on: claims take the oldest pending row per (ticket,
helpdesk) and keep that order; a claim is a short lease that only its holder can
renew or settle (a fenced token); two claimers never get the same row; failed rows
stay until re-queued; delivered rows are pruned.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from patrol.collector.store import TicketStore
from tests.collector_fixtures import T0, store_for
from tests.test_store_contract import create, ticket

LEASE = 10.0


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TicketStore]:
    s = store_for(request.param, request, tmp_path)
    yield s
    s.close()


def tickets(store: TicketStore, n: int) -> list[int]:
    return [t.id for t in create(store, *(ticket(f"h{i}/disk") for i in range(n)))]


def enqueue(store: TicketStore, *rows: tuple[int, str, str], at: float = T0) -> None:
    with store.transaction() as tx:
        for ticket_id, helpdesk, action in rows:
            tx.enqueue_dispatch(ticket_id, helpdesk, action, {"text": action, "n": [1]}, at)


def claim(store: TicketStore, now: float = T0, limit: int = 10, owner: str = "r1",
          **where: object) -> list[dict]:
    with store.transaction() as tx:
        return tx.claim_dispatch(now, limit, LEASE, owner, **where)


def test_claims_take_the_oldest_row_per_ticket_and_helpdesk_in_order(store) -> None:
    a, b = tickets(store, 2)
    enqueue(store, (a, "desk", "open"), (b, "desk", "open"), (a, "desk", "comment"),
            (a, "pager", "open"))
    first = claim(store)
    assert [(r["ticket_id"], r["helpdesk"], r["action"]) for r in first] == [
        (a, "desk", "open"), (b, "desk", "open"), (a, "pager", "open")]
    assert first[0]["payload"] == {"text": "open", "n": [1]}
    assert claim(store) == []  # the comment waits for its open; the rest are leased
    with store.transaction() as tx:
        assert tx.complete_dispatch(first[0]["id"], T0 + 1, first[0]["lease_owner"])
    assert [(r["ticket_id"], r["action"]) for r in claim(store, T0 + 1)] == [(a, "comment")]


def test_a_claim_is_a_lease_that_lapses_and_is_taken_over(store) -> None:
    (a,) = tickets(store, 1)
    enqueue(store, (a, "desk", "open"))
    (mine,) = claim(store, owner="r1")
    assert mine["taken_over"] is False and mine["lease_owner"].startswith("r1:")
    assert mine["next_at"] == T0 + LEASE
    assert claim(store, T0 + LEASE - 0.1, owner="r2") == []
    (theirs,) = claim(store, T0 + LEASE, owner="r2")
    assert theirs["id"] == mine["id"] and theirs["taken_over"] is True
    assert theirs["lease_owner"] != mine["lease_owner"]
    with store.transaction() as tx:  # the first claimer is fenced out of every write
        assert not tx.renew_dispatch(mine["id"], mine["lease_owner"], T0 + 30)
        assert not tx.complete_dispatch(mine["id"], T0 + 11, mine["lease_owner"])
        assert not tx.retry_dispatch(mine["id"], T0 + 20, "late", mine["lease_owner"])
        assert not tx.fail_dispatch(mine["id"], T0 + 11, "late", mine["lease_owner"])
    (row,) = store.dispatch_rows(a)
    assert (row["state"], row["attempts"], row["lease_owner"]) == (
        "pending", 0, theirs["lease_owner"])
    with store.transaction() as tx:
        assert tx.complete_dispatch(theirs["id"], T0 + 12, theirs["lease_owner"])
    assert store.dispatch_rows(a)[0]["state"] == "done"


def test_renewing_keeps_the_row_from_being_taken_over(store) -> None:
    (a,) = tickets(store, 1)
    enqueue(store, (a, "desk", "open"))
    (mine,) = claim(store)
    for now in (T0 + 5, T0 + 10, T0 + 15):
        with store.transaction() as tx:
            assert tx.renew_dispatch(mine["id"], mine["lease_owner"], now + LEASE)
        assert claim(store, now + 1, owner="r2") == []
    with store.transaction() as tx:
        assert tx.complete_dispatch(mine["id"], T0 + 16, mine["lease_owner"])
        assert not tx.renew_dispatch(mine["id"], mine["lease_owner"], T0 + 30)  # settled
    assert claim(store, T0 + 100, owner="r2") == []


def test_retry_fail_requeue_and_prune(store) -> None:
    a, b = tickets(store, 2)
    enqueue(store, (a, "desk", "open"), (b, "pager", "open"))
    first, second = claim(store)
    with store.transaction() as tx:
        assert tx.retry_dispatch(first["id"], T0 + 60, "503 " + "x" * 3000,
                                 first["lease_owner"])
        assert tx.fail_dispatch(second["id"], T0, "403: check the credentials",
                                second["lease_owner"])
    retried, failed = store.dispatch_rows()
    assert (retried["state"], retried["attempts"], retried["next_at"],
            retried["lease_owner"], len(retried["last_error"])) == (
        "pending", 1, T0 + 60, None, 2000)
    assert (failed["state"], failed["attempts"], failed["last_error"]) == (
        "failed", 1, "403: check the credentials")
    assert store.dispatch_rows(state="failed") == [failed]
    assert store.dispatch_rows(b, state="pending") == []
    assert claim(store, T0 + 59) == []
    (again,) = claim(store, T0 + 60)
    assert again["taken_over"] is False  # a retry is not a lapsed lease
    assert sorted(store.dispatch_backlog(T0 + 100), key=lambda r: r["helpdesk"]) == [
        {"helpdesk": "desk", "state": "pending", "count": 1, "oldest_age_seconds": 100.0},
        {"helpdesk": "pager", "state": "failed", "count": 1, "oldest_age_seconds": 100.0}]
    with store.transaction() as tx:
        assert tx.requeue_failed("desk", T0 + 100) == 0
        assert tx.requeue_failed("pager", T0 + 100) == 1
        assert tx.complete_dispatch(again["id"], T0 + 100, again["lease_owner"])
    (requeued,) = claim(store, T0 + 100)
    assert (requeued["ticket_id"], requeued["last_error"]) == (b, None)
    with store.transaction() as tx:
        assert tx.fail_dispatch(requeued["id"], T0 + 101, "again", requeued["lease_owner"])
        assert tx.requeue_failed(None, T0 + 102) == 1
        assert tx.prune_dispatch(T0 + 100) == 0  # done at T0+100: not before it
        assert tx.prune_dispatch(T0 + 101) == 1
    assert [(r["ticket_id"], r["state"]) for r in store.dispatch_rows()] == [(b, "pending")]


def test_claims_filter_by_helpdesk_or_by_helpdesks_not_configured(store) -> None:
    a, b, c = tickets(store, 3)
    enqueue(store, (a, "desk", "open"), (b, "pager", "open"), (c, "gone", "open"))
    assert [r["ticket_id"] for r in claim(store, helpdesk="pager")] == [b]
    assert [r["ticket_id"] for r in claim(store, other_than=("desk", "pager"))] == [c]
    assert [r["ticket_id"] for r in claim(store, limit=1)] == [a]
    assert claim(store, limit=0) == []


def test_links_are_saved_updated_and_carry_the_remote_state(store) -> None:
    a, b = tickets(store, 2)
    with store.transaction() as tx:
        tx.save_link(a, "desk", "17", "https://desk/17", {"helpdesk": "desk", "project": "ops"})
        tx.save_link(b, "desk", "18", None, {"helpdesk": "desk"})
        tx.set_link_state(a, "desk", None, None, T0, "desk: GET answered 503")
        tx.save_link(a, "desk", "19", "https://desk/19", {"helpdesk": "desk", "project": "ops"})
        tx.set_link_state(b, "desk", "acknowledged", "alice", T0 + 1)
    assert store.link(a, "desk") == {
        "ticket_id": a, "helpdesk": "desk", "external_id": "19", "url": "https://desk/19",
        "destination": {"helpdesk": "desk", "project": "ops"}, "remote_state": None,
        "remote_assignee": None, "synced_at": T0, "error": None}
    assert [(link["ticket_id"], link["remote_state"], link["remote_assignee"])
            for link in store.links()] == [(a, None, None), (b, "acknowledged", "alice")]
    assert [link["external_id"] for link in store.links(b)] == ["18"]
    assert store.link(a, "pager") is None and store.links(9999) == []


@pytest.mark.slow
def test_concurrent_claimers_never_get_the_same_row(store) -> None:
    ids = tickets(store, 60)
    enqueue(store, *((i, "desk", action) for i in ids for action in ("open", "comment")))
    claimed: Counter[int] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def claimer(owner: str) -> None:
        try:
            while True:
                rows = claim(store, T0, limit=3, owner=owner)
                with lock:
                    claimed.update(r["id"] for r in rows)
                if not rows:
                    return
                with store.transaction() as tx:  # settle, so the next action is due
                    for row in rows:
                        assert tx.complete_dispatch(row["id"], T0, row["lease_owner"])
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"r{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(claimed) == 120 and set(claimed.values()) == {1}
    assert {r["state"] for r in store.dispatch_rows()} == {"done"}
