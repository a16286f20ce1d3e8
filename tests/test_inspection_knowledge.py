"""The issue-14 check types reach the helpdesk with their own first actions and the
category an operator would file them under, not the generic fallbacks."""

from __future__ import annotations

import pytest

from patrol.collector.policy.categories import category_for
from patrol.collector.tickets.knowledge import GENERIC, first_actions

CATEGORIES = {
    "net_interface": "network", "dns": "network", "clock": "configuration",
    "disk_health": "hardware", "kernel": "hardware", "fd": "capacity",
    "zombies": "software", "updates": "security", "listen": "security",
}


@pytest.mark.parametrize(("check_type", "category"), sorted(CATEGORIES.items()))
def test_new_types_have_first_actions_and_a_category(check_type: str, category: str) -> None:
    from patrol.checks import registry

    assert check_type in registry.known_types()
    actions = first_actions(check_type)
    assert actions != GENERIC and len(actions) >= 2
    assert category_for(check_type) == category
    assert category_for(check_type, {"category": "permission"}) == "permission"
