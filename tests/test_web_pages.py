"""The web pages' content over a seeded real store, SQLite and PostgreSQL (tests/websetup.py)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import Markup

from patrol.collector.web import pages as web
from patrol.contract.markup import to_html
from tests.websetup import (
    AGENT_TOKEN,
    HOUR,
    NOW,
    OPERATOR_TOKEN,
    XSS,
    Seeded,
    make_app,
    make_ticket,
    seed,
)

with warnings.catch_warnings():  # starlette nags about its httpx transport; not ours
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient




@pytest.fixture(params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seeded]:
    data = seed(tmp_path / "tickets.db" if request.param == "sqlite"
                else request.getfixturevalue("pg_schema_url"))
    yield data
    data.store.close()


@pytest.fixture
def anonymous(seeded: Seeded) -> TestClient:
    return TestClient(make_app(seeded.store))


@pytest.fixture
def client(anonymous: TestClient) -> TestClient:
    """Logged in the way a browser is: the /login form, keeping the session cookie."""
    response = anonymous.post("/login", data={"token": OPERATOR_TOKEN})
    assert response.status_code == 200 and response.url.path == "/"
    return anonymous


def host_cells(html: str) -> dict[str, list[tuple[str, str, str]]]:
    """Per grid row: (css class, title, visible text) of each check cell, left to right."""
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        host = re.search(r'<th class="host" scope="row"><a [^>]*>([^<]+)</a>', row)
        if host:
            rows[host.group(1)] = [
                (css, title, re.sub(r"<[^>]+>", "", text)) for css, title, text in
                re.findall(r'<td class="cell ([\w-]+)" title="([^"]*)">(.*?)</td>', row)]
    return rows


def test_grid_rows_are_hosts_columns_are_checks_cells_coloured_by_status(client):
    html = client.get("/").text
    assert re.findall(r'<th class="check">([^<]+)</th>', html) == [
        "cpu", "disk", "http", "postgres"]
    assert host_cells(html) == {
        "db-01": [("status-ok", "CPU 12% busy on db-01", "OK"),
                  ("status-critical", "/var is 96.2% full on db-01 (critical at 95%)", "CRIT"),
                  ("status-missing", "http: no result from this host", "–"),
                  ("status-warning", "postgres has 170 of 200 connections in use on db-01",
                   "WARN")],
        "web-01": [("status-unknown", "could not read /proc/stat on web-01 "
                    "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;", "UNKN"),
                   ("status-missing", "disk: no result from this host", "–"),
                   ("status-critical", "https://web-01/health answered 503 on web-01", "CRIT"),
                   ("status-missing", "postgres: no result from this host", "–")]}
    # a failing cell leads to that host's tickets for that check
    assert '<a href="/tickets?host=db-01&amp;check=disk">CRIT</a>' in html


def test_grid_shows_heartbeat_age_reachability_and_labels(client):
    html = client.get("/").text
    assert ('<td class="heartbeat reachable">12s ago<br><span class="reach">reachable</span>'
            in html)
    assert ('<td class="heartbeat unreachable">5m ago<br><span class="reach">UNREACHABLE'
            in html)
    labels = re.search(r'db-01</a>\s*<div class="labels">(.*?)</div>', html, re.S).group(1)
    assert re.findall(r'<span class="label">([^<]+)</span>', labels) == [
        "tier=prod", "role=db", "team=dba"]


def test_grid_counts_open_tickets_by_priority_with_links(client):
    html = client.get("/").text
    assert '<a class="count total" href="/tickets"><span class="n">5</span> open tickets' in html
    found = re.findall(r'href="/tickets\?priority=(P\d)"><span class="n">(\d+)</span>', html)
    assert found == [("P1", "1"), ("P2", "2"), ("P3", "1"), ("P4", "1")]


def test_grid_and_list_refresh_every_30s_but_detail_does_not(client, seeded):
    refresh = '<meta http-equiv="refresh" content="30">'
    assert refresh in client.get("/").text
    assert refresh in client.get("/tickets").text
    assert refresh not in client.get(f"/tickets/{seeded.p1.number}").text


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_grid_with_no_hosts_says_so(request, tmp_path, backend):
    from patrol.collector.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'empty.db'}" if backend == "sqlite"
                       else request.getfixturevalue("pg_schema_url"))
    try:
        client = TestClient(make_app(store))
        html = client.get("/", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).text
        assert "No host has reported yet" in html
        assert '<span class="n">0</span> open tickets' in html
    finally:
        store.close()


ROW = r'<tr class="ticket-row">\s*<td class="number"><a href="/tickets/'


def numbers_in_order(html: str) -> list[str]:
    return re.findall(ROW + r'(TS\d+)">', html)


def test_ticket_list_is_grouped_by_priority_p1_first(client, seeded):
    html = client.get("/tickets").text
    headings = re.findall(r'<th colspan="10" class="prio-p\d">(P\d) · \d tickets?</th>', html)
    assert headings == ["P1", "P2", "P3", "P4"]
    order = numbers_in_order(html)
    assert order.index(seeded.p1.number) < order.index(seeded.p3.number)
    assert order[0] == seeded.p1.number and order[-1] == seeded.xss.number
    assert seeded.previous.number not in order  # closed: not in the default (open) list


def row_of(html: str, number: str) -> str:
    return re.search(ROW + number + r'">.*?</tr>', html, re.S).group(0)


def test_ticket_list_shows_sla_countdowns_overdue_in_red(client, seeded):
    html = client.get("/tickets").text
    p1 = row_of(html, seeded.p1.number)
    assert ('<td class="clock overdue" title="2023-11-14T22:08:20Z">respond overdue by 5m</td>'
            in p1)
    assert '<td class="clock" title="2023-11-15T01:53:20Z">resolve in 4h</td>' in p1
    assert "<td>20m</td>" in p1  # age
    assert '<span class="marker">recurred</span>' in p1
    p3 = row_of(html, seeded.p3.number)
    assert '<td class="clock" title="2023-11-14T23:03:20Z">respond in 50m</td>' in p3
    group = row_of(html, seeded.group.number)
    assert '<span class="marker">flapping</span>' in group
    assert '<span class="marker">group of 2 hosts</span>' in group
    assert ">responded in time</td>" in group
    assert ">in progress</span>" in group
    assert '<span class="marker">in a group</span>' in row_of(html, seeded.child.number)


@pytest.mark.parametrize(("query", "expected"), [
    ("priority=P3", ["p3"]),
    ("host=web-01", ["child", "xss"]),
    ("check=disk", ["p1"]),
    ("status=closed", ["previous"]),
    ("status=all&check=disk", ["p1", "previous"]),
    ("priority=P1,P3", ["p1", "p3"]),
    ("priority=P1&priority=P4", ["p1", "xss"]),
    ("status=&priority=&host=&check=", ["p1", "child", "group", "p3", "xss"]),
], ids=["priority", "host", "check", "closed", "all-statuses", "comma-list", "repeated",
        "blank-form-means-open"])
def test_ticket_list_filters(client, seeded, query, expected):
    html = client.get(f"/tickets?{query}").text
    assert sorted(numbers_in_order(html)) == sorted(
        getattr(seeded, name).number for name in expected)


def test_ticket_list_filter_form_keeps_the_choice(client):
    html = client.get("/tickets?priority=P3&host=db-01").text
    assert '<option value="P3" selected>P3</option>' in html
    assert '<input name="host" value="db-01" size="14">' in html
    assert "1 ticket · status open · priority P3 · host db-01" in html


@pytest.mark.parametrize("query", ["status=bogus", "priority=P9"], ids=["status", "priority"])
def test_ticket_list_rejects_unknown_filter_values(client, query):
    response = client.get(f"/tickets?{query}")
    assert response.status_code == 400
    assert "Bad filter" in response.text and "use one of:" in response.text


def test_ticket_list_pages(client, seeded, monkeypatch):
    monkeypatch.setattr(web, "PAGE_SIZE", 2)
    first = client.get("/tickets?priority=P1,P2,P3").text
    assert numbers_in_order(first) == [seeded.p1.number, seeded.child.number]
    link = re.search(r'<a href="([^"]+)">more tickets</a>', first).group(1)
    assert link == "/tickets?priority=P1%2CP2%2CP3&amp;offset=2"
    second = client.get(link.replace("&amp;", "&")).text
    assert numbers_in_order(second) == [seeded.group.number, seeded.p3.number]
    assert "more tickets" not in second
    mangled = client.get("/tickets?priority=P1,P2,P3&offset=x")
    assert numbers_in_order(mangled.text) == [seeded.p1.number, seeded.child.number]


def test_ticket_detail_shows_every_field(client, seeded):
    html = client.get(f"/tickets/{seeded.p1.number}").text
    fields = dict(re.findall(r"<dt>([^<]+)</dt><dd[^>]*>(.*?)</dd>", html, re.S))
    assert fields["Priority"] == "P1"
    assert fields["Respond by"] == "2023-11-14T22:08:20Z · respond overdue by 5m"
    assert fields["Resolve by"] == "2023-11-15T01:53:20Z · resolve in 4h"
    assert fields["Status"] == "new"
    assert fields["Category"] == "capacity"
    assert fields["First seen"].startswith("2023-11-14T21:53:20Z")
    assert fields["Last seen"].startswith("2023-11-14T22:12:50Z")
    assert fields["Occurrences"] == "7"
    assert fields["Previous ticket"] == (
        f'<a href="/tickets/{seeded.previous.number}">{seeded.previous.number}</a>'
        " · closed: rotated the journal")
    assert fields["Runbook"] == ('<a href="https://wiki.example.org/runbooks/disk">'
                                 "https://wiki.example.org/runbooks/disk</a>")
    assert '<dd class="clock overdue">' in html


def test_ticket_detail_renders_the_markdown_body(client, seeded):
    html = client.get(f"/tickets/{seeded.p1.number}").text
    body = re.search(r'<section class="body">(.*?)</section>', html, re.S).group(1)
    assert re.findall(r"<h2>([^<]+)</h2>", body) == [
        "Problem", "Environment", "Measured values", "Diagnostics",
        "Steps Patrol already took", "Suggested first actions", "Past occurrences",
        "How to verify", "SLA"]
    assert "<li><strong>Symptom</strong>: /var is 96.2% full on db-01</li>" in body
    assert ("<tr><td>used_ratio</td><td>/var</td><td>96.2%</td><td>-</td></tr>"
            in body)
    assert "<h3>Top processes</h3>" in body
    assert ("<pre><code>patrol check --config /etc/patrol/agent.yaml --only disk</code></pre>"
            in body)
    assert "<td>TS20231111001</td>" in body and "<td>rotated the journal</td>" in body


def test_ticket_detail_has_diagnostics_as_collapsible_json(client, seeded):
    html = client.get(f"/tickets/{seeded.p1.number}").text
    sections = re.findall(r"<details( open)?><summary>([^<]+)</summary><pre>(.*?)</pre>",
                          html, re.S)
    assert [(opened, title) for opened, title, _ in sections] == [
        (" open", "Check"), ("", "Top processes"), ("", "Host"), ("", "Measurements")]
    check = sections[0][2].replace("&#34;", '"')
    assert '    {\n      "path": "/var/log/journal",\n      "size_bytes": 4200000000.0\n' in check


def test_ticket_detail_timeline_oldest_first(client, seeded):
    html = client.get(f"/tickets/{seeded.p1.number}").text
    rows = re.findall(r'<tr class="kind-\w+"><td class="time">([^<]+)</td><td>(\w+)</td>'
                      r"<td>([^<]+)</td><td class=\"text\">([^<]*)</td></tr>", html)
    assert rows == [
        ("2023-11-14T21:53:20Z", "opened", "patrol", "opened: /var is 96.2% full on db-01"),
        ("2023-11-14T22:08:20Z", "comment", "alice", "looking at the journal size"),
        ("2023-11-14T22:09:20Z", "escalated", "patrol", "respond-by passed without a response")]


def test_group_ticket_lists_hosts_linking_children_and_child_links_group(client, seeded):
    html = client.get(f"/tickets/{seeded.group.number}").text
    hosts = re.search(r'<ul class="hosts">(.*?)</ul>', html, re.S).group(1)
    assert (f'<li>web-01 · <a href="/tickets/{seeded.child.number}">{seeded.child.number}</a>'
            in hosts)
    assert "<li>web-02</li>" in hosts  # no child ticket (yet): no link
    assert "No ticket body yet." in html
    child = client.get(f"/tickets/{seeded.child.number}").text
    assert (f'<dt>Group ticket</dt><dd><a href="/tickets/{seeded.group.number}">'
            f"{seeded.group.number}</a> · http failing on 2 hosts (role=web)</dd>") in child


def test_unknown_ticket_is_a_404_page(client):
    response = client.get("/tickets/TS20991231999")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no ticket TS20991231999." in response.text


def test_agent_text_is_escaped_everywhere(client, seeded):
    pages = {path: client.get(path).text for path in (
        "/", "/tickets", f"/tickets/{seeded.xss.number}")}
    for path, html in pages.items():
        assert "<script" not in html, path
        assert "<img" not in html, path
    assert "log matched &lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in pages["/tickets"]
    detail = pages[f"/tickets/{seeded.xss.number}"]
    assert "<p>&lt;img src=x onerror=alert(1)&gt;</p>" in detail  # raw HTML in the body
    assert "<td>&lt;b&gt;eve&lt;/b&gt;</td>" in detail  # timeline author
    assert XSS not in detail


def test_body_filter_is_the_helpdesk_renderer_marked_safe_for_jinja():
    html = web.render_markdown("## <svg onload=alert(1)>\n\n[x](javascript:alert(1))")
    assert isinstance(html, Markup)  # inserted as is, not escaped a second time
    assert html == to_html("## <svg onload=alert(1)>\n\n[x](javascript:alert(1))") == (
        "<h2>&lt;svg onload=alert(1)&gt;</h2>\n<p>[x](javascript:alert(1))</p>")


def test_unsafe_links_in_a_body_or_runbook_stay_text(client, seeded):
    """One URL rule (patrol.contract.markup.safe_url) for body links and the
    runbook field: http(s) and mailto only; site paths and ``//host`` stay text too."""
    with seeded.store.transaction() as tx:
        ticket = tx.create_ticket(make_ticket(
            "log", "db-01", "P4", HOUR, dedup_key="db-01/links", runbook="javascript:alert(1)",
            body="[x](javascript:alert(1)) [t](/tickets/TS20231027001) [e](//evil.example) "
                 "[ok](https://wiki.example.org/a?b=1&c=2)"))
    html = client.get(f"/tickets/{ticket.number}").text
    body = re.search(r'<section class="body">(.*?)</section>', html, re.S).group(1)
    assert body.strip() == ("<p>[x](javascript:alert(1)) [t](/tickets/TS20231027001) "
                            '[e](//evil.example) <a href="https://wiki.example.org/a?b=1&amp;c=2">'
                            "ok</a></p>")
    fields = dict(re.findall(r"<dt>([^<]+)</dt><dd[^>]*>(.*?)</dd>", html, re.S))
    assert fields["Runbook"] == "javascript:alert(1)"
    assert 'href="javascript' not in html


