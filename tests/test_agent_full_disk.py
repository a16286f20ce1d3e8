"""A real agent whose state directory fills up (a small tmpfs) while a check breaches:
the breach still reaches the collector and opens its ticket, heartbeats keep coming
(no false "unreachable" ticket), the log says so once without a traceback, and when
space returns the recovery is delivered and the outbox empties (issue 9, item 3)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procs import AgentProcess, CollectorProcess, read_outbox
from tests.small_disk import SmallDisk, small_disk

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def collector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CollectorProcess]:
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_schema_url")
    process = CollectorProcess(tmp_path / "collector", store=url,
                               settings=("watchdog_interval: 1s",))
    try:
        yield process.start()
    finally:
        process.stop()


def _metric(agent: AgentProcess, name: str) -> float:
    for line in agent.metrics().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_a_breach_on_a_full_disk_still_opens_its_ticket(
        collector: CollectorProcess, tmp_path: Path) -> None:
    watched = tmp_path / "flag"
    watched.write_text("present")
    workdir = tmp_path / "agent"
    checks = (f"  - name: flag\n    type: file\n    path: {watched}\n"
              "    must_exist: true\n    for: 1\n")
    with small_disk(workdir / "agent-state", size="512k") as disk:
        agent = AgentProcess(workdir, collector.url, checks, heartbeat="1s")
        try:
            _run(agent, collector, disk, watched)
        finally:
            agent.stop()


def _run(agent: AgentProcess, collector: CollectorProcess, disk: SmallDisk,
         watched: Path) -> None:
    beats = 'patrol_outbox_delivered_total{kind="heartbeat"}'
    agent.start()
    agent.wait_until(lambda: _metric(agent, beats) >= 1, 30, "a first heartbeat")
    disk.fill()
    watched.unlink()  # the breach, while nothing can be written to the state directory
    [ticket] = agent.wait_until(lambda: collector.tickets(host="fault-01"), 60,
                                "the breach's ticket, delivered from memory")
    assert ticket["check"] == "flag"
    delivered = _metric(agent, beats)
    agent.wait_until(lambda: _metric(agent, beats) >= delivered + 2, 30,
                     "heartbeats while the disk is full")
    output = agent.output()
    assert output.count("keeping state changes in memory") == 1, output
    assert "Traceback" not in output, output
    assert _metric(agent, "patrol_outbox_dropped_total") == 0

    disk.free()
    watched.write_text("back")
    agent.wait_until(lambda: collector.tickets(host="fault-01")[0]["check_status"] == "OK",
                     60, "the recovery")
    agent.wait_until(lambda: not [r for r in read_outbox(agent.state_dir)
                                  if r["kind"] == "event"], 30, "the outbox to drain")
    time.sleep(1.5)  # a watchdog pass: a host that kept sending is not unreachable
    assert [t["check"] for t in collector.tickets()] == ["flag"]
