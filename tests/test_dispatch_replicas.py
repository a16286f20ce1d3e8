"""Real ``patrol collector`` replicas sharing one PostgreSQL schema deliver every
helpdesk action once, to a slow helpdesk, and take over a killed replica's work.

The helpdesk is tests/slow_helpdesk.py on loopback: each replica gets its own base
URL on it, so every request it records says which replica sent it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from patrol.collector.dispatch.leases import LEASE
from tests.procs import AGENT_TOKEN, OPERATOR_TOKEN, CollectorProcess, event_payload
from tests.slow_helpdesk import SlowHelpdesk, serving

pytestmark = pytest.mark.slow


def helpdesk_yaml(kind: str, desk: SlowHelpdesk, replica: str) -> str:
    if kind == "webhook":  # cannot be searched: find() has nothing to ask
        return (f"{{type: webhook, url: '{desk.url(replica)}/hook', template: "
                "{action: '{action}', fingerprint: '{fingerprint}', number: '{number}'}}")
    return (f"{{type: zendesk, url: '{desk.url(replica)}', email: patrol@example.com, "
            "token: zendesk-test-token}")


class Replica(CollectorProcess):
    """``patrol collector`` on a PostgreSQL store with one helpdesk, ``desk``."""

    def __init__(self, workdir: Path, name: str, store: str, helpdesk: str) -> None:
        super().__init__(workdir, name=name)
        Path(self.argv[-1]).write_text(
            "collector:\n"
            f"  listen: 127.0.0.1:{self.port}\n"
            f"  store: '{store}'\n"
            f"  agent_tokens: [{AGENT_TOKEN}]\n"
            f"  operator_tokens: [{OPERATOR_TOKEN}]\n"
            "ticketing:\n"
            "  helpdesks:\n"
            f"    desk: {helpdesk}\n"
            "  routes:\n"
            "    - helpdesk: desk\n"
            "  sync_interval: 1h\n")

    def metric(self, name: str, labels: str = 'helpdesk="desk"') -> float:
        """One sample of /metrics; 0 when absent."""
        text = requests.get(self.url + "/metrics", timeout=5).text
        found = re.search(rf"^{name}{{{re.escape(labels)}}} (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0


@pytest.fixture
def replicas(tmp_path: Path, pg_schema_url: str) -> Iterator[list[Replica]]:
    made: list[Replica] = []
    yield made
    for replica in made:
        replica.stop()


def start(replicas: list[Replica], tmp_path: Path, store: str, kind: str,
          desk: SlowHelpdesk, names: str) -> list[Replica]:
    for name in names:
        replicas.append(Replica(tmp_path / name, name, store,
                                helpdesk_yaml(kind, desk, name)).start())
    return replicas


def incidents(replicas: list[Replica], n: int) -> None:
    """``n`` new incidents, spread over the replicas as a load balancer would."""
    for i in range(n):
        response = replicas[i % len(replicas)].post_events(
            [event_payload(f"web-{i:03d}", "orders-port", 1)])
        assert response.status_code == 202, response.text


def outbox(store: str) -> dict[str, int]:
    with psycopg.connect(store, autocommit=True) as conn:
        return dict(conn.execute("SELECT state, COUNT(*) FROM dispatch GROUP BY state")
                    .fetchall())


def wait_until_delivered(store: str, n: int, watch: Replica, timeout: float = 180) -> None:
    watch.wait_until(lambda: outbox(store) == {"done": n}, timeout,
                     f"{n} helpdesk actions delivered (outbox: {outbox(store)})", interval=0.5)


def test_replicas_send_each_incident_once_to_a_helpdesk_slower_than_the_lease(
        tmp_path: Path, pg_schema_url: str, replicas: list[Replica]) -> None:
    n = 16  # 3 replicas x 4 workers: a second round waits, unclaimed, for free workers
    with serving(delay=LEASE + 2) as desk:
        start(replicas, tmp_path, pg_schema_url, "webhook", desk, "abc")
        incidents(replicas, n)
        wait_until_delivered(pg_schema_url, n, replicas[0])
        opens = desk.opens_per_fingerprint()
        assert len(opens) == n and set(opens.values()) == {1}
        assert {r.replica for r in desk.of("hook")} == {"a", "b", "c"}  # the work is shared
        for replica in replicas:
            assert replica.metric("patrol_collector_dispatch_lost_leases_total") == 0
            assert replica.metric("patrol_collector_dispatch_lease_takeovers_total") == 0
        assert sum(r.metric("patrol_collector_dispatch_attempts_total",
                            'helpdesk="desk",outcome="delivered"') for r in replicas) == n


@pytest.mark.parametrize("kind", ["zendesk", "webhook"])
def test_a_killed_replicas_work_is_taken_over(
        tmp_path: Path, pg_schema_url: str, replicas: list[Replica], kind: str) -> None:
    """With find() (Zendesk's external_id) nothing is opened twice; a plain webhook
    gets again at most the actions that were in flight at the kill, with the same
    fingerprint (at least once, recognisable)."""
    n = 12
    with serving(delay=3.0) as desk:
        a, b = start(replicas, tmp_path, pg_schema_url, kind, desk, "ab")
        incidents([a], n)
        a.wait_until(lambda: desk.in_flight("a"), 30, "a request from a in flight")
        in_flight = {r.fingerprint for r in desk.in_flight("a")}
        a.kill()
        killed_at = time.monotonic()
        wait_until_delivered(pg_schema_url, n, b)
        taken = [r for r in desk.requests if r.replica == "b" and r.fingerprint in in_flight
                 and r.started > killed_at]
        print(f"\n{kind}: {len(in_flight)} in flight at the kill; b took the first over "
              f"{min(r.started for r in taken) - killed_at:.1f} s after it (lease {LEASE:g} s)")
        opens = desk.opens_per_fingerprint()
        assert len(opens) == n
        twice = {fp for fp, count in opens.items() if count > 1}
        assert b.metric("patrol_collector_dispatch_lease_takeovers_total") >= len(in_flight)
        if kind == "zendesk":
            assert twice == set() and len(desk.tickets) == n
        else:
            assert twice <= in_flight and set(opens.values()) <= {1, 2}
        numbers = [t["number"] for t in b.tickets()]
        linked = [b.session.get(f"{b.url}/api/v1/tickets/{number}",
                                headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
                                timeout=10).json()["helpdesks"] for number in numbers]
        assert all(len(links) == 1 and links[0]["external_id"] for links in linked)
