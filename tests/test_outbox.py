"""The agent's SQLite outbox and its identity file, on real files in tmp_path."""

from __future__ import annotations

import logging
import sqlite3
import stat

import pytest

from patrol.agent.identity import agent_id
from patrol.agent.outbox import Outbox

A, B = "https://a.example:8443", "https://b.example:8443"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def event(sequence: int, **extra: object) -> dict[str, object]:
    return {"event_id": f"ev{sequence:06d}", "sequence": sequence, **extra}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def box(tmp_path, clock) -> Outbox:
    outbox = Outbox(tmp_path / "state", [A], clock=clock)
    yield outbox
    outbox.close()


def sequences(rows) -> list[int]:
    return [r.sequence for r in rows]


def test_creates_state_dir_and_private_wal_database(tmp_path):
    outbox = Outbox(tmp_path / "deep" / "state", [A])
    outbox.put("event", event(1), "ev1")
    path = tmp_path / "deep" / "state" / "outbox.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    wal = path.with_name("outbox.db-wal")
    assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
    outbox.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_put_is_committed_before_it_returns(box):
    box.put("event", event(1, summary="disk full"), "ev1")
    # A second connection sees it at once: nothing waits in an open transaction.
    with sqlite3.connect(box.path) as other:
        assert other.execute("SELECT key, payload FROM outbox").fetchall() == [
            ("ev1", '{"event_id":"ev000001","sequence":1,"summary":"disk full"}')]


def test_events_come_out_by_sequence_even_when_put_out_of_order(box):
    for seq in (3, 1, 2):
        box.put("event", event(seq), f"ev{seq}")
    assert sequences(box.next_batch(10)) == [1, 2, 3]
    assert sequences(box.next_batch(2)) == [1, 2]
    assert box.next_batch(10)[0].payload == event(1)


def test_putting_the_same_event_twice_queues_it_once(box):
    assert box.put("event", event(1), "ev1") == 1
    assert box.put("event", event(1), "ev1") == 0
    assert len(box.rows()) == 1


def test_every_collector_gets_its_own_copy(tmp_path):
    outbox = Outbox(tmp_path, [A, B])
    outbox.put("event", event(1), "ev1")
    outbox.put("event", event(2), "ev2")
    outbox.ack(r.id for r in outbox.next_batch(10, collector=A))
    assert outbox.next_batch(10, collector=A) == []
    assert sequences(outbox.next_batch(10, collector=B)) == [1, 2]
    assert outbox.backlog(A).count == 0 and outbox.backlog(B).count == 2


def test_heartbeats_coalesce_to_the_latest_one(box):
    for n in range(200):
        box.put("heartbeat", {"sequence": 0, "n": n}, "web-01")
    rows = box.rows()
    assert [(r.kind, r.payload["n"]) for r in rows] == [("heartbeat", 199)]


def test_events_are_served_before_the_heartbeat(box):
    box.put("heartbeat", {"sequence": 5}, "web-01")
    box.put("event", event(6), "ev6")
    assert [r.kind for r in box.next_batch(10)] == ["event", "heartbeat"]
    assert [r.kind for r in box.next_batch(10, kind="heartbeat")] == ["heartbeat"]


def test_a_row_in_backoff_holds_back_the_rows_behind_it(box, clock):
    for seq in (1, 2):
        box.put("event", event(seq), f"ev{seq}")
    first = box.next_batch(1)
    box.attempt_failed([first[0].id], clock.now + 30, "HTTP 503: busy")
    box.put("event", event(3), "ev3")
    assert box.next_batch(10) == []  # 2 and 3 are due, but must not overtake 1
    assert box.next_due(A) == clock.now + 30
    clock.now += 30
    rows = box.next_batch(10)
    assert sequences(rows) == [1, 2, 3]
    assert (rows[0].attempts, rows[0].last_error) == (1, "HTTP 503: busy")


def test_ack_forgets_rows(box):
    box.put("event", event(1), "ev1")
    box.ack([r.id for r in box.next_batch(10)])
    assert box.rows() == [] and box.backlog() == (0, 0.0)


def test_dead_letters_are_kept_visible_and_not_served_until_revived(box, clock):
    box.put("event", event(1), "ev1")
    clock.now += 5
    box.put("event", event(2), "ev2")
    box.dead_letter([box.next_batch(1)[0].id], "HTTP 401: bad token")
    assert sequences(box.next_batch(10)) == [2]
    clock.now += 10
    assert box.backlog() == (2, 15.0)  # the dead letter still counts, and is the oldest
    assert box.counts()[("event", "dead")] == 1
    dead = [r for r in box.rows() if r.dead]
    assert [(r.sequence, r.last_error) for r in dead] == [(1, "HTTP 401: bad token")]
    assert box.revive() == 1
    assert sequences(box.next_batch(10)) == [1, 2]


def test_only_the_latest_refused_heartbeat_is_kept(box):
    for n in range(3):
        box.put("heartbeat", {"sequence": 0, "n": n}, "web-01")
        box.dead_letter([box.next_batch(1, kind="heartbeat")[0].id], "HTTP 400")
    assert [(r.payload["n"], r.dead) for r in box.rows()] == [(2, True)]


def test_cap_drops_heartbeats_then_dead_letters_then_the_oldest_events(tmp_path, caplog):
    outbox = Outbox(tmp_path, [A], cap=4)
    outbox.put("heartbeat", {"sequence": 0}, "web-01")
    for seq in (1, 2, 3):
        outbox.put("event", event(seq), f"ev{seq}")
    outbox.dead_letter([outbox.next_batch(1)[0].id], "HTTP 422")  # sequence 1

    with caplog.at_level(logging.ERROR, logger="patrol.outbox"):
        outbox.put("event", event(4), "ev4")  # full: the heartbeat goes
        assert caplog.records == []  # no event was lost, so no error
        assert [(r.kind, r.sequence) for r in outbox.rows()] == [
            ("event", 1), ("event", 2), ("event", 3), ("event", 4)]

        outbox.put("event", event(5), "ev5")  # then the dead letter
        outbox.put("event", event(6), "ev6")  # then the oldest pending event
    assert sequences(outbox.rows()) == [3, 4, 5, 6]
    assert outbox.dropped == 2
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == (
        f"outbox for {A} is full (4 rows): dropped 1 event(s) (1 dead-lettered, 0 never "
        "delivered) to keep the newest; the collector has been unreachable for long, check it")
    assert "dropped 1 event(s) (0 dead-lettered, 1 never delivered, sequence 2-2)" in messages[1]


def test_sequence_is_monotonic_across_restarts(tmp_path):
    first = Outbox(tmp_path, [A])
    assert [first.next_sequence() for _ in range(3)] == [1, 2, 3]
    first.close()
    second = Outbox(tmp_path, [A])
    assert second.last_sequence() == 3
    assert second.next_sequence() == 4
    second.close()


def test_rejects_unknown_kinds(box):
    with pytest.raises(ValueError, match="kind must be one of"):
        box.put("alert", {}, "x")  # type: ignore[arg-type]


def test_agent_id_is_created_once_and_kept(tmp_path):
    state = tmp_path / "state"
    first = agent_id(state)
    assert len(first) == 32 and int(first, 16) >= 0
    assert agent_id(state) == first
    assert (state / "agent_id").read_text() == first + "\n"
    assert stat.S_IMODE((state / "agent_id").stat().st_mode) == 0o600
    assert agent_id(tmp_path / "other") != first
