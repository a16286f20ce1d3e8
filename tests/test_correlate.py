"""The decision for an incoming event, grouping, and categories: table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from patrol.collector.model import Priority, Ticket, TicketStatus
from patrol.collector.policy.categories import category_for
from patrol.collector.policy.correlate import decide, opens, priority_of
from patrol.collector.policy.grouping import (
    AddMember,
    CreateGroup,
    GroupView,
    JoinGroup,
    LeaveGroup,
    OpenGroup,
    group_decision,
    group_key,
    plan_group,
    plan_member_back,
    plan_regrade,
)
from patrol.collector.policy.lifecycle import (
    CancelRecovery,
    ChangeSeverity,
    Close,
    FlapAnnotate,
    Ignore,
    MarkRecovering,
    OpenTicket,
    Reopen,
    Repeat,
    StateChanges,
    Suppress,
)
from patrol.collector.policy.settings import LifecycleConfig, PolicyConfig
from patrol.contract.wire import AgentRef, Event, MeasurementSeries, MeasurementValue

P1, P2, P3, P4 = Priority.P1, Priority.P2, Priority.P3, Priority.P4
T0 = 1698400800.0  # 2023-10-27T10:00:00Z, when the ticket was opened
NOW = T0 + 10000.0
SUMMARY = "/var is 96.2% full on db-01 (critical at 95%)"
CONFIG = PolicyConfig()


def _event(action: str = "trigger", severity: str = "critical", status: str = "CRITICAL",
           host: str = "db-01", **changes: Any) -> Event:
    fields: dict[str, Any] = dict(
        event_id="evt-00000001", dedup_key=f"{host}/var-disk", action=action,
        severity=severity, status=status, summary=SUMMARY, source=host, check="var-disk",
        type="disk", labels={"tier": "critical", "role": "db"},
        measurements=[MeasurementValue(name="used_ratio", value=0.962, item="/var")],
        observed_at=datetime.fromtimestamp(NOW - 3, UTC),
        agent=AgentRef(id=host, version="0.1.0"), sequence=1)
    fields.update(changes)
    return Event(**fields)


def _ticket(**changes: Any) -> Ticket:
    fields: dict[str, Any] = dict(
        dedup_key="db-01/var-disk", title=SUMMARY, host="db-01", check="var-disk",
        check_type="disk", severity="critical", priority=P1, status=TicketStatus.NEW,
        category="capacity", opened_at=T0, first_seen=T0, last_seen=T0, respond_by=T0 + 900,
        resolve_by=T0 + 14400, id=7)
    fields.update(changes)
    return Ticket(**fields)


RESOLVED_1H = dict(status=TicketStatus.RESOLVED, resolved_at=NOW - 3600)
CLOSED_25H = dict(status=TicketStatus.CLOSED, resolved_at=NOW - 25 * 3600,
                  closed_at=NOW - 3600)
REOPEN_1H = Reopen(7, NOW, f"failed again 1h after it was resolved: {SUMMARY}", "critical", P1,
                   NOW + 900, NOW + 14400)
FIRST_CHANGE = StateChanges(7, (NOW,), False)
FLAPS = (NOW - 1500, NOW - 1000, NOW - 500)
WIDE_REOPEN = PolicyConfig(lifecycle=LifecycleConfig(reopen_window=48 * 3600))
SHORT_REOPEN = PolicyConfig(lifecycle=LifecycleConfig(reopen_window=3600 - 1))

# id, event, active, latest, config, in maintenance -> actions
DECISIONS: list[tuple[str, Event, Ticket | None, Ticket | None, PolicyConfig, bool, list[Any]]] = [
    ("repeat-counts-only", _event(), _ticket(), _ticket(), CONFIG, False,
     [Repeat(7, NOW, "CRITICAL")]),
    ("repeat-on-acknowledged", _event(), _ticket(status=TicketStatus.IN_PROGRESS), None,
     CONFIG, False, [Repeat(7, NOW, "CRITICAL")]),
    ("severity-up-reprioritizes", _event(),
     _ticket(severity="warning", priority=P3, respond_by=T0 + 3600, resolve_by=T0 + 259200),
     None, CONFIG, False,
     [Repeat(7, NOW, "CRITICAL"),
      ChangeSeverity(7, "warning", "critical", P3, P1, T0 + 900, T0 + 14400,
                     "critical on a critical-tier host")]),
    ("severity-down-reprioritizes", _event(severity="warning", status="WARNING"), _ticket(),
     None, CONFIG, False,
     [Repeat(7, NOW, "WARNING"),
      ChangeSeverity(7, "critical", "warning", P1, P3, T0 + 3600, T0 + 259200,
                     "warning on a critical-tier host")]),
    ("fails-while-recovering-stays-open", _event(), _ticket(recovered_at=NOW - 120), None,
     CONFIG, False, [Repeat(7, NOW, "CRITICAL"), CancelRecovery(7, NOW), FIRST_CHANGE]),
    ("fourth-change-starts-flapping", _event(),
     _ticket(recovered_at=NOW - 120, state_changes=[NOW - 2000, *FLAPS]), None, CONFIG, False,
     [Repeat(7, NOW, "CRITICAL"), CancelRecovery(7, NOW),
      StateChanges(7, (*FLAPS, NOW), True), FlapAnnotate(7, 4, 1800)]),
    ("change-exactly-a-window-ago-does-not-count", _event(),
     _ticket(recovered_at=NOW - 120, state_changes=[NOW - 1800, NOW - 1000, NOW - 500]), None,
     CONFIG, False,
     [Repeat(7, NOW, "CRITICAL"), CancelRecovery(7, NOW),
      StateChanges(7, (NOW - 1000, NOW - 500, NOW), False)]),
    ("already-flapping-not-annotated-again", _event(),
     _ticket(recovered_at=NOW - 120, state_changes=list(FLAPS), flapping=True), None,
     CONFIG, False,
     [Repeat(7, NOW, "CRITICAL"), CancelRecovery(7, NOW), StateChanges(7, (*FLAPS, NOW), True)]),
    ("reopens-resolved-within-window", _event(), _ticket(**RESOLVED_1H), None, CONFIG, False,
     [REOPEN_1H, FIRST_CHANGE]),
    ("reopens-at-window-boundary", _event(),
     _ticket(status=TicketStatus.RESOLVED, resolved_at=NOW - 86400), None, CONFIG, False,
     [Reopen(7, NOW, f"failed again 24h after it was resolved: {SUMMARY}", "critical", P1,
             NOW + 900, NOW + 14400), FIRST_CHANGE]),
    ("reopens-closed-within-wider-window", _event(), None, _ticket(**CLOSED_25H),
     WIDE_REOPEN, False,
     [Reopen(7, NOW, f"failed again 25h after it was resolved: {SUMMARY}", "critical", P1,
             NOW + 900, NOW + 14400), FIRST_CHANGE]),
    ("reopens-closed-without-resolve", _event(), None,
     _ticket(status=TicketStatus.CLOSED, closed_at=NOW - 3600), CONFIG, False,
     [REOPEN_1H, FIRST_CHANGE]),
    ("maintenance-suppresses-reopen", _event(), _ticket(**RESOLVED_1H), None, CONFIG, True,
     [Suppress("db-01/var-disk is in a maintenance window (patch-night)")]),
    ("maintenance-suppresses-new", _event(), None, None, CONFIG, True,
     [Suppress("db-01/var-disk is in a maintenance window (patch-night)")]),
    ("maintenance-still-counts-open", _event(), _ticket(), None, CONFIG, True,
     [Repeat(7, NOW, "CRITICAL")]),
    ("resolve-starts-verification", _event("resolve", "info", "OK"), _ticket(), None, CONFIG,
     False, [MarkRecovering(7, NOW), FIRST_CHANGE]),
    ("resolve-in-maintenance-still-recovers", _event("resolve", "info", "OK"), _ticket(),
     None, CONFIG, True, [MarkRecovering(7, NOW), FIRST_CHANGE]),
    ("resolve-while-recovering", _event("resolve", "info", "OK"),
     _ticket(recovered_at=NOW - 120), None, CONFIG, False,
     [Ignore("db-01/var-disk is already recovering (2m so far)")]),
    ("resolve-unknown-incident", _event("resolve", "info", "OK"), None, None, CONFIG, False,
     [Ignore("resolve for db-01/var-disk, which has no open ticket")]),
    ("resolve-for-resolved-ticket", _event("resolve", "info", "OK"), _ticket(**RESOLVED_1H),
     None, CONFIG, False, [Ignore("resolve for db-01/var-disk, which has no open ticket")]),
]


@pytest.mark.parametrize(("event", "active", "latest", "config", "maintenance", "expected"),
                         [d[1:] for d in DECISIONS], ids=[d[0] for d in DECISIONS])
def test_decide(event: Event, active: Ticket | None, latest: Ticket | None,
                config: PolicyConfig, maintenance: bool, expected: list[Any]) -> None:
    assert decide(event, active, latest, NOW, config, maintenance,
                  windows=["patch-night"]) == expected


def test_new_incident_opens_a_complete_ticket() -> None:
    event = _event(runbook="https://wiki.example.com/disk", diagnostics={"host": {"os": "x"}})
    [action] = decide(event, None, None, NOW, CONFIG)
    assert action == OpenTicket(Ticket(
        dedup_key="db-01/var-disk", title=SUMMARY, host="db-01", check="var-disk",
        check_type="disk", severity="critical", priority=P1, status=TicketStatus.NEW,
        category="capacity", opened_at=NOW, first_seen=NOW - 3, last_seen=NOW,
        respond_by=NOW + 900, resolve_by=NOW + 14400,
        labels={"tier": "critical", "role": "db"}, check_status="CRITICAL",
        runbook="https://wiki.example.com/disk",
        measurements=[{"name": "used_ratio", "value": 0.962, "item": "/var"}],
        diagnostics={"host": {"os": "x"}}), "critical on a critical-tier host")
    assert action.link_previous_id is None


@pytest.mark.parametrize(("active", "latest", "config", "expected_first"), [
    (None, _ticket(**CLOSED_25H), CONFIG, []),
    (_ticket(status=TicketStatus.RESOLVED, resolved_at=NOW - 3600), None, SHORT_REOPEN,
     [Close(7, NOW, "superseded by a new ticket for the same problem")]),
], ids=["after-closed-ticket", "resolved-but-window-over-closes-it-first"])
def test_breach_after_reopen_window_opens_new_ticket_linking_old(
        active: Ticket | None, latest: Ticket | None, config: PolicyConfig,
        expected_first: list[Any]) -> None:
    actions = decide(_event(), active, latest, NOW, config)
    assert actions[:-1] == expected_first
    opened = actions[-1]
    assert isinstance(opened, OpenTicket)
    assert (opened.link_previous_id, opened.ticket.status, opened.ticket.opened_at) == (
        7, TicketStatus.NEW, NOW)


FULL_SOON = [MeasurementValue(name="full_in_seconds", value=2400, item="/var")]
# /var grew from 89 % to 91 % in the last 30 minutes: full in ~2h at that pace.
FILLING = [MeasurementSeries(name="used_ratio", item="/var", points=[
    (NOW - 1800, 0.89), (NOW - 900, 0.90), (NOW, 0.91)])]
STATIC = [MeasurementSeries(name="used_ratio", item="/var", points=[
    (NOW - 1200, 0.97), (NOW - 600, 0.97), (NOW, 0.97)])]
PRIORITY_INPUTS = [
    ("capacity-urgency-from-event", _event(severity="warning", labels={"tier": "dev"},
                                           measurements=FULL_SOON), P2,
     "warning on a dev-tier host; disk full in ~40m (+1, at least P2)"),
    ("urgency-from-the-breach-series", _event(severity="warning", labels={"tier": "dev"},
                                              history=FILLING), P3,
     "warning on a dev-tier host; disk full in ~2h (+1)"),
    ("the-checks-own-estimate-wins", _event(severity="warning", labels={"tier": "dev"},
                                            measurements=FULL_SOON, history=FILLING), P2,
     "warning on a dev-tier host; disk full in ~40m (+1, at least P2)"),
    ("full-but-static-is-not-urgent", _event(severity="warning", labels={"tier": "dev"},
                                             history=STATIC), P4,
     "warning on a dev-tier host"),
    ("urgency-ignored-outside-capacity",
     _event(severity="warning", labels={"tier": "dev"}, type="http", measurements=FULL_SOON,
            history=FILLING), P4, "warning on a dev-tier host"),
]


@pytest.mark.parametrize(("event", "priority", "reason"),
                         [p[1:] for p in PRIORITY_INPUTS], ids=[p[0] for p in PRIORITY_INPUTS])
def test_priority_of_event(event: Event, priority: Priority, reason: str) -> None:
    decision = priority_of(event, CONFIG)
    assert (decision.priority, decision.reason) == (priority, reason)
    [opened] = decide(event, None, None, NOW, CONFIG)
    assert isinstance(opened, OpenTicket)
    assert (opened.ticket.priority, opened.reason) == (priority, reason)


def test_a_group_tickets_priority_counts_its_hosts() -> None:
    decision = priority_of(_event(severity="warning", labels={}), CONFIG, scope=4)
    assert (decision.priority, decision.reason) == (P2, (
        "warning on a host without a tier label (treated as standard); "
        "4 hosts affected (+1)"))


def _firing(host: str, role: str, first_seen: float) -> tuple[str, dict[str, str], float]:
    return host, {"role": role, "tier": "standard"}, first_seen


DB_HOSTS = [_firing("db-02", "db", NOW - 300), _firing("db-03", "db", NOW - 60)]
GROUPS = [
    ("three-hosts-of-a-role", _event(), DB_HOSTS, {}, OpenGroup(
        "group:role=db/var-disk", "var-disk failing on 3 hosts with role=db", "var-disk",
        "disk", "critical", "role", "db", ("db-01", "db-02", "db-03"))),
    ("two-hosts-not-enough", _event(), DB_HOSTS[:1], {}, None),
    ("other-role-not-counted", _event(), [DB_HOSTS[0], _firing("web-01", "web", NOW)], {},
     None),
    ("outside-window-not-counted", _event(),
     [DB_HOSTS[0], _firing("db-04", "db", NOW - 601)], {}, None),
    ("own-host-counted-once", _event(), [*DB_HOSTS[:1], _firing("db-01", "db", NOW)], {},
     None),
    ("no-group-label", _event(labels={"tier": "critical"}), DB_HOSTS, {}, None),
    ("resolve-never-groups", _event("resolve", "info", "OK"), DB_HOSTS, {}, None),
    ("custom-label-and-size", _event(labels={"rack": "r1"}),
     [("db-07", {"rack": "r1"}, NOW)], {"group_label": "rack", "min_hosts": 2}, OpenGroup(
         "group:rack=r1/var-disk", "var-disk failing on 2 hosts with rack=r1", "var-disk",
         "disk", "critical", "rack", "r1", ("db-01", "db-07"))),
    ("joins-open-parent", _event(host="db-09"), [],
     {"parent": _ticket(id=40, is_group=True, hosts=["db-01", "db-02", "db-03"])},
     JoinGroup(40, "db-09", ("db-01", "db-02", "db-03", "db-09"))),
    ("already-in-parent", _event(), [],
     {"parent": _ticket(id=40, is_group=True, hosts=["db-01", "db-02", "db-03"])}, None),
]


@pytest.mark.parametrize(("event", "firing", "options", "expected"), [g[1:] for g in GROUPS],
                         ids=[g[0] for g in GROUPS])
def test_group_decision(event: Event, firing: list[Any], options: dict[str, Any],
                        expected: Any) -> None:
    assert group_decision(event, firing, now=NOW, **options) == expected


def test_group_window_defaults_to_the_events_observation_time() -> None:
    event = _event(observed_at=datetime.fromtimestamp(NOW - 3000, UTC))
    assert group_decision(event, DB_HOSTS) is None
    assert group_decision(event, [_firing("db-02", "db", NOW - 3500),
                                  _firing("db-03", "db", NOW - 2500)]) is not None
    assert group_key("var-disk", "role", "db") == "group:role=db/var-disk"


def _member(host: str, ticket_id: int, first_seen: float = NOW - 60, **changes: Any
            ) -> Ticket:
    return _ticket(dedup_key=f"{host}/var-disk", host=host, id=ticket_id,
                   first_seen=first_seen, labels={"tier": "critical", "role": "db"},
                   **changes)


def test_plan_group_creates_the_parent_with_the_members_that_fit() -> None:
    firing = [_member("db-01", 1), _member("db-02", 2), _member("db-03", 3, NOW - 300),
              _member("db-04", 4, NOW - 900), _member("web-01", 5) ]
    firing[4].labels = {"role": "web"}
    [create] = plan_group(_event(), firing[0], firing, None, CONFIG, NOW)
    assert isinstance(create, CreateGroup)
    assert [m.id for m in create.members] == [1, 2, 3]
    parent = create.parent
    assert (parent.title, parent.hosts, parent.host, parent.is_group) == (
        "var-disk failing on 3 hosts with role=db", ["db-01", "db-02", "db-03"],
        "db-01,db-02,db-03", True)
    assert (parent.priority, parent.first_seen, parent.labels) == (
        P1, NOW - 300, {"role": "db"})
    assert create.reason == "critical on a critical-tier host; 3 hosts affected (+1)"


@pytest.mark.parametrize(("hosts", "priority"), [(3, None), (9, P1)],
                         ids=["same-priority", "scope-raises-it"])
def test_plan_group_adds_a_member_to_the_open_parent(hosts: int,
                                                     priority: Priority | None) -> None:
    names = [f"db-{n:02d}" for n in range(1, hosts + 1)]
    parent = _ticket(id=40, is_group=True, hosts=names, priority=P1 if priority is None
                     else P2, labels={"role": "db"}, dedup_key=group_key("var-disk", "role",
                                                                         "db"))
    event = _event(host="db-99", severity="warning", status="WARNING")
    [add] = plan_group(event, _member("db-99", 99), [], parent, CONFIG, NOW)
    assert isinstance(add, AddMember)
    assert (add.parent_id, add.member.id, add.hosts[-1], add.priority) == (
        40, 99, "db-99", priority)
    assert add.title == f"var-disk failing on {hosts + 1} hosts with role=db"


@pytest.mark.parametrize(("parent_status", "expected"), [
    (TicketStatus.IN_PROGRESS, []),
    (TicketStatus.RESOLVED, [Reopen(40, NOW, f"db-02 failed again: {SUMMARY}", "critical",
                                    P1, NOW + 900, NOW + 14400)]),
    (TicketStatus.CLOSED, [LeaveGroup(2, "TS20231027004")]),
], ids=["parent-open", "parent-resolved-reopens", "parent-closed-member-leaves"])
def test_plan_member_back(parent_status: TicketStatus, expected: list[Any]) -> None:
    parent = _ticket(id=40, is_group=True, number="TS20231027004", status=parent_status)
    member = _member("db-02", 2, parent_id=40)
    assert plan_member_back(member, parent, _event(host="db-02"), CONFIG, NOW) == expected


def test_plan_regrade_follows_the_worst_open_member() -> None:
    parent = _ticket(id=40, is_group=True, severity="warning", priority=P2,
                     hosts=["db-01", "db-02", "db-03"])
    members = [_member("db-01", 1, severity="warning"), _member("db-02", 2),
               _member("db-03", 3, severity="warning")]
    [change] = plan_regrade(parent, members, _event(host="db-02"), CONFIG)
    assert (change.old, change.new, change.old_priority, change.new_priority) == (
        "warning", "critical", P2, P1)
    assert (change.respond_by, change.resolve_by) == (T0 + 900, T0 + 14400)
    members[1].recovered_at = NOW  # the critical one is recovering: warning again
    parent.severity = "critical"
    [back] = plan_regrade(parent, members, _event(host="db-02"), CONFIG)
    assert back.new == "warning"
    parent.severity = "warning"
    assert plan_regrade(parent, members, _event(host="db-02"), CONFIG) == []


# -- grouping inside decide(): the steps come back in applying order ------------------


@pytest.mark.parametrize(("event", "active", "latest"), [
    (_event(), None, None),
    (_event(), _ticket(), _ticket()),
    (_event(), None, _ticket(**RESOLVED_1H)),
    (_event(), None, _ticket(**CLOSED_25H)),
    (_event("resolve", "info", "OK"), _ticket(), _ticket()),
], ids=["first-failure", "open-ticket-repeats", "resolved-reopens", "closed-long-ago-opens",
        "resolve"])
def test_opens_says_beforehand_whether_decide_opens_a_ticket(
        event: Event, active: Ticket | None, latest: Ticket | None) -> None:
    """The engine reads a group's tickets only when the event opens one: what
    ``opens`` answers must be what ``decide`` then does."""
    steps = decide(event, active, latest, NOW, CONFIG)
    assert opens(event, active, latest, NOW, CONFIG) is any(
        isinstance(s, OpenTicket) for s in steps)


def test_decide_opens_the_ticket_then_the_group_it_completes() -> None:
    firing = (_member("db-02", 2, NOW - 300), _member("db-03", 3))
    steps = decide(_event(), None, None, NOW, CONFIG, group=GroupView(firing=firing))
    opened, create = steps
    assert isinstance(opened, OpenTicket) and isinstance(create, CreateGroup)
    # The ticket being opened has no id yet: it is linked last, as the newest.
    assert [(m.host, m.id) for m in create.members] == [
        ("db-02", 2), ("db-03", 3), ("db-01", None)]
    assert create.members[-1] is opened.ticket
    assert create.parent.hosts == ["db-01", "db-02", "db-03"]
    assert decide(_event(), None, None, NOW, CONFIG) == [opened]  # no group read: none


def test_decide_joins_the_open_group_ticket() -> None:
    parent = _ticket(id=40, is_group=True, hosts=["db-02", "db-03", "db-04"],
                     labels={"role": "db"}, dedup_key=group_key("var-disk", "role", "db"))
    opened, add = decide(_event(), None, None, NOW, CONFIG,
                         group=GroupView(open_group=parent))
    assert isinstance(opened, OpenTicket) and isinstance(add, AddMember)
    assert (add.parent_id, add.member, add.hosts) == (
        40, opened.ticket, ("db-02", "db-03", "db-04", "db-01"))


def test_decide_reopens_the_resolved_group_ticket_before_its_member() -> None:
    member = _member("db-01", 7, parent_id=40, **RESOLVED_1H)
    parent = _ticket(id=40, is_group=True, status=TicketStatus.RESOLVED,
                     resolved_at=NOW - 3600)
    steps = decide(_event(), None, member, NOW, CONFIG, group=GroupView(parent=parent))
    assert [(type(s).__name__, getattr(s, "ticket_id", None)) for s in steps] == [
        ("Reopen", 40), ("Reopen", 7), ("StateChanges", 7)]


def test_decide_regrades_the_group_when_a_members_severity_changes() -> None:
    """db-01 was warning and recovering; its critical failure cancels the recovery, so
    the group counts it as failing critical."""
    parent = _ticket(id=40, is_group=True, severity="warning", priority=P2,
                     hosts=["db-01", "db-02", "db-03"])
    member = _member("db-01", 1, severity="warning", priority=P2, parent_id=40,
                     recovered_at=NOW - 60)
    members = (member, _member("db-02", 2, severity="warning"),
               _member("db-03", 3, severity="warning"))
    steps = decide(_event(), member, member, NOW, CONFIG,
                   group=GroupView(parent=parent, members=members))
    changes = [s for s in steps if isinstance(s, ChangeSeverity)]
    assert [(c.ticket_id, c.old, c.new) for c in changes] == [
        (1, "warning", "critical"), (40, "warning", "critical")]
    assert member.severity == "warning" and member.recovered_at == NOW - 60  # inputs kept


@pytest.mark.parametrize(("check_type", "labels", "overrides", "category"), [
    ("cpu", {}, {}, "performance"), ("load", {}, {}, "performance"),
    ("memory", {}, {}, "capacity"), ("swap", {}, {}, "capacity"), ("disk", {}, {}, "capacity"),
    ("postgres", {}, {}, "software"), ("mysql", {}, {}, "software"),
    ("redis", {}, {}, "software"), ("tcp", {}, {}, "network"), ("http", {}, {}, "software"),
    ("tls_cert", {}, {}, "security"), ("file", {}, {}, "configuration"),
    ("heartbeat", {}, {}, "network"), ("my_plugin", {}, {}, "software"),
    ("http", {}, {"http": "network"}, "network"),
    ("http", {"category": "security"}, {"http": "network"}, "security"),
    ("disk", {"category": "storage"}, {}, "capacity"),
], ids=lambda v: str(v) if isinstance(v, str) else None)
def test_category_for(check_type: str, labels: dict[str, str], overrides: dict[str, str],
                      category: str) -> None:
    assert category_for(check_type, labels, overrides) == category
