"""Central check sets, piece by piece: the collector's ``check_sets:`` section (shapes,
FILE:LINE messages word for word), the assignment by label and its version, the
``GET /api/v1/check-sets`` route with ETag/304 and the version on the Hosts page (both
stores), and the agent's merge and pull (refusals, last good set kept) against a real
HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from patrol.agent.check_set_pull import CheckSetPuller
from patrol.agent.check_sets import STORE_FILE, CheckSetState, merge
from patrol.agent.config import load_config
from patrol.collector.check_sets import CheckSets
from patrol.collector.config import load_collector_config
from patrol.collector.ingest.api import create_app
from patrol.contract.yamlsource import ConfigError
from tests.collector_fixtures import AGENT_TOKEN, OPERATOR_TOKEN, World, heartbeat, snapshot

pytest_plugins = ["tests.store_worlds"]

AGENT = {"Authorization": f"Bearer {AGENT_TOKEN}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}

SETS = """\
collector:
  store: sqlite:///{tmp}/c.db
check_sets:
  sets:
    postgres:
      - {{name: pg-port, type: tcp, host: 127.0.0.1, port: 5432}}
    base: base.yaml
  assign:
    - match: {{role: db}}
      sets: [postgres]
    - sets: [base]
"""


def collector_config(tmp_path: Path, text: str, base: str = "checks:\n  - {name: cpu, type: cpu}\n"
                     ) -> Path:
    (tmp_path / "base.yaml").write_text(base)
    path = tmp_path / "collector.yaml"
    path.write_text(text.format(tmp=tmp_path))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_collector_config(path)
    return [str(p) for p in caught.value.problems]


# -- the collector's section ------------------------------------------------------------

def test_sets_are_assigned_by_label_in_rule_order_each_once(tmp_path: Path) -> None:
    sets = load_collector_config(collector_config(tmp_path, SETS)).check_sets
    db = sets.for_host({"role": "db", "dc": "x"})
    assert [name for name, _ in db.sets] == ["postgres", "base"]
    assert db.sets[0][1] == [{"name": "pg-port", "type": "tcp", "host": "127.0.0.1",
                              "port": 5432}]
    web = sets.for_host({"role": "web"})
    assert [name for name, _ in web.sets] == ["base"]
    assert web.version != db.version
    assert sets.for_host({"role": "web", "dc": "y"}).version == web.version
    assert CheckSets().for_host({}).as_json() == {"version": CheckSets().for_host({}).version,
                                                  "sets": []}


def test_a_changed_check_changes_the_version_of_hosts_that_get_it_only(tmp_path: Path) -> None:
    before = load_collector_config(collector_config(tmp_path, SETS)).check_sets
    after = load_collector_config(collector_config(
        tmp_path, SETS.replace("port: 5432", "port: 5433"))).check_sets
    assert after.for_host({"role": "db"}).version != before.for_host({"role": "db"}).version
    assert after.for_host({"role": "web"}).version == before.for_host({"role": "web"}).version


def test_shape_problems_are_reported_at_file_and_line_all_at_once(tmp_path: Path) -> None:
    path = collector_config(tmp_path, """\
collector:
  store: sqlite:///{tmp}/c.db
check_sets:
  sets:
    postgres:
      - name: pg-port
        type: tcp
      - type: tcp
      - just text
    base: base.yaml
    gone: missing/
  assign:
    - match: {{role: db}}
      sets: [postgres, pg]
    - sets: []
    - match: [db]
      sets: [base]
  assing: []
