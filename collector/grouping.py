"""Grouping: the same check failing on many hosts of one group is one parent ticket.

Hosts belong to a group by the value of one label (``role`` by default). When the
check of a trigger event is failing on at least ``min_hosts`` hosts (the event's own
host included) that share the event's value of that label, with first-seen times
within ``window`` of the event, the engine opens one parent ticket (``is_group``,
``hosts`` listing them, its ``dedup_key`` from :func:`group_key`) and links the hosts'
own tickets to it (``parent_id``); further hosts join it while it is open. The
parent's host count is the impact scope that feeds its priority.

Events without the label never group: there is nothing to say they share a cause.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from collector.model import Ticket
from collector.wire import Event


@dataclass(frozen=True)
class OpenGroup:
    """Insert a parent ticket with these fields and link ``hosts``' tickets to it."""

    dedup_key: str
    title: str
    check: str
    check_type: str
    severity: str
    label: str
    value: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class JoinGroup:
    """Add ``host`` to the open parent; ``hosts`` is the parent's list after joining."""

    parent_id: int | None
    host: str
    hosts: tuple[str, ...]


GroupAction = OpenGroup | JoinGroup


def group_key(check: str, label: str, value: str) -> str:
    """The parent ticket's ``dedup_key``: one open group per check and group."""
    return f"group:{label}={value}/{check}"


def group_decision(event: Event,
                   recent_firing: Iterable[tuple[str, Mapping[str, str], float]],
                   group_label: str = "role", window: float = 600, min_hosts: int = 3, *,
                   parent: Ticket | None = None, now: float | None = None,
                   ) -> GroupAction | None:
    """Whether ``event`` starts or joins a group.

    ``recent_firing``: ``(host, labels, first_seen)`` of the hosts where the event's
    check is currently failing (the caller filters by check). ``parent``: the open
    group ticket for :func:`group_key` if there is one. ``now`` (default the event's
    ``observed_at``) is the reference time for ``window``, counted either side since
    agents' clocks and deliveries differ."""
    value = event.labels.get(group_label)
    if event.action != "trigger" or not value:
        return None
    if parent is not None:
        if event.source in parent.hosts:
            return None
        return JoinGroup(parent.id, event.source, (*parent.hosts, event.source))
    ref = event.observed_at.timestamp() if now is None else now
    hosts = {event.source}
    hosts.update(host for host, labels, first_seen in recent_firing
                 if labels.get(group_label) == value and abs(ref - first_seen) <= window)
    if len(hosts) < min_hosts:
        return None
    return OpenGroup(
        dedup_key=group_key(event.check, group_label, value),
        title=f"{event.check} failing on {len(hosts)} hosts with {group_label}={value}",
        check=event.check, check_type=event.type, severity=event.severity,
        label=group_label, value=value, hosts=tuple(sorted(hosts)),
    )
