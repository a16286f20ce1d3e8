"""Collector replicas on one store, and the clients' view of them through a
round-robin load balancer.

Every answer any replica gives to any client request is recorded, so a scenario can
assert afterwards that no request was answered 5xx. The balancer behaves like a
real one: a replica that refuses connections (killed) is skipped; a 5xx is recorded
and the request is retried on the next replica, as an agent would retry it.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.helpdesk_double_process import HelpdeskDouble
from tests.procs import CollectorProcess, PatrolProcess, agent_headers, operator_headers

HELPDESK = "desk"


@dataclass(frozen=True)
class Answer:
    replica: str
    method: str
    path: str
    status: int
    excerpt: str


def collector_yaml(double: HelpdeskDouble, replica: str) -> str:
    """Policy and ticketing for a scale run: verification shortened so recoveries
    resolve within the test; the helpdesk is the double, told who is sending."""
    return ("policy:\n"
            "  lifecycle: {verify_for: 2s, reopen_window: 1h}\n"
            "ticketing:\n"
            "  helpdesks:\n"
            + double.webhook_yaml(HELPDESK, replica, max_concurrency=8)
            + "  routes:\n"
            f"    - helpdesk: {HELPDESK}\n"
            "  workers: 8\n"
            "  dispatch_interval: 0.5s\n"
            "  sync_interval: 1h\n")


class Fleet:
    """``count`` replicas named r1..rN on ``store`` (a URL), all sending to ``double``."""

    def __init__(self, workdir: Path, store: str, count: int, double: HelpdeskDouble) -> None:
        self.replicas = {
            f"r{n}": CollectorProcess(workdir / f"r{n}", name=f"r{n}", store=store,
                                      settings=("watchdog_interval: 1s",),
                                      extra_yaml=collector_yaml(double, f"r{n}"))
            for n in range(1, count + 1)}
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._turn = itertools.count()

    def start(self) -> Fleet:
        """All at once, as an orchestrator starts replicas (migrations race)."""
        for replica in self.replicas.values():
            PatrolProcess.start(replica)  # without waiting: all start together
        for replica in self.replicas.values():
            replica.wait_until(replica.healthy, 60, "the collector's /healthz")
        return self

    def stop(self) -> None:
        for replica in self.replicas.values():
            replica.stop()

    def live(self) -> dict[str, CollectorProcess]:
        return {name: r for name, r in self.replicas.items() if r.alive()}

    def output(self) -> str:
        return "\n".join(f"== {name}\n{r.output()[-3000:]}" for name, r in self.replicas.items())

    # -- requests through the balancer ---------------------------------------------------

    def request(self, method: str, path: str, *, operator: bool = False,
                **kwargs: Any) -> requests.Response | None:
        """Send to the next live replica; on a 5xx or a refused connection try the
        others. Returns the first non-5xx answer, or None if every replica failed."""
        names = list(self.replicas)
        start = next(self._turn)
        headers = operator_headers() if operator else agent_headers()
        for offset in range(len(names)):
            name = names[(start + offset) % len(names)]
            replica = self.replicas[name]
            try:
                response = requests.request(method, replica.url + path, headers=headers,
                                            timeout=60, **kwargs)
            except requests.ConnectionError:
                continue  # a dead replica: the balancer routes around it
            self._record(name, method, path, response)
            if response.status_code < 500:
                return response
        return None

    def _record(self, name: str, method: str, path: str, response: requests.Response) -> None:
        with self._lock:
            self.answers.append(Answer(name, method, path, response.status_code,
                                       response.text[:300]))

    def post_all(self, path: str, bodies: list[Any], parallel: int = 6) -> None:
        """Post every body (agents posting at once); order within one agent is kept
        by the caller putting each agent's body in one phase."""
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(lambda body: self.request("POST", path, json=body), bodies))

    def server_errors(self) -> list[Answer]:
        return [a for a in self.answers if a.status >= 500]

    def refused(self) -> list[Answer]:
        """4xx answers: the suite only sends valid requests, so any is a defect."""
        return [a for a in self.answers if 400 <= a.status < 500]

    # -- what the replicas publish ---------------------------------------------------------

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket, through the operator API of whichever replica answers."""
        out: list[dict[str, Any]] = []
        while True:
            response = self.request("GET", "/api/v1/tickets", operator=True,
                                    params={"limit": 1000, "offset": len(out)})
            if response is None or response.status_code != 200:
                return out
            page = response.json()["tickets"]
            out.extend(page)
            if len(page) < 1000:
                return out

    def ticket(self, number: str) -> dict[str, Any] | None:
        response = self.request("GET", f"/api/v1/tickets/{number}", operator=True)
        return response.json() if response is not None and response.ok else None

    def metrics(self) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
        """Per live replica: {(sample name, sorted labels): value}."""
        out = {}
        for name, replica in self.live().items():
            response = requests.get(replica.url + "/metrics", timeout=30)
            self._record(name, "GET", "/metrics", response)
            samples = {}
            for family in text_string_to_metric_families(response.text):
                for sample in family.samples:
                    samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
            out[name] = samples
        return out


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(value for (sample, have), value in samples.items()
               if sample == name and set(labels.items()) <= set(have))
