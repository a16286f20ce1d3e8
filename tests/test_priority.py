"""Priority (severity x tier x scope x urgency), SLA dates and the SLA watchdog."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from patrol.collector.model import Priority, Ticket, TicketStatus
from patrol.collector.policy.priority import (
    Decision,
    Escalation,
    prioritize,
    projected_full,
    sla,
    sla_watch,
    time_until_full,
)
from patrol.collector.policy.settings import PolicyConfig, PriorityConfig, SlaConfig
from patrol.contract.wire import MeasurementValue

P1, P2, P3, P4 = Priority.P1, Priority.P2, Priority.P3, Priority.P4
T0 = 1698400800.0  # 2023-10-27T10:00:00Z

PRIORITIES = [
    # severity, tier, scope, urgency seconds -> priority, reason
    ("critical", "critical", 1, None, P1, "critical on a critical-tier host"),
    ("critical", "standard", 1, None, P2, "critical on a standard-tier host"),
    ("critical", "dev", 1, None, P3, "critical on a dev-tier host"),
    ("critical", None, 1, None, P2,
     "critical on a host without a tier label (treated as standard)"),
    ("critical", "gold", 1, None, P2, "critical on a gold-tier host (treated as standard)"),
    ("warning", "critical", 1, None, P3, "warning on a critical-tier host"),
    ("warning", "standard", 1, None, P3, "warning on a standard-tier host"),
    ("warning", "dev", 1, None, P4, "warning on a dev-tier host"),
    ("error", "critical", 1, None, P2, "error on a critical-tier host"),
    ("error", "standard", 1, None, P3, "error on a standard-tier host"),
    ("error", "dev", 1, None, P4, "error on a dev-tier host"),
    ("warning", "standard", 2, None, P3, "warning on a standard-tier host; 2 hosts affected"),
    ("warning", "standard", 3, None, P2,
     "warning on a standard-tier host; 3 hosts affected (+1)"),
    ("warning", "dev", 10, None, P2, "warning on a dev-tier host; 10 hosts affected (+2)"),
    ("critical", "critical", 12, None, P1,
     "critical on a critical-tier host; 12 hosts affected (+2)"),
    ("warning", "standard", 1, 7200, P2, "warning on a standard-tier host; disk full in ~2h (+1)"),
    ("warning", "standard", 1, 14400, P3, "warning on a standard-tier host"),
    ("warning", "dev", 1, 2400, P2,
     "warning on a dev-tier host; disk full in ~40m (+1, at least P2)"),
    ("critical", "critical", 4, 7200, P1,
     "critical on a critical-tier host; 4 hosts affected (+1); disk full in ~2h (+1)"),
    ("warning", "dev", 3, 600, P2,
     "warning on a dev-tier host; 3 hosts affected (+1); disk full in ~10m (+1, at least P2)"),
]


@pytest.mark.parametrize(
    ("severity", "tier", "scope", "urgency", "priority", "reason"), PRIORITIES,
    ids=[f"{s}-{t}-x{n}-{u}s" for s, t, n, u, _, _ in PRIORITIES])
def test_prioritize(severity: str, tier: str | None, scope: int, urgency: float | None,
                    priority: Priority, reason: str) -> None:
    decision = prioritize(severity, tier, scope, urgency, PriorityConfig(), resource="disk")
    assert decision == Decision(priority, reason)


def test_prioritize_follows_the_configured_table() -> None:
    config = PriorityConfig.model_validate({
        "base": {"critical": {"prod": "P1"}, "error": {"prod": "P2"},
                 "warning": {"prod": "P2"}, "info": {"prod": "P4"}},
        "default_tier": "prod", "scope_steps": [2], "urgency_raise_below": "30m"})
    assert prioritize("warning", None, 2, 3600, config) == Decision(
        P1, "warning on a host without a tier label (treated as prod); 2 hosts affected (+1)")
    assert prioritize("warning", "prod", 1, 1200, config, resource="swap") == Decision(
        P1, "warning on a prod-tier host; swap full in ~20m (+1, at least P2)")


SAMPLES = [
    ([], None),
    ([(T0, 0.5)], None),
    ([(T0, 0.5), (T0, 0.6)], None),
    ([(T0, 0.5), (T0 + 3600, 0.6)], 14400.0),
    ([(T0 + 3600, 0.6), (T0, 0.5)], 14400.0),
    ([(T0, 0.5), (T0 + 600, 0.52), (T0 + 1200, 0.53)], 18800.0),
    ([(T0, 0.6), (T0 + 3600, 0.5)], None),
    ([(T0, 0.6), (T0 + 3600, 0.6)], None),
    ([(T0, 0.9), (T0 + 60, 1.0)], 0.0),
    ([(T0, 0.99), (T0 + 60, 1.01)], 0.0),
]


@pytest.mark.parametrize(("samples", "expected"), SAMPLES, ids=[
    "no-samples", "one-sample", "one-time", "two-samples", "unsorted",
    "least-squares-of-three", "shrinking", "flat", "just-full", "over-full"])
def test_time_until_full(samples: list[tuple[float, float]], expected: float | None) -> None:
    result = time_until_full(samples)
    assert result == (None if expected is None else pytest.approx(expected))


def test_projected_full_prefers_the_checks_own_estimate_and_takes_the_soonest() -> None:
    measurements = [MeasurementValue(name="used_ratio", value=0.9, item="/"),
                    MeasurementValue(name="full_in_seconds", value=7200, item="/"),
                    MeasurementValue(name="full_in_seconds", value=5400, item="/var")]
    assert projected_full(measurements, [[(T0, 0.5), (T0 + 60, 0.9)]]) == 5400
    assert projected_full([{"name": "full_in_seconds", "value": 60.0}]) == 60.0
    assert projected_full([{"name": "used_ratio", "value": 0.6}],
                          [[(T0, 0.5), (T0 + 3600, 0.6)]]) == pytest.approx(14400)
    assert projected_full([]) is None


def test_projected_full_from_series_takes_the_soonest_growing_one() -> None:
    assert projected_full([], [
        [(T0, 0.5), (T0 + 3600, 0.6)],      # full in 4 h
        [(T0, 0.7), (T0 + 3600, 0.9)],      # full in 30 min
        [(T0, 0.9), (T0 + 3600, 0.9)],      # static: never
    ]) == pytest.approx(1800)
    assert projected_full([], [[(T0, 0.9), (T0 + 3600, 0.8)]]) is None


@pytest.mark.parametrize(("priority", "respond", "resolve"), [
    (P1, 900, 4 * 3600), (P2, 1800, 86400), (P3, 3600, 3 * 86400), (P4, 86400, 7 * 86400),
], ids=["P1-15m-4h", "P2-30m-24h", "P3-1h-72h", "P4-24h-7d"])
def test_sla_defaults_follow_domain_table(priority: Priority, respond: float,
                                          resolve: float) -> None:
    assert sla(priority, T0, SlaConfig()) == (T0 + respond, T0 + resolve)


def test_sla_targets_are_configurable_with_duration_strings() -> None:
    config = SlaConfig.model_validate({
        "respond": {"P1": "10m", "P2": "1h", "P3": "4h", "P4": "2d"},
        "resolve": {"P1": "2h", "P2": "1d", "P3": "1w", "P4": "1h30m"}})
    assert sla(P1, T0, config) == (T0 + 600, T0 + 7200)
    assert sla(P4, T0, config) == (T0 + 172800, T0 + 5400)


def _ticket(**changes: object) -> Ticket:
    fields: dict[str, object] = dict(
        dedup_key="db-01/var-disk", title="/var is 96.2% full on db-01", host="db-01",
        check="var-disk", check_type="disk", severity="critical", priority=P1,
        status=TicketStatus.NEW, category="capacity", opened_at=T0, first_seen=T0,
        last_seen=T0, respond_by=T0 + 900, resolve_by=T0 + 14400, id=7)
    fields.update(changes)
    return Ticket(**fields)  # type: ignore[arg-type]


RESPOND_BY, RESOLVE_BY = "2023-10-27T10:15:00Z", "2023-10-27T14:00:00Z"
WATCH = [
    ("before-respond-near", {}, 700, []),
    ("respond-near-at-80pct", {}, 720,
     [(1, "respond", f"respond-by {RESPOND_BY} is near (3m left); not acknowledged yet")]),
    ("respond-near-recorded", {"escalation": 1}, 800, []),
    ("respond-passed-skips-near", {}, 1000,
     [(2, "respond", f"respond-by {RESPOND_BY} passed 2m ago; not acknowledged yet")]),
    ("respond-passed-after-near", {"escalation": 1}, 1000,
     [(2, "respond", f"respond-by {RESPOND_BY} passed 2m ago; not acknowledged yet")]),
    ("acknowledged-no-respond-levels", {"acknowledged_at": T0 + 60}, 1000, []),
    ("in-progress-resolve-near", {"status": TicketStatus.IN_PROGRESS}, 12000,
     [(3, "resolve", f"resolve-by {RESOLVE_BY} is near (40m left); still open")]),
    ("never-acknowledged-both", {}, 12000,
     [(2, "respond", f"respond-by {RESPOND_BY} passed 3h ago; not acknowledged yet"),
      (3, "resolve", f"resolve-by {RESOLVE_BY} is near (40m left); still open")]),
    ("resolve-passed", {"escalation": 3, "status": TicketStatus.PENDING}, 15000,
     [(4, "resolve", f"resolve-by {RESOLVE_BY} passed 10m ago; still open")]),
    ("all-recorded", {"escalation": 4}, 90000, []),
    ("resolved-ticket", {"status": TicketStatus.RESOLVED}, 90000, []),
]


@pytest.mark.parametrize(("changes", "after", "expected"), [w[1:] for w in WATCH],
                         ids=[w[0] for w in WATCH])
def test_sla_watch(changes: dict[str, object], after: float,
                   expected: list[tuple[int, str, str]]) -> None:
    ticket = _ticket(**changes)
    due = {"respond": ticket.respond_by, "resolve": ticket.resolve_by}
    assert sla_watch(ticket, T0 + after, SlaConfig()) == [
        Escalation(7, level, deadline, due[deadline], text)
        for level, deadline, text in expected]


@pytest.mark.parametrize(("data", "message"), [
    ({"priority": {"scope_steps": [10, 3]}},
     "scope_steps: host counts of at least 2, strictly ascending"),
    ({"priority": {"base": {"critical": {"critical": "P1"}}}},
     "base: no row for severity error, warning, info"),
    ({"priority": {"base": {"critical": {"critical": "P5"}, "error": {}, "warning": {},
                            "info": {}}}}, "Input should be 'P1', 'P2', 'P3' or 'P4'"),
    ({"sla": {"respond": {"P1": "15m"}}}, "no target for P2, P3, P4"),
    ({"sla": {"near_ratio": 1.5}}, "Input should be less than 1"),
    ({"lifecycle": {"verify_for": "soon"}},
     "'soon' is not a duration; write it like 30s, 5m, 1h30m or 14d"),
    ({"lifecycle": {"verfy_for": "5m"}}, "Extra inputs are not permitted"),
    ({"categories": {"disk": "storage"}},
     "categories: 'disk' -> 'storage' is not one of hardware, software, network, "
     "configuration, performance, capacity, permission, security, consultation"),
], ids=["scope-order", "missing-severity", "bad-priority", "missing-sla", "near-ratio",
        "bad-duration", "typo", "unknown-category"])
def test_policy_config_errors(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PolicyConfig.model_validate(data)
    assert message in str(caught.value)


def test_policy_config_defaults() -> None:
    config = PolicyConfig()
    assert (config.lifecycle.verify_for, config.lifecycle.close_after,
            config.lifecycle.reopen_window) == (300, 86400, 86400)
    assert (config.lifecycle.flap_changes, config.lifecycle.flap_window) == (4, 1800)
    assert (config.grouping.label, config.grouping.window, config.grouping.min_hosts) == (
        "role", 600, 3)
    assert config.sla.near_ratio == 0.8
