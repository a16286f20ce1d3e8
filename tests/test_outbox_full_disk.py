"""The outbox on a really full disk (a small tmpfs, filled): state changes that cannot
be written are held in memory (newest per check), delivered from there, counted when
really dropped, said once in the log, and moved to disk when space returns (issue 9).
They used to be lost for good, with an ERROR and a traceback per event."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from patrol.agent.outbox import Outbox
from tests.small_disk import SmallDisk, small_disk
from tests.test_outbox import A, Clock

pytestmark = pytest.mark.slow  # mounts a filesystem


def change(outbox: Outbox, check: str, status: str) -> dict[str, object]:
    sequence = outbox.next_sequence()
    return {"event_id": f"ev-{check}-{sequence:06d}", "sequence": sequence,
            "dedup_key": f"db-01/{check}", "status": status}


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "disk") as mounted:
        yield mounted


@pytest.fixture
def full(disk: SmallDisk) -> Iterator[tuple[Outbox, Clock]]:
    clock = Clock()
    outbox = Outbox(disk.path / "state", [A], clock=clock, hold_limit=3)
    outbox.put("event", change(outbox, "boot", "OK"), "boot")  # the WAL exists
    disk.fill()
    try:
        yield outbox, clock
    finally:
        outbox.close()


def _put(outbox: Outbox, check: str, status: str) -> None:
    payload = change(outbox, check, status)
    assert outbox.put("event", payload, str(payload["event_id"])) == 1


def test_changes_on_a_full_disk_are_held_newest_per_check(
        full: tuple[Outbox, Clock], disk: SmallDisk, caplog: pytest.LogCaptureFixture) -> None:
    outbox, clock = full
    caplog.set_level(logging.INFO, logger="patrol.outbox")
    _put(outbox, "disk", "CRITICAL")
    _put(outbox, "load", "WARNING")
    _put(outbox, "disk", "OK")  # replaces the held CRITICAL of the same check
    assert outbox.counts()[("event", "memory")] == 2
    assert outbox.dropped == 1  # the replaced state: a real drop, counted
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "keeping state changes in memory" in warnings[0].message
    assert not any(r.exc_info for r in caplog.records)

    # The pusher delivers held rows like rows on disk, in sequence order.
    rows = outbox.next_batch(10, collector=A, kind="event")
    assert [r.payload["status"] for r in rows] == ["OK", "WARNING", "OK"]
    assert rows[0].id > 0 and all(r.id < 0 for r in rows[1:])
    outbox.ack([rows[0].id])  # the delete itself needs space: remembered instead
    assert [r.payload["status"] for r in outbox.next_batch(10, collector=A)] == [
        "WARNING", "OK"]

    disk.free()
    clock.now += 5
    assert [r.id > 0 for r in outbox.next_batch(10, collector=A, kind="event")] == [True, True]
    assert outbox.counts()[("event", "memory")] == 0
    assert sorted(r.payload["status"] for r in outbox.rows()) == ["OK", "WARNING"]
    assert "takes writes again: 2 state change(s)" in caplog.text
    _put(outbox, "disk", "CRITICAL")
    assert [r.sequence for r in outbox.rows()] == sorted(r.sequence for r in outbox.rows())
    assert outbox.last_sequence() == 5


def test_the_bound_drops_the_oldest_check_and_counts_it(full: tuple[Outbox, Clock]) -> None:
    outbox, _ = full
    for check in ("a", "b", "c", "d"):
        _put(outbox, check, "CRITICAL")
    held = outbox.next_batch(10, collector=A, kind="event")
    assert [r.payload["dedup_key"] for r in held] == ["db-01/boot", "db-01/b", "db-01/c",
                                                      "db-01/d"]
    assert outbox.dropped == 1


def test_a_heartbeat_on_a_full_disk_is_held_and_delivered(full: tuple[Outbox, Clock]) -> None:
    """So the collector keeps hearing from the host: no false 'unreachable' ticket."""
    outbox, _ = full
    for sent in (1, 2):
        outbox.put("heartbeat", {"sequence": outbox.last_sequence(), "sent": sent}, "db-01")
    [beat] = outbox.next_batch(5, collector=A, kind="heartbeat")
    assert beat.payload["sent"] == 2
    assert outbox.dropped == 0  # a replaced heartbeat is no lost state change
    outbox.ack([beat.id])
    assert outbox.next_batch(5, collector=A, kind="heartbeat") == []
