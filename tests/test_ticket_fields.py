"""A ticket field is declared once (``collector.model.Ticket``'s ``shown`` metadata) and
reaches the API's JSON, the helpdesk adapters' view and the body from there."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from patrol.collector.dispatch.dispatcher import view_of
from patrol.collector.ingest.api import ticket_json
from patrol.collector.model import Priority, Ticket, TicketStatus, TimelineEntry, shown
from patrol.collector.tickets.body import render_body
from patrol.ticketing_bridge.protocol import TicketView

NOW = 1698400800.0
LIST_KEYS = [
    "number", "title", "status", "priority", "severity", "category", "host", "check",
    "type", "dedup_key", "labels", "check_status", "occurrences", "first_seen",
    "last_seen", "opened_at", "respond_by", "resolve_by", "acknowledged_at",
    "recovered_at", "resolved_at", "closed_at", "resolution", "flapping", "is_group",
    "hosts", "parent_id", "previous_id", "escalation", "runbook", "measurements"]


def _ticket(cls: type[Ticket] = Ticket, **changes: object) -> Ticket:
    values: dict[str, object] = dict(
        dedup_key="db-01/var-disk", title="/var is 96.2% full on db-01", host="db-01",
        check="var-disk", check_type="disk", severity="critical", priority=Priority.P1,
        status=TicketStatus.IN_PROGRESS, category="capacity", opened_at=NOW,
        first_seen=NOW - 60, last_seen=NOW, respond_by=NOW + 900, resolve_by=NOW + 14400,
        number="TS20231027001", labels={"tier": "critical"}, hosts=["db-01"],
        runbook="https://wiki.example.com/disk", body="## Problem\n", id=7)
    values.update(changes)
    return cls(**values)  # type: ignore[arg-type]


def test_the_api_lists_the_declared_fields_in_declaration_order() -> None:
    ticket = _ticket()
    listed = ticket_json(ticket)
    assert list(listed) == LIST_KEYS
    assert (listed["type"], listed["status"], listed["priority"]) == (
        "disk", "in_progress", "P1")
    one = ticket_json(ticket, [TimelineEntry(NOW, "opened", "opened as P1")])
    assert list(one) == [*LIST_KEYS, "diagnostics", "body", "timeline"]
    assert one["body"] == "## Problem\n"


def test_the_adapters_view_is_the_declared_fields_plus_fingerprint_and_link() -> None:
    view = view_of(_ticket(), "https://patrol.example.com/")
    assert (view.number, view.check_type, view.priority, view.status, view.hosts) == (
        "TS20231027001", "disk", "P1", "in_progress", ("db-01",))
    assert view.url == "https://patrol.example.com/tickets/TS20231027001"
    declared = {spec.view for f in dataclasses.fields(Ticket)
                if (spec := f.metadata.get("shown")) and spec.view}
    computed = {"fingerprint", "url"}  # made by the dispatcher, not stored on the ticket
    assert declared | computed == {f.name for f in dataclasses.fields(TicketView)}


@dataclass(kw_only=True)
class _WithOwner(Ticket):
    """What adding a field takes: this declaration (the code that fills it aside)."""

    owner_team: str | None = field(default=None, metadata=shown(
        "owner_team", body=("Problem", "Owner team")))


@pytest.mark.parametrize("owner", ["dba", None], ids=["set", "unset"])
def test_a_new_declared_field_reaches_the_api_and_the_body(owner: str | None) -> None:
    ticket = _ticket(_WithOwner, owner_team=owner)
    assert list(ticket_json(ticket)) == [*LIST_KEYS, "owner_team"]
    assert ticket_json(ticket)["owner_team"] == owner
    body = render_body(ticket, None, [], [], "patrol check --only var-disk")
    problem = body.split("## Environment")[0]
    assert ("- **Owner team**: dba\n" in problem) is (owner is not None)
    assert "Runbook: https://wiki.example.com/disk" in body.split("## Past occurrences")[0]
