"""The helpdesk double (:mod:`tests.helpdesk_double`) as a process a test drives:
started, killed with SIGKILL, restarted on the same port and journal, tuned through
its admin endpoint, and read back through its journal.

Kept apart from the server module so the server starts without importing
``requests`` or the test helpers.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from tests.helpdesk_double import effects, read_journal
from tests.procs import PatrolProcess, free_port

# The generic webhook's template (YAML flow mapping): every field the double reads.
GENERIC_TEMPLATE = ("{action: '{action}', fingerprint: '{fingerprint}', number: '{number}', "
                    "priority: '{priority}', text: '{text}'}")


class HelpdeskDouble(PatrolProcess):
    """``python -m tests.helpdesk_double`` on 127.0.0.1:``port``, journal in ``workdir``."""

    def __init__(self, workdir: Path, *, idempotent: bool = True,
                 delay: tuple[float, float] = (0.0, 0.0), port: int | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.idempotent = idempotent
        self.port = port or free_port()
        self.journal = workdir / "helpdesk-journal.jsonl"
        argv = [sys.executable, "-m", "tests.helpdesk_double", "--port", str(self.port),
                "--journal", str(self.journal), "--delay", str(delay[0]), str(delay[1])]
        if idempotent:
            argv.append("--idempotent")
        super().__init__("helpdesk-double", self.journal, workdir / "helpdesk.log",
                         argv=argv)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> HelpdeskDouble:
        super().start()
        self.wait_until(self.healthy, timeout, "the helpdesk double's /healthz")
        return self

    def healthy(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    # -- knobs and live state -----------------------------------------------------------

    def admin(self, **knobs: Any) -> dict[str, Any]:
        """``delay=[min, max]``, ``fail={"count", "status", "retry_after"}``,
        ``fail_for={"seconds", "status"}``; returns the state after the change."""
        response = requests.post(self.url + "/admin", json=knobs, timeout=5)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        return requests.get(self.url + "/admin/state", timeout=5).json()

    # -- the journal, after the fact -----------------------------------------------------

    def entries(self) -> list[dict[str, Any]]:
        return read_journal(self.journal)

    def effects(self) -> dict[str, Counter[str]]:
        """Per Patrol ticket fingerprint, how many requests had each effect."""
        return effects(self.entries())

    def accepted(self) -> dict[str, Counter[str]]:
        """Per fingerprint, how many requests of each action were answered 2xx:
        what the collectors believe they delivered."""
        out: dict[str, Counter[str]] = {}
        for entry in self.entries():
            if 200 <= entry["status"] < 300:
                out.setdefault(entry["fingerprint"], Counter())[entry["action"]] += 1
        return out

    # -- a collector's view of it ---------------------------------------------------------

    def webhook_yaml(self, name: str, replica: str, *, dialect: str = "generic",
                     max_concurrency: int = 4) -> str:
        """The ``helpdesks:`` entry (indented for ``ticketing.helpdesks``) that sends
        to this double; ``replica`` goes into a header so the journal says who sent."""
        lines = [f"    {name}:", "      type: webhook", f"      max_concurrency: {max_concurrency}",
                 "      min_priority: P4",
                 f"      headers: {{X-Patrol-Replica: {replica}}}"]
        if dialect == "pagerduty":
            lines += ["      preset: pagerduty",
                      "      routing_key: 0123456789abcdef0123456789abcdef",
                      f"      url: {self.url}/v2/enqueue"]
        else:
            lines += [f"      url: {self.url}/hook", f"      template: {GENERIC_TEMPLATE}"]
        return "\n".join(lines) + "\n"
