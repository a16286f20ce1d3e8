"""A collector on a fake clock that delivers to the helpdesk double in its own process:
for the calendar parts of the replayed week (days of cron runs, SLA deadlines hours
away), which no real process could live through in a test.

The engine, watchdog, dispatch outbox and webhook adapter are the real ones; only
time is the test's (tests/collector_fixtures.py ``Clock``). Everything from outside
arrives through the collector's public HTTP API (FastAPI's TestClient over
``create_app``), so what is asserted at the helpdesk is what a team would have seen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import yaml
from fastapi.testclient import TestClient

from patrol.collector.dispatch.dispatcher import Dispatcher, fingerprint
from patrol.collector.dispatch.routing import Route, TicketingSettings
from patrol.collector.engine import Engine
from patrol.collector.ingest.api import create_app
from patrol.collector.policy.settings import PolicyConfig
from patrol.collector.watchdog.timers import Watchdog
from patrol.contract.wire import Heartbeat
from patrol.ticketing_bridge.webhook import Webhook
from tests.collector_fixtures import AGENT_TOKEN, OPERATOR_TOKEN, World
from tests.helpdesk_double_process import GENERIC_TEMPLATE, HelpdeskDouble

GROUP_HOLD = 10.0
AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


class WeekWorld(World):
    """A World whose tickets go to ``double`` through the webhook adapter, and whose
    inputs go through the public API."""

    def __init__(self, store: Any, double: HelpdeskDouble,
                 policy: PolicyConfig | None = None) -> None:
        super().__init__(store, policy)
        self.policy = policy or PolicyConfig()
        self.double = double
        self.every_step: list[Callable[[WeekWorld], None]] = []  # e.g. a host's heartbeat
        self._wire()

    def restart_collector(self) -> None:
        """A new engine, watchdog, dispatcher and API over the same store and clock:
        what a restarted collector process starts from (nothing in memory survives)."""
        self.close()
        self.engine = Engine(self.store, self.policy, clock=self.clock)
        self.watchdog = Watchdog(self.engine)
        self._wire()

    def _wire(self) -> None:
        """The engine's watchdog, a dispatcher delivering to the double through the real
        webhook adapter, and the HTTP API over this engine."""
        double = self.double
        store = self.store
        self.engine.watchdog = self.watchdog
        config = Webhook.Config.model_validate({
            "type": "webhook", "url": f"{double.url}/hook",
            "template": yaml.safe_load(GENERIC_TEMPLATE)})
        settings = TicketingSettings(helpdesks={"desk": {"type": "webhook"}},
                                     group_hold=GROUP_HOLD, routes=[Route(helpdesk="desk")])
        self.engine.dispatcher = Dispatcher(store, settings, {"desk": Webhook(config, "desk")},
                                            {"desk": 4}, self.clock)
        self.api = TestClient(create_app(self.engine, [AGENT_TOKEN], [OPERATOR_TOKEN]))

    def close(self) -> None:
        self.api.close()
        self.engine.dispatcher.close()

    # -- inputs, through the API ------------------------------------------------------------

    def post(self, path: str, body: Any, operator: bool = False, expect: int = 202) -> Any:
        response = self.api.post(path, json=body, headers=OPERATOR if operator else AGENT)
        assert response.status_code == expect, (path, response.status_code, response.text)
        return response.json()

    def beat(self, beat: Heartbeat) -> None:
        self.post("/api/v1/heartbeats", beat.model_dump(mode="json"))

    # -- time --------------------------------------------------------------------------------

    def deliver(self) -> None:
        """Everything due at the helpdesk now (held group opens included)."""
        while self.engine.dispatcher.run_once():
            pass

    def live(self, seconds: float, step: float) -> None:
        """Let ``seconds`` pass in steps: a watchdog pass and a delivery after each, and
        before each what ``every_step`` does (hosts that keep heartbeating)."""
        end = self.clock() + seconds
        while self.clock() < end:
            for task in self.every_step:
                task(self)
            self.tick(min(step, end - self.clock()))
            self.deliver()

    # -- the helpdesk's side -------------------------------------------------------------------

    def fingerprints(self) -> dict[str, Any]:
        """Helpdesk fingerprint -> Patrol ticket, for every ticket Patrol has."""
        return {fingerprint(t): t for t in self.store.list_tickets()}

    def requests_by_ticket(self) -> dict[str, Counter[str]]:
        """Per Patrol ticket number, how many requests of each action the helpdesk
        RECEIVED (every journaled request, replays included: a replay is a second
        delivery even if the helpdesk deduplicated it)."""
        tickets = self.fingerprints()
        out: dict[str, Counter[str]] = {}
        for entry in self.double.entries():
            ticket = tickets.get(entry["fingerprint"])
            assert ticket is not None, f"the helpdesk got a request for no ticket: {entry}"
            out.setdefault(ticket.number, Counter())[entry["action"]] += 1
        return out

    def escalation_comments(self) -> dict[str, list[str]]:
        """Per Patrol ticket number, the escalation comments the helpdesk received."""
        tickets = self.fingerprints()
        out: dict[str, list[str]] = {}
        for entry in self.double.entries():
            if entry["action"] == "comment" and entry["text"].startswith("Patrol escalation"):
                out.setdefault(tickets[entry["fingerprint"]].number, []).append(entry["text"])
        return out
