"""Scaled time for scenario tests that run real processes: every period that decides
WHEN something happens (check intervals, sustain times, heartbeats, SLA, verification,
grouping and staleness periods) is divided by one factor, so an hour of an operator's
day passes in a minute of real processes with every ratio between periods kept.

Why scaling the configuration rather than faking the clock: ``patrol up`` and
``patrol collector`` are real processes reading the real clock; the only honest lever
a test has over them is the configuration an operator could also write. What is NOT
scaled is how long real work takes (check ``timeout``, diagnostics budgets) and what
is calendar rather than period (a cron ``schedule:``, maintenance windows): those
stay as shipped, so a daily 07:00 inspection is judged exactly as in production.
"""

from __future__ import annotations

from typing import Any

from patrol.contract.units import parse_duration

# Keys whose value is a period between things happening, in the agent's config.
AGENT_PERIODS = frozenset({"interval", "heartbeat_interval", "for", "lookback"})
# Policy settings that are counts or ratios, not periods.
POLICY_NOT_PERIODS = frozenset({"near_ratio", "flap_changes", "min_hosts",
                                "heartbeat_factor", "stale_factor", "label", "scope_steps",
                                "bump_priority_on_breach", "page", "categories", "base"})


def _seconds(value: Any, factor: float) -> str:
    """``value`` (``"5m"``, ``30``) divided by ``factor``, written ``"5s"`` (a bare
    number means a count of results for ``for:``); at least 10 ms so that no period
    becomes zero (zero means "no sustain" to the agent)."""
    return f"{max(parse_duration(value) / factor, 0.01):g}s"


def scale_agent(config: dict[str, Any], factor: float) -> dict[str, Any]:
    """The agent config with its periods (``agent.interval``, ``heartbeat_interval``,
    and each check's ``interval``, ``for``, ``lookback``) divided by ``factor``."""
    agent = dict(config["agent"])
    for key in AGENT_PERIODS & agent.keys():
        agent[key] = _seconds(agent[key], factor)
    if "heartbeat_interval" in agent:  # the agent refuses heartbeats under 1 s
        agent["heartbeat_interval"] = f"{max(parse_duration(agent['heartbeat_interval']), 1):g}s"
    checks = []
    for check in config.get("checks") or []:
        check = dict(check)
        for key in AGENT_PERIODS & check.keys():
            check[key] = _seconds(check[key], factor)
        checks.append(check)
    return {**config, "agent": agent, "checks": checks}


def scale_policy(policy: dict[str, Any], factor: float) -> dict[str, Any]:
    """The collector's ``policy:`` with every duration divided by ``factor``, nested
    mappings included (``sla.respond.P1``); counts and ratios are kept."""
    def scaled(section: Any) -> Any:
        if isinstance(section, dict):
            return {key: value if key in POLICY_NOT_PERIODS else scaled(value)
                    for key, value in section.items()}
        if isinstance(section, bool):
            return section
        return _seconds(section, factor)
    return scaled(policy)
