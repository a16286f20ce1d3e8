"""The knowledge archive: a person's resolution is kept (CLI/API, helpdesk read-back) and
the next ticket of its kind says "last time this was fixed by"; the knowledge page lists
first actions (built-in and the operator's file) and archived fixes. Both stores."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from patrol.collector.dispatch import helpdesk_sync
from patrol.collector.dispatch.routing import TicketingSettings
from patrol.collector.tickets.actions import act
from patrol.collector.tickets.knowledge import load_operator_knowledge
from patrol.contract.yamlsource import ConfigError
from patrol.ticketing_bridge.protocol import RemoteStatus
from tests.collector_fixtures import MINUTE, T0, event
from tests.websetup import OPERATOR_TOKEN, make_app

pytest_plugins = ["tests.store_worlds"]
AUTH = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
NOTE = "Rotated the nginx logs and added logrotate for /var/log/app.\ncause: logs"


def _fixed_by_alice(world, host: str = "db-01") -> str:
    number = world.one(event(host=host, check="root-disk", observed_at=world.clock())).ticket
    world.clock.advance(MINUTE)
    act(world.engine, number, "resolve", "alice", NOTE, force=True)
    return number


def test_a_persons_resolution_shows_in_the_next_ticket_of_its_kind(any_world):
    first = _fixed_by_alice(any_world)
    (kept,) = any_world.store.resolutions("disk")
    assert (kept["ticket_number"], kept["author"], kept["category"], kept["host"]) == (
        first, "alice", "logs", "db-01")
    assert kept["note"].startswith("Rotated the nginx logs")
    any_world.clock.advance(3600)
    again = any_world.one(event(check="root-disk", observed_at=any_world.clock(),
                                event_id="evt-again-0001")).ticket
    body = any_world.ticket(again).body
    past = body.split("## Past occurrences", 1)[1].split("##", 1)[0]
    assert f"**Last time this was fixed by**: alice, 2023-10-27T09:01:00Z ({first}; " \
           "cause: logs): Rotated the nginx logs" in past
    other = any_world.one(event(host="web-07", check="data-disk",
                                observed_at=any_world.clock())).ticket
    assert f"({first} on db-01; cause: logs)" in any_world.ticket(other).body


def test_patrol_closing_a_ticket_itself_archives_nothing(any_world):
    number = any_world.one(event(check="root-disk", observed_at=T0)).ticket
    act(any_world.engine, number, "resolve", "bob", "", force=True)  # no note: nothing learnt
    assert any_world.store.resolutions() == []
    assert "Last time this was fixed" not in any_world.ticket(
        any_world.one(event(host="db-02", check="root-disk", observed_at=T0 + 60)).ticket).body


def test_a_note_read_back_from_the_helpdesk_is_archived(any_world):
    number = any_world.one(event(check="root-disk", observed_at=T0)).ticket
    ticket = any_world.ticket(number)
    with any_world.store.transaction() as tx:
        tx.save_link(ticket.id, "redmine", "42", None, {"helpdesk": "redmine"})
    remote = RemoteStatus("closed", "carol", True, "Rejected",
                          note="Disk is replaced next week.\nroot cause: hardware",
                          note_author="Carol Chen")
    assert helpdesk_sync._reconcile(any_world.store, TicketingSettings(), T0 + 600, ticket,
                                    {"helpdesk": "redmine"}, remote) == 1
    (kept,) = any_world.store.resolutions()
    assert (kept["author"], kept["category"], kept["at"]) == ("Carol Chen", "hardware",
                                                              T0 + 600)


def test_the_knowledge_page_lists_first_actions_and_archived_fixes(any_world, tmp_path):
    _fixed_by_alice(any_world)
    own = tmp_path / "knowledge.yaml"
    own.write_text("first_actions:\n  disk:\n    - The nightly dump lands in /srv/backups.\n")
    app = make_app(any_world.store)
    app.state.knowledge_file = str(own)
    page = TestClient(app).get("/knowledge", headers=AUTH).text
    disk = page.split('id="type-disk"', 1)[1].split("<section", 1)[0]
    assert disk.index("The nightly dump lands in /srv/backups.") < disk.index(
        "Look for deleted files still held open")  # the operator's first
    assert "(yours)" in disk and "(built-in)" in disk
    assert "alice" in disk and "logs" in disk and "Rotated the nginx logs" in disk
    assert "No archived resolution yet." in page.split('id="type-memory"', 1)[1]


def test_mistakes_in_the_operators_knowledge_file_are_named_with_file_and_line(tmp_path):
    bad = tmp_path / "knowledge.yaml"
    bad.write_text("first_actions:\n  disk:\n    - ok\n    - 42\n  memory: later\n"
                   "first_action: {}\n")
    with pytest.raises(ConfigError) as caught:
        load_operator_knowledge(bad)
    text = str(caught.value)
    assert f"{bad}:4: option 'disk': action 2 of 'disk' must be text" in text
    assert f"{bad}:5: option 'memory': 'memory' needs a list of actions" in text
    assert f"{bad}:6: unknown top-level key 'first_action'; did you mean 'first_actions'?" \
        in text


def test_the_collector_config_checks_the_knowledge_file_at_start(tmp_path):
    from patrol.collector.config import load_collector_config

    (tmp_path / "knowledge.yaml").write_text("first_actions:\n  disk: soon\n")
    config = tmp_path / "collector.yaml"
    config.write_text("collector:\n  knowledge_file: knowledge.yaml\n")
    with pytest.raises(ConfigError) as caught:
        load_collector_config(config)
    assert f"{tmp_path / 'knowledge.yaml'}:2: option 'disk'" in str(caught.value)
    (tmp_path / "knowledge.yaml").write_text("first_actions:\n  disk: [Look in /srv.]\n")
    assert load_collector_config(config).collector.knowledge_file == \
        tmp_path / "knowledge.yaml"  # relative to the config's folder