def test_pages_forbid_scripts_by_policy(client):
    policy = client.get("/").headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy


def test_stylesheet_is_served_without_login(anonymous):
    response = anonymous.get("/static/patrol.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert ".status-critical" in response.text


@pytest.mark.parametrize("path", ["/", "/tickets", "/tickets/TS20231114001"])
def test_pages_without_a_login_are_a_401_login_form(anonymous, path):
    response = anonymous.get(path)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Log in to Patrol</h1>" in response.text
    assert '<form class="login" method="post" action="/login">' in response.text
    assert f'<input type="hidden" name="next" value="{path}">' in response.text
    assert "patrol up" in response.text


def test_an_agent_token_cannot_see_the_pages(anonymous):
    response = anonymous.get("/", headers={"Authorization": f"Bearer {AGENT_TOKEN}"})
    assert response.status_code == 403
    assert "Not an operator token" in response.text


def test_bearer_operator_token_works_without_cookie(anonymous):
    response = anonymous.get("/", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert response.status_code == 200 and "db-01" in response.text


def test_login_form_sets_a_session_cookie_that_is_not_the_token(anonymous):
    response = anonymous.post("/login", data={"token": OPERATOR_TOKEN, "next": "/tickets"},
                              follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/tickets"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("patrol_session=") and OPERATOR_TOKEN not in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http: a Secure cookie would never come back
    assert anonymous.get("/tickets").status_code == 200  # the cookie alone logs in


def test_a_token_in_the_address_no_longer_logs_in(anonymous):
    response = anonymous.get("/login", params={"token": OPERATOR_TOKEN},
                             follow_redirects=False)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert "no longer accepted in the address" in response.text
    assert OPERATOR_TOKEN not in response.text


def test_login_over_https_marks_the_cookie_secure(seeded):
    client = TestClient(make_app(seeded.store), base_url="https://testserver")
    response = client.post("/login", data={"token": OPERATOR_TOKEN}, follow_redirects=False)
    assert "Secure" in response.headers["set-cookie"]


@pytest.mark.parametrize(("token", "status", "text"), [
    ("not-a-token", 401, "That token is wrong, so you are not logged in."),
    ("", 401, "No token was given, so you are not logged in."),
    (AGENT_TOKEN, 403, "That is an agent token; only an operator token can log in"),
], ids=["wrong", "missing", "agent"])
def test_login_with_a_bad_token_sets_no_cookie(anonymous, token, status, text):
    response = anonymous.post("/login", data={"token": token}, follow_redirects=False)
    assert response.status_code == status
    assert text in response.text
    assert "set-cookie" not in response.headers
    assert anonymous.get("/").status_code == 401


def test_a_forged_or_ended_session_cookie_is_refused(anonymous):
    anonymous.post("/login", data={"token": OPERATOR_TOKEN})
    real = anonymous.cookies["patrol_session"]
    session_id, _, signature = real.rpartition(".")
    anonymous.cookies.clear()
    anonymous.cookies["patrol_session"] = f"{session_id}x.{signature}"
    assert anonymous.get("/").status_code == 401
    anonymous.cookies["patrol_session"] = real
    page = anonymous.get("/")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    assert anonymous.post("/logout", data={"csrf": "wrong"}).status_code == 403
    out = anonymous.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    anonymous.cookies["patrol_session"] = real  # a copy kept after logout is dead
    assert anonymous.get("/").status_code == 401


@pytest.mark.parametrize(("target", "expected"), [
    ("/tickets/TS20231114001", "/tickets/TS20231114001"),
    ("/tickets?priority=P1", "/tickets?priority=P1"),
    ("//evil.example/x", "/"),
    ("/\\evil.example", "/"),
    ("https://evil.example/", "/"),
    ("javascript:alert(1)", "/"),
    ("", "/"),
], ids=["ticket", "query", "scheme-relative", "backslash", "absolute", "javascript", "empty"])
def test_login_next_only_goes_to_local_paths(anonymous, target, expected):
    response = anonymous.post("/login", data={"token": OPERATOR_TOKEN, "next": target},
                              follow_redirects=False)
    assert response.headers["location"] == expected


def test_clock_comes_from_the_app(seeded):
    client = TestClient(make_app(seeded.store, now=NOW + 3600))
    html = client.get("/tickets", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).text
    assert ">respond overdue by 1h</td>" in row_of(html, seeded.p1.number)


def test_ticket_detail_shows_where_it_lives_in_helpdesks_and_refusals(client, seeded):
    p1, p3 = seeded.p1, seeded.p3
    with seeded.store.transaction() as tx:
        tx.enqueue_dispatch(p1.id, "redmine", "open", {"destination": {}}, 0)
        tx.save_link(p1.id, "redmine", "42", "https://redmine.example.com/issues/42", {})
        tx.set_link_state(p1.id, "redmine", "acknowledged", "alice", 0)
        tx.enqueue_dispatch(p1.id, "redmine", "comment", {"text": "x"}, 0)
        tx.enqueue_dispatch(p3.id, "jira", "open", {"destination": {}}, 0)
        [row] = tx.claim_dispatch(0, 1, 10, "test", helpdesk="jira")
        tx.fail_dispatch(row["id"], 0, "jira: POST /issue answered 401: check the credentials",
                         row["lease_owner"])
    html = client.get(f"/tickets/{p1.number}").text
    assert ('<dt>In redmine</dt><dd class="helpdesk"><a href="https://redmine.example.com/'
            'issues/42">#42</a> · acknowledged · 2 update(s) queued</dd>') in html
    html = client.get(f"/tickets/{p3.number}").text
    assert ('<dt>In jira</dt><dd class="helpdesk">not created yet · <span class="overdue">'
            'refused: jira: POST /issue answered 401: check the credentials</span></dd>') in html


def test_a_one_time_login_link_works_once(seeded, anonymous):
    from tests.websetup import login_link

    link = login_link("", seeded.store, "/tickets")
    first = anonymous.get(link, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/tickets"
    assert first.headers["set-cookie"].startswith("patrol_session=")
    other = TestClient(make_app(seeded.store))
    again = other.get(link, follow_redirects=False)
    assert again.status_code == 401 and "set-cookie" not in again.headers
    assert "That login link was used already" in again.text
