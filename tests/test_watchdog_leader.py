"""Several ``patrol collector`` replicas on one PostgreSQL schema: exactly one runs the
watchdog's duties, and when it is killed (-9) another takes over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.procs import AGENT_TOKEN, OPERATOR_TOKEN, PatrolProcess, free_port

pytestmark = pytest.mark.slow

LEADER = "patrol_collector_watchdog_leader"
LIVENESS_DONE = 'patrol_collector_watchdog_last_success_timestamp_seconds{duty="liveness"}'


class Replica(PatrolProcess):
    def __init__(self, workdir: Path, name: str, store: str) -> None:
        self.port = free_port()
        config = workdir / f"{name}.yaml"
        config.write_text(
            "collector:\n"
            f"  listen: 127.0.0.1:{self.port}\n"
            f"  store: \"{store}\"\n"
            f"  agent_tokens: [{AGENT_TOKEN}]\n"
            f"  operator_tokens: [{OPERATOR_TOKEN}]\n"
            "  watchdog_interval: 0.5s\n")
        super().__init__("collector", config, workdir / f"{name}.log")
        self.url = f"http://127.0.0.1:{self.port}"

    def metrics(self) -> dict[str, float]:
        text = requests.get(self.url + "/metrics", timeout=5).text
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in text.splitlines() if line and not line.startswith("#")}


@pytest.fixture
def replicas(tmp_path: Path, pg_schema_url: str) -> Iterator[list[Replica]]:
    started = [Replica(tmp_path, f"collector-{n}", pg_schema_url) for n in range(3)]
    try:
        for replica in started:
            replica.start()
        for replica in started:
            replica.wait_until(lambda r=replica: LEADER in r.metrics(), 30, "its /metrics")
        yield started
    finally:
        for replica in started:
            replica.stop()


def leaders(replicas: list[Replica]) -> list[Replica]:
    return [r for r in replicas if r.alive() and r.metrics()[LEADER] == 1]


def test_one_replica_runs_the_duties_and_another_takes_over_when_it_dies(
        replicas: list[Replica]) -> None:
    first = replicas[0].wait_until(lambda: leaders(replicas), 30, "a leader")
    assert len(first) == 1
    leader = first[0]
    leader.wait_until(lambda: LIVENESS_DONE in leader.metrics(), 30, "a watchdog pass")
    followers = [r for r in replicas if r is not leader]
    for _ in range(4):  # several passes later: still one leader, followers run nothing
        assert leaders(replicas) == [leader]
        for follower in followers:
            scrape = follower.metrics()
            assert scrape[LEADER] == 0 and LIVENESS_DONE not in scrape
        seen = leader.metrics()[LIVENESS_DONE]
        leader.wait_until(lambda seen=seen: leader.metrics()[LIVENESS_DONE] > seen, 30,
                          "the next pass")

    leader.kill()  # SIGKILL: its session ends with the process, and the lock with it
    taken = followers[0].wait_until(lambda: leaders(followers), 30, "a new leader")
    assert len(taken) == 1
    successor = taken[0]
    successor.wait_until(lambda: LIVENESS_DONE in successor.metrics(), 30,
                         "the new leader's pass")
    assert leaders(followers) == [successor]
