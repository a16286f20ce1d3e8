"""Settings of the collector's policy functions, with DOMAIN.md's defaults.

Every model forbids unknown keys (a typo is an error, never a silent default) and is
meant to be embedded in the collector config as is::

    policy:
      priority: {scope_steps: [3, 10], urgency_raise_below: 4h}
      sla: {respond: {P1: 15m}, near_ratio: 0.8}
      lifecycle: {verify_for: 5m, close_after: 24h, reopen_window: 24h}
      escalation: {bump_priority_on_breach: true, page: pagerduty}

Durations are seconds (float) or strings like ``"90s"``, ``"15m"``, ``"4h"``,
``"7d"``, ``"1h30m"``, parsed by the shared contract
(:func:`patrol.contract.units.parse_duration`) like every duration in the agent's config.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from patrol.collector.model import Priority
from patrol.collector.policy.categories import CATEGORIES, DEFAULT_CATEGORIES
from patrol.contract.units import parse_duration

Seconds = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _default_base() -> dict[str, dict[str, Priority]]:
    P1, P2, P3, P4 = Priority.P1, Priority.P2, Priority.P3, Priority.P4
    return {
        "critical": {"critical": P1, "standard": P2, "dev": P3},
        # UNKNOWN ("could not find out") ranks one level below a confirmed outage.
        "error": {"critical": P2, "standard": P3, "dev": P4},
        "warning": {"critical": P3, "standard": P3, "dev": P4},
        "info": {"critical": P4, "standard": P4, "dev": P4},
    }


class PriorityConfig(_Settings):
    """Severity x tier -> base priority, raised by impact scope and urgency.

    ``base`` is severity -> host tier -> priority. A host without a ``tier`` label, or
    with a tier the table does not name, is treated as ``default_tier``.
    ``scope_steps``: each step the number of affected hosts reaches raises one level.
    ``urgency_raise_below``: a projected time until full below it raises one level;
    ``urgency_p2_below``: below it the priority is at least P2.
    """

    base: dict[str, dict[str, Priority]] = Field(default_factory=_default_base)
    default_tier: str = "standard"
    scope_steps: tuple[int, ...] = (3, 10)
    urgency_raise_below: Seconds = 4 * 3600
    urgency_p2_below: Seconds = 3600

    @field_validator("base")
    @classmethod
    def _every_severity(cls, base: dict[str, dict[str, Priority]],
                        ) -> dict[str, dict[str, Priority]]:
        missing = [s for s in ("critical", "error", "warning", "info") if s not in base]
        if missing:
            raise ValueError(f"base: no row for severity {', '.join(missing)}")
        return base

    @field_validator("scope_steps")
    @classmethod
    def _ascending(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if list(steps) != sorted(set(steps)) or any(s < 2 for s in steps):
            raise ValueError("scope_steps: host counts of at least 2, strictly ascending")
        return steps


class SlaConfig(_Settings):
    """Respond and resolve targets per priority (DOMAIN.md) and when to escalate.

    ``near_ratio``: a deadline is "near" once this share of the time from opening to
    the deadline has elapsed (0.8: 12 min into a P1's 15-minute respond target).
    """

    respond: dict[Priority, Seconds] = Field(default_factory=lambda: dict[Priority, float]({
        Priority.P1: 900, Priority.P2: 1800, Priority.P3: 3600, Priority.P4: 86400}))
    resolve: dict[Priority, Seconds] = Field(default_factory=lambda: dict[Priority, float]({
        Priority.P1: 4 * 3600, Priority.P2: 86400, Priority.P3: 3 * 86400,
        Priority.P4: 7 * 86400}))
    near_ratio: float = Field(default=0.8, gt=0, lt=1)

    @field_validator("respond", "resolve")
    @classmethod
    def _every_priority(cls, table: dict[Priority, float]) -> dict[Priority, float]:
        missing = [p.value for p in Priority if p not in table]
        if missing:
            raise ValueError(f"no target for {', '.join(missing)}")
        return table


class LifecycleConfig(_Settings):
    """Verification, closing, reopening and flapping.

    ``verify_for``: the check must stay OK this long before the ticket is resolved.
    ``close_after``: a resolved ticket closes this long after it was resolved.
    ``reopen_window``: a breach at most this long after a ticket was resolved reopens
    it (whether it is still resolved or already closed); a later one opens a new
    ticket linking the old one.
    ``flap_changes`` state changes within ``flap_window`` make a ticket flapping;
    while flapping, verification takes ``verify_for * flap_verify_factor``.
    """

    verify_for: Seconds = 300
    close_after: Seconds = 86400
    reopen_window: Seconds = 86400
    flap_changes: int = Field(default=4, ge=2)
    flap_window: Seconds = 1800
    flap_verify_factor: float = Field(default=2.0, ge=1)


class GroupingConfig(_Settings):
    """The same check failing on ``min_hosts`` hosts sharing ``label``'s value within
    ``window`` becomes one parent ticket."""

    label: str = "role"
    window: Seconds = 600
    min_hosts: int = Field(default=3, ge=2)


class LivenessConfig(_Settings):
    """A host is lost after ``heartbeat_factor`` heartbeat intervals without one.

    A check whose agent announces when it runs next is stale once that time has passed
    by ``stale_grace``, or by ``stale_timeout_factor`` x the check's timeout when that
    is longer, plus a heartbeat interval (:func:`collector.policy.lifecycle.stale_checks`).
    For older agents, which announce only an interval, a check is stale when its last
    run is older than ``stale_factor`` of its intervals."""

    heartbeat_factor: float = Field(default=3.0, gt=1)
    stale_factor: float = Field(default=3.0, gt=1)
    stale_grace: Seconds = 60
    stale_timeout_factor: float = Field(default=3.0, ge=1)


class EscalationConfig(_Settings):
    """What an SLA escalation does besides the timeline entry and a comment on the
    ticket in its helpdesks (:mod:`collector.watchdog.escalate`).

    ``bump_priority_on_breach``: a passed respond-by or resolve-by raises the
    ticket's priority one level (never above P1); its SLA dates stay, since the
    deadline that was missed is the one the team committed to.
    ``page``: the name of a configured helpdesk (a webhook preset such as PagerDuty,
    DingTalk or Slack, or email) that hears of every escalation as its own
    notification; the ticket is opened there at its first escalation.
    ``page_from``: the first level paged: ``near`` (1, a deadline is near) or
    ``breach`` (only passed deadlines).
    """

    bump_priority_on_breach: bool = False
    page: str | None = Field(default=None, min_length=1)
    page_from: Literal["near", "breach"] = "near"


class PolicyConfig(_Settings):
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    priority: PriorityConfig = Field(default_factory=PriorityConfig)
    sla: SlaConfig = Field(default_factory=SlaConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    grouping: GroupingConfig = Field(default_factory=GroupingConfig)
    liveness: LivenessConfig = Field(default_factory=LivenessConfig)
    categories: dict[str, str] = Field(
        default_factory=dict,
        description=f"check type -> category, over the defaults {sorted(DEFAULT_CATEGORIES)}")

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, table: dict[str, str]) -> dict[str, str]:
        for check_type, category in table.items():
            if category not in CATEGORIES:
                raise ValueError(f"categories: {check_type!r} -> {category!r} is not one of "
                                 f"{', '.join(CATEGORIES)}")
        return table
