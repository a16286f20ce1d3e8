"""Issue 10, connection manners, against a real ``patrol collector`` process (uvicorn,
keep-alive timeout 5 s): an agent that has been idle longer than the collector keeps
a connection open pushes again without an error, losing or doubling nothing, both
with the shipped idle limit (below the keep-alive) and with one that is too long
(the agent would write on a connection the server has closed)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from patrol.agent.outbox import Outbox
from patrol.agent.pusher import IDLE_SECONDS, Pusher, Target
from tests.procs import AGENT_TOKEN, CollectorProcess, event_payload
from tests.test_faults import recorded_events

KEEP_ALIVE = 5.0  # uvicorn's default timeout_keep_alive, which the collector runs with


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")


@pytest.mark.slow
def test_pushing_after_an_idle_longer_than_the_keep_alive_loses_and_doubles_nothing(
        tmp_path, store) -> None:
    collector = CollectorProcess(tmp_path / "collector", store=store).start()
    lanes: dict[str, tuple[Outbox, Pusher]] = {}
    try:
        for host, idle in (("shipped-01", IDLE_SECONDS), ("too-long-01", 60.0)):
            outbox = Outbox(tmp_path / host, [collector.url])
            pusher = Pusher(outbox, [Target(collector.url, AGENT_TOKEN)], idle_seconds=idle,
                            backoff_base=0.05, backoff_cap=0.2)
            pusher.start()
            lanes[host] = (outbox, pusher)
        sent: Counter[str] = Counter()

        def push(round_: int) -> None:
            for host, (outbox, _) in lanes.items():
                for n in range(5):
                    payload = event_payload(host, f"check-{round_}-{n}", outbox.next_sequence())
                    outbox.put("event", payload, key=payload["event_id"])
                    sent[payload["event_id"]] += 1

        def delivered() -> bool:
            return all(outbox.backlog().count == 0 for outbox, _ in lanes.values())

        push(0)
        collector.wait_until(delivered, 20, "the first round delivered")
        time.sleep(KEEP_ALIVE + 1.0)  # the collector closes its idle connections
        push(1)
        collector.wait_until(delivered, 20, "the second round delivered")
        assert [pusher.failed for _, pusher in lanes.values()] == [0, 0]
        assert recorded_events(collector) == sent
    finally:
        for outbox, pusher in lanes.values():
            pusher.stop()
            outbox.close()
        collector.stop()
