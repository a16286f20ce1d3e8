"""The summary of a check that judges several items (interfaces, DNS queries): the
worst item's own line, plus how many others are not OK, so the ticket title names
one concrete problem and still says it is not alone."""

from __future__ import annotations

from patrol.checks.base import Status


def worst_item(per: dict[str, tuple[Status, str]], one: str,
               many: str) -> tuple[Status, str]:
    """(status, summary) of the worst item; ``one``/``many`` name the kind of
    item in " (and 2 more interfaces not OK)"."""
    worst = max(per, key=lambda item: per[item][0].rank)
    status, summary = per[worst]
    others = [i for i, (s, _) in per.items() if s is not Status.OK and i != worst]
    if others:
        summary += f" (and {len(others)} more {many if len(others) > 1 else one} not OK)"
    return status, summary