""", base="checks:\n  - {name: pg-port, type: cpu}\n")
    assert problems(path) == [
        f"{tmp_path}/base.yaml:2: check 'pg-port': duplicate check name (first defined in "
        f"set 'postgres' at {path}:6); a check name is unique across all sets",
        f"{path}:8: check set 'postgres', option 'name': required option is missing or not "
        "text",
        f"{path}:9: check set 'postgres': each check must be a mapping with at least 'name' "
        "and 'type'",
        f"{path}:11: check set 'gone': {tmp_path}/missing is neither a file nor a folder; "
        "create it or list the checks inline",
        f"{path}:14: check_sets rule 1, option 'sets': unknown set 'pg'; known: base, gone, "
        "postgres",
        f"{path}:15: check_sets rule 2, option 'sets': expected a non-empty list of set names",
        f"{path}:16: check_sets rule 3, option 'match': expected a mapping of label names to "
        "values, e.g. {role: db}",
        f"{path}:18: check_sets, option 'assing': unknown option; valid options are 'sets' "
        "and 'assign'",
    ]


# -- the route ----------------------------------------------------------------------------

@pytest.fixture
def client(any_world: World, tmp_path: Path) -> TestClient:
    app = create_app(any_world.engine, [AGENT_TOKEN], [OPERATOR_TOKEN])
    app.state.check_sets = load_collector_config(collector_config(tmp_path, SETS)).check_sets
    return TestClient(app)


def test_the_route_answers_the_hosts_sets_with_an_etag_and_304_when_held(
        client: TestClient) -> None:
    params = {"host": "db-01", "label": ["role=db"]}
    first = client.get("/api/v1/check-sets", params=params, headers=AGENT)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [s["name"] for s in body["sets"]] == ["postgres", "base"]
    assert first.headers["etag"] == f'"{body["version"]}"'
    again = client.get("/api/v1/check-sets", params=params,
                       headers={**AGENT, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    other = client.get("/api/v1/check-sets", params={"host": "web-01"}, headers=AGENT)
    assert [s["name"] for s in other.json()["sets"]] == ["base"]


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401), (OPERATOR, 403)], ids=["no-token", "operator-token"])
def test_the_route_needs_an_agent_token(client: TestClient, headers: dict[str, str],
                                        status: int) -> None:
    answer = client.get("/api/v1/check-sets", params={"host": "db-01"}, headers=headers)
    assert answer.status_code == status


def test_a_label_that_is_not_key_value_is_a_422(client: TestClient) -> None:
    answer = client.get("/api/v1/check-sets", params={"host": "db-01", "label": "role"},
                        headers=AGENT)
    assert answer.status_code == 422
    assert answer.json()["error"] == "label 'role' is not KEY=VALUE"


def test_hosts_show_the_version_an_agent_holds_and_whether_it_is_current(
        client: TestClient) -> None:
    beat = heartbeat("db-01", [snapshot("root-disk")], labels={"role": "db"})
    assert client.post("/api/v1/heartbeats", json=beat.model_dump(mode="json"),
                       headers=AGENT).status_code == 202
    params = {"host": "db-01", "label": ["role=db"]}
    current = client.get("/api/v1/check-sets", params=params, headers=AGENT).json()["version"]
    client.get("/api/v1/check-sets", params=params,
               headers={**AGENT, "If-None-Match": '"0ld"'})
    host = client.get("/api/v1/hosts", headers=OPERATOR).json()["hosts"][0]
    assert host["check_set"]["version"] == "0ld"
    assert host["check_set"]["assigned"] == current and not host["check_set"]["current"]
    assert client.post("/login", data={"token": OPERATOR_TOKEN}).status_code in (200, 303)
    html = client.get("/hosts").text
    assert "<th>Check sets</th>" in html and f"0ld <span class=\"marker version-differs\">" \
        f"assigned {current}</span>" in html



def test_a_pull_is_shown_by_every_collector_on_the_store_and_after_a_restart(
        any_world: World, client: TestClient, tmp_path: Path) -> None:
    """The pull is recorded in the store: another replica's app (or this one after a
    restart, which starts with empty memory) shows what the host holds."""
    params = {"host": "db-01", "label": ["role=db"]}
    current = client.get("/api/v1/check-sets", params=params, headers=AGENT).json()["version"]
    client.get("/api/v1/check-sets", params=params, headers={**AGENT, "If-None-Match": '"0ld"'})
    other = TestClient(create_app(any_world.engine, [AGENT_TOKEN], [OPERATOR_TOKEN]))
    beat = heartbeat("db-01", [snapshot("root-disk")], labels={"role": "db"})
    assert other.post("/api/v1/heartbeats", json=beat.model_dump(mode="json"),
                      headers=AGENT).status_code == 202
    [host] = other.get("/api/v1/hosts", headers=OPERATOR).json()["hosts"]
    assert host["check_set"]["version"] == "0ld" and host["check_set"]["assigned"] == current
    with any_world.store.transaction() as tx:  # the prune duty forgets old pulls
        assert tx.prune_check_set_pulls(host["check_set"]["pulled_at"] + 1) == 1
    [host] = other.get("/api/v1/hosts", headers=OPERATOR).json()["hosts"]
    assert host["check_set"] is None

# -- the agent: merge and pull -----------------------------------------------------------

def agent_config(tmp_path: Path, url: str = "http://127.0.0.1:9", extra: str = "") -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "agent:\n"
        "  hostname: db-01\n"
        "  labels: {role: db}\n"
        f"  state_dir: {tmp_path / 'state'}\n"
        f"  check_sets: {{pull: true{extra}}}\n"
        f"  collector: {{url: '{url}', token: {AGENT_TOKEN}}}\n"
        "checks:\n"
        "  - {name: cpu, type: cpu}\n")
    return path


def store_sets(tmp_path: Path, checks: list[dict[str, Any]], version: str = "v1") -> Path:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    path = state / STORE_FILE
    path.write_text(yaml.safe_dump({"version": version,
                                    "sets": [{"name": "ops", "checks": checks}]}))
    return path


def test_remote_checks_may_not_read_the_hosts_environment_or_files(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stored = store_sets(tmp_path, [
        {"name": "leak", "type": "http", "url": "https://example.invalid/?t=${PATROL_TOKEN}"},
        {"name": "leak-file", "type": "http", "url": "https://example.invalid/",
         "headers": {"X-T": "file:/etc/patrol/agent.token"}},
        {"name": "load", "type": "load"}])
    state = CheckSetState()
    config = merge(load_config(agent_config(tmp_path)), tmp_path / "state", state)
    assert [c.config.name for c in config.checks] == ["cpu", "load"]
    assert state.rejected["local_reference"] == 2 and state.running == 1
    assert state.version == "v1"
    assert (f"{stored}:3: check 'leak' from check set 'ops' is refused: "
            "'https://example.invalid/?t=${PATROL_TOKEN}' would read this host's environment "
            "or files; define checks that need local secrets in the local config") \
        in caplog.messages


def test_the_host_may_allow_a_command_type_and_must_name_known_types(tmp_path: Path) -> None:
    store_sets(tmp_path, [{"name": "plugin", "type": "nagios", "command": ["/bin/true"]}])
    config = load_config(agent_config(tmp_path, extra=", allow_types: [nagios]"))
    merged = merge(config, tmp_path / "state", CheckSetState())
    assert [c.config.name for c in merged.checks] == ["cpu", "plugin"]
    with pytest.raises(ConfigError) as caught:
        load_config(agent_config(tmp_path, extra=", allow_types: [nagois]"))
    assert str(caught.value).startswith(
        f"{tmp_path}/agent.yaml:5: agent, option 'check_sets.allow_types': unknown check "
        "type 'nagois'; known types: clock, cpu, disk, ")


class _Collector(ThreadingHTTPServer):
    answer: tuple[int, str] = (200, "")
    seen: list[dict[str, str]]


class _Handler(BaseHTTPRequestHandler):
    server: _Collector

    def do_GET(self) -> None:
        self.server.seen.append({"path": self.path, **dict(self.headers)})
        status, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(body.encode())))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_collector() -> Iterator[_Collector]:
    server = _Collector(("127.0.0.1", 0), _Handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _answer(version: str, checks: list[dict[str, Any]]) -> str:
    return json.dumps({"version": version, "sets": [{"name": "ops", "checks": checks}]})


def test_a_pulled_set_that_fails_validation_is_refused_and_the_last_good_stays(
        tmp_path: Path, fake_collector: _Collector, caplog: pytest.LogCaptureFixture) -> None:
    host, port = fake_collector.server_address[:2]
    config = load_config(agent_config(tmp_path, url=f"http://{host}:{port}"))
    state, applied = CheckSetState(), []
    puller = CheckSetPuller(lambda: config.agent, lambda: applied.append(1), state)
    fake_collector.answer = (200, _answer("good", [{"name": "load", "type": "load"}]))
    assert puller.pull() == "updated" and applied == [1]
    request = fake_collector.seen[-1]
    assert request["path"] == "/api/v1/check-sets?host=db-01&label=role%3Ddb"
    assert request["Authorization"] == f"Bearer {AGENT_TOKEN}"
    assert "If-None-Match" not in request

    fake_collector.answer = (200, _answer("bad", [{"name": "load", "type": "load",
                                                   "warnng": 3}]))
    assert puller.pull() == "refused" and applied == [1]
    assert fake_collector.seen[-1]["If-None-Match"] == '"good"'
    kept = yaml.safe_load((tmp_path / "state" / STORE_FILE).read_text())
    assert kept["version"] == "good"
    candidate = tmp_path / "state" / "check_sets.candidate.yaml"
    assert (f"{candidate}:8: check 'load', option 'warnng': unknown option; did you mean "
            "'warning'?") in caplog.text

    fake_collector.answer = (200, "<html>proxy error</html>")
    assert puller.pull() == "refused"
    fake_collector.answer = (304, "")
    assert puller.pull() == "unchanged"
    fake_collector.answer = (401, '{"error": "a valid bearer token is required"}')
    assert puller.pull() == "failed"
    assert dict(state.pulls) == {"updated": 1, "refused": 2, "unchanged": 1, "failed": 1}
    merged = merge(config, tmp_path / "state", state)
    assert [c.config.name for c in merged.checks] == ["cpu", "load"]
    puller.stop()


def test_too_many_labels_are_refused_with_the_field_named(client: TestClient) -> None:
    answer = client.get("/api/v1/check-sets", headers=AGENT, params={
        "host": "db-01", "label": [f"k{i}=v" for i in range(65)]})
    assert answer.status_code == 422
    assert any(p.startswith("query.label:") for p in answer.json()["problems"]), answer.json()
