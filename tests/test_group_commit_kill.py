"""An accepted event survives kill -9, also when commits are shared between concurrent
requests (group commit on SQLite, collector/store/sqlite.py): a 202 is sent only after
the COMMIT that holds its event; and when the ingest worker (collector/ingest/worker.py)
runs the requests waiting together as one unit of work, a request is answered only after
the COMMIT of that unit. Many agents post single events and small batches at once, the
collector is killed with SIGKILL in the middle, and every event that was answered 202
must be in the store; after a restart the store is whole and the same events are
duplicates.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.procs import CollectorProcess, agent_headers, event_payload
from tests.test_faults import recorded_events

pytestmark = pytest.mark.slow

POSTERS = 12
BATCH = 5  # events per request from every other poster


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")


def _post_until_refused(url: str, first: int, acknowledged: list[str],
                        failed: list[list[str]]) -> None:
    """Post new events until the collector stops answering: one per request from the
    even posters, batches of BATCH from the odd ones."""
    session = requests.Session()
    size = 1 if first % 2 == 0 else BATCH
    for n in range(first * 1000, first * 1000 + 100_000_000, size):
        events = [event_payload(f"host-{m:08d}", "disk", m, agent_id=f"agent-{first}")
                  for m in range(n, n + size)]
        body = events[0] if size == 1 else {"events": events}
        try:
            answer = session.post(url, json=body, headers=agent_headers(), timeout=10)
        except requests.RequestException:
            failed.append([e["event_id"] for e in events])
            return
        if answer.status_code == 202:
            acknowledged.extend(e["event_id"] for e in events)
    session.close()


def test_every_acknowledged_event_survives_kill_9_during_concurrent_posts(
        tmp_path: Path, store: str | None) -> None:
    collector = CollectorProcess(tmp_path / "collector", store=store)
    try:
        collector.start()
        acknowledged: list[str] = []
        failed: list[list[str]] = []
        posters = [threading.Thread(target=_post_until_refused,
                                    args=(collector.url + "/api/v1/events", i, acknowledged,
                                          failed)) for i in range(POSTERS)]
        for poster in posters:
            poster.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        collector.kill()
        for poster in posters:
            poster.join(30)

        in_store = recorded_events(collector)
        assert len(acknowledged) >= 300, "the posters never got going"
        assert failed, "the kill did not land while requests were in flight"
        assert [e for e in acknowledged if e not in in_store] == []
        assert set(in_store.values()) == {1}
        # An unanswered request's events are all in or all out (its unit of work
        # committed or not), never half-written.
        assert [ids for ids in failed if 0 < sum(i in in_store for i in ids) < len(ids)
                ] == []
        if store is None:
            conn = sqlite3.connect(collector.db)
            try:
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            finally:
                conn.close()

        collector.start()
        again = event_payload("host-00000000", "disk", 0, agent_id="agent-0")
        answer = collector.session.post(collector.url + "/api/v1/events", json=again,
                                        headers=agent_headers(), timeout=30)
        assert answer.status_code == 202, answer.text
        assert answer.json()["results"][0]["outcome"] == (
            "duplicate" if again["event_id"] in in_store else "opened")
        assert collector.session.get(collector.url + "/healthz", timeout=10).json()[
            "open_tickets"] == len(in_store) + (again["event_id"] not in in_store)
    finally:
        collector.stop()
