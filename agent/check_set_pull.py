"""Pulling check sets from the collector: on start, then every ``check_sets.interval``.

One pull is ``GET /api/v1/check-sets?host=...&label=K=V`` with the agent's collector
token, over the same kind of kept-alive connection (and ``ca_file`` trust) as event
delivery, and ``If-None-Match`` naming the version held. Then:

- 304: nothing changed;
- 200: the set is written to ``check_sets.candidate.yaml`` and validated with this
  agent's registry (:func:`agent.check_sets.candidate_problems`). A good one replaces
  ``check_sets.yaml`` (atomically) and the agent reloads; a bad one is logged with its
  FILE:LINE in the candidate file, which is kept for inspection, and the last good set
  stays. After applying, the agent asks again at once: the collector learns from that
  pull's ``If-None-Match`` which version this host now runs (its Hosts page).
- anything else (collector down, 401, 5xx): logged, the next collector is tried, and
  the last good set stays in force, across restarts too.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import yaml

from patrol.agent.check_sets import (
    CANDIDATE_FILE,
    STORE_FILE,
    CheckSetState,
    candidate_problems,
    read_sets,
)
from patrol.agent.collector_http import CollectorConnection
from patrol.contract.yamlsource import Problem

if TYPE_CHECKING:
    from patrol.agent.config import AgentSettings

log = logging.getLogger("patrol.agent")

TIMEOUT = (5.0, 15.0)  # connect, read (seconds)


def held_version(state_dir: Path) -> str | None:
    path = Path(state_dir) / STORE_FILE
    if not path.is_file():
        return None
    version, _ = read_sets(path, [])
    return version


def _shaped(data: Any) -> bool:
    """Whether an answer looks like the collector's (before anything is written)."""
    return (isinstance(data, dict) and isinstance(data.get("version"), str)
            and isinstance(data.get("sets"), list)
            and all(isinstance(s, dict) and isinstance(s.get("name"), str)
                    and isinstance(s.get("checks"), list) for s in data["sets"]))


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class CheckSetPuller:
    """The pull loop. ``settings`` is read at each pull (a reload may change it);
    ``applied`` is called after a new set was stored (the agent reloads); ``problems``
    validates a candidate (the agent's validator: in its child, agent/validation.py)."""

    def __init__(self, settings: Callable[[], AgentSettings], applied: Callable[[], Any],
                 state: CheckSetState,
                 problems: Callable[[Path, set[str]], list[Problem]] = candidate_problems,
                 ) -> None:
        self._problems = problems
        self._settings = settings
        self._applied = applied
        self.state = state
        self._connections: dict[tuple[str, Path | None], CollectorConnection] = {}
        self._refused: str | None = None  # a bad version is logged in full once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="patrol-check-sets",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=TIMEOUT[0] + TIMEOUT[1])
        self._close()

    def _close(self) -> None:
        for connection in list(self._connections.values()):
            connection.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._settings().check_sets.pull and self.pull() == "updated":
                    self.pull()  # tells the collector at once which version runs here
            except Exception:  # a failed pull must never end the loop
                log.exception("check-set pull failed")
            self._close()  # minutes until the next pull: hold no idle socket meanwhile
            self._stop.wait(self._settings().check_sets.interval)

    def pull(self) -> str:
        """One pull from the first collector that answers; returns its result."""
        settings = self._settings()
        state_dir = Path(settings.state_dir)
        held = held_version(state_dir)
        query = urlencode([("host", settings.hostname)]
                          + [("label", f"{k}={v}") for k, v in sorted(settings.labels.items())])
        for endpoint in settings.collector:
            headers = {"Accept": "application/json"}
            if endpoint.token:
                headers["Authorization"] = f"Bearer {endpoint.token.reveal()}"
            if held:
                headers["If-None-Match"] = f'"{held}"'
            key = (endpoint.url, endpoint.ca_file)
            connection = self._connections.get(key)
            if connection is None:
                connection = CollectorConnection(endpoint.url, ca_file=endpoint.ca_file)
                self._connections[key] = connection
            try:
                answer = connection.get(f"/api/v1/check-sets?{query}", headers, TIMEOUT)
            except (OSError, http.client.HTTPException) as exc:
                log.warning("check sets: %s did not answer: %s", endpoint.url, exc)
                continue
            if answer.status == 304:
                return self._count("unchanged")
            if answer.status != 200:
                log.warning("check sets: %s answered %d: %s", endpoint.url, answer.status,
                            answer.text[:300])
                continue
            return self._count(self._take(answer.text, endpoint.url, settings, state_dir))
        return self._count("failed")

    def _count(self, result: str) -> str:
        self.state.pulls[result] += 1
        return result

    def _take(self, text: str, source: str, settings: AgentSettings, state_dir: Path) -> str:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not _shaped(data):
            log.error("check sets: %s sent something that is not a check-set answer: %r",
                      source, text[:300])
            return "refused"
        version = data["version"]
        candidate = state_dir / CANDIDATE_FILE
        state_dir.mkdir(parents=True, exist_ok=True)
        header = (f"# Check sets version {version} from {source}; replaced on the next "
                  "pull: edit them on the collector\n")
        write_atomically(candidate, header + yaml.safe_dump(
            {"version": version, "sets": data["sets"]}, sort_keys=False, allow_unicode=True))
        problems = self._problems(candidate, set(settings.check_sets.allow_types))
        if problems:
            if version != self._refused:
                log.error("check sets %s from %s refused; still running %s:\n%s", version,
                          source, self.state.version or "none",
                          "\n".join(str(p) for p in problems))
            self._refused = version
            return "refused"
        os.replace(candidate, state_dir / STORE_FILE)
        log.info("check sets %s from %s stored; applying", version, source)
        self._applied()
        return "updated"
