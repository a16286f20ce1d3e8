"""The email adapter against a real SMTP server on 127.0.0.1 (aiosmtpd, STARTTLS, AUTH)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from patrol.contract.markup import to_text
from patrol.ticketing_bridge.email import Email, message_id
from patrol.ticketing_bridge.protocol import (
    Destination,
    ExternalRef,
    Helpdesk,
    PermanentError,
    RemoteStatus,
    TemporaryError,
    TicketView,
)
from tests.conftest import free_port, unavailable

pytestmark = pytest.mark.slow

VIEW = TicketView(
    number="TS20261122001", fingerprint="patrol-TS20261122001",
    title="/var is 96.2% full on db-01 (critical at 95%)",
    body="## Problem\n\n- **Symptom**: /var is 96.2% full on db-01\n- <script>x</script>\n",
    priority="P2", severity="critical", status="new", category="capacity", host="db-01",
    check="var-disk", check_type="disk", url="https://patrol.example.com/tickets/TS20261122001")
DEST = Destination("mail")
ROOT = message_id("patrol-TS20261122001")


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator:
    try:
        from tests.smtp_server import start_smtp
    except ImportError:
        unavailable("aiosmtpd is not installed (pip install aiosmtpd)")
    server = start_smtp(tmp_path)
    yield server
    server.stop()


def content(part) -> str:
    """A part's decoded text with the wire's CRLF line ends back to LF."""
    return part.get_content().replace("\r\n", "\n")


def adapter(server, **changes) -> Email:
    raw = {"type": "email", "host": server.host, "port": server.port, "ca_file": server.ca_file,
           "username": "patrol", "password": "s3cret", "from": "patrol@example.com",
           "to": ["ops@example.com", "dba@example.com"], **changes}
    return Email(Email.Config.model_validate(raw), "mail")


def test_open_sends_the_first_message_of_a_thread_over_starttls(smtp) -> None:
    mail = adapter(smtp)
    assert isinstance(mail, Helpdesk)
    assert mail.find(VIEW.fingerprint, DEST) is None
    ref = mail.open(VIEW, DEST)
    assert ref == ExternalRef(
        "mail", ROOT, "mailto:ops@example.com,dba@example.com?subject=Re%3A%20%5BTS20261122001"
        "%5D%20/var%20is%2096.2%25%20full%20on%20db-01%20%28critical%20at%2095%25%29"
        f"&In-Reply-To=%3C{ROOT[1:-8]}%40patrol%3E")
    [got] = smtp.messages
    assert got.tls and got.login == "patrol"
    assert got.mail_from == "patrol@example.com"
    assert got.rcpt_tos == ["ops@example.com", "dba@example.com"]
    msg = got.message
    assert msg["Message-ID"] == ROOT and ROOT.endswith("@patrol>") and len(ROOT) == 41
    assert msg["Subject"] == "[TS20261122001] /var is 96.2% full on db-01 (critical at 95%)"
    assert (msg["From"], msg["To"]) == ("patrol@example.com", "ops@example.com, dba@example.com")
    assert (msg["X-Priority"], msg["Importance"], msg["Auto-Submitted"]) == (
        "2", "high", "auto-generated")
    assert msg["X-Patrol-Fingerprint"] == "patrol-TS20261122001"
    assert msg["In-Reply-To"] is None
    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.get_payload()
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert content(text) == to_text(VIEW.body + "\n\nThe ticket in Patrol: " + VIEW.url) \
        + "\n"
    assert content(text).startswith("Problem\n-------\n\n- Symptom: /var is 96.2% full")
    body = content(html)
    assert "<h2>Problem</h2>" in body and "<strong>Symptom</strong>" in body
    assert "&lt;script&gt;x&lt;/script&gt;" in body and "<script>" not in body
    assert f'<a href="{VIEW.url}">' in body


def test_every_later_action_is_a_reply_in_the_thread(smtp) -> None:
    mail = adapter(smtp)
    ref = mail.open(VIEW, DEST)
    mail.comment(ref, "Looked at `/var/log`: **20 GiB** of logs.", VIEW)
    mail.set_priority(ref, VIEW.__class__(**{**VIEW.__dict__, "priority": "P1"}), DEST)
    mail.resolve(ref, "Verified fixed: /var at 61%.", VIEW, DEST)
    mail.reopen(ref, "It came back.", VIEW, DEST)
    assert mail.status(ref) == RemoteStatus("open")
    first, *replies = [m.message for m in smtp.messages]
    assert len(replies) == 4
    ids = {first["Message-ID"], *(r["Message-ID"] for r in replies)}
    assert len(ids) == 5  # each message its own id, all @patrol
    for reply in replies:
        assert reply["In-Reply-To"] == ROOT and reply["References"] == ROOT
        assert reply["Subject"] == "Re: " + first["Subject"]
        assert reply["Message-ID"].endswith("@patrol>")
    texts = [content(r.get_payload()[0]).splitlines()[0] for r in replies]
    assert texts == ["Looked at /var/log: 20 GiB of logs.", "Priority is now P1.",
                     "Resolved. Verified fixed: /var at 61%.", "Reopened. It came back."]
    assert "<code>/var/log</code>" in content(replies[0].get_payload()[1])
    assert replies[1]["X-Priority"] == "1"


def test_route_addresses_replace_the_configured_recipients_for_the_whole_thread(smtp) -> None:
    mail = adapter(smtp)
    ref = mail.open(VIEW, Destination("mail", team="dba@example.com",
                                      assignee="alice@example.com"))
    mail.comment(ref, "note", VIEW)
    assert [m.rcpt_tos for m in smtp.messages] == [["alice@example.com", "dba@example.com"]] * 2
    ref2 = mail.open(VIEW, Destination("mail", team="dba-team"))  # not an address
    assert smtp.messages[-1].rcpt_tos == ["ops@example.com", "dba@example.com"]
    assert ref2.id == ref.id  # same ticket, same root Message-ID


@pytest.mark.parametrize(("setup", "error", "status", "words"), [
    ("down", TemporaryError, None, "cannot deliver through 127.0.0.1"),
    ("550", PermanentError, 550, "every recipient refused"),
    ("451", TemporaryError, 451, "every recipient refused"),
    ("554-data", PermanentError, 554, "DATA answered 554"),
    ("password", PermanentError, 535, "check the username and password"),
    ("untrusted-cert", PermanentError, None, "check ca_file"),
], ids=["server-down", "mailbox-unavailable", "greylisted", "data-refused", "wrong-password",
        "untrusted-certificate"])
def test_smtp_failures_map_to_temporary_or_permanent(smtp, setup, error, status, words) -> None:
    changes: dict = {}
    if setup == "down":
        changes["port"] = free_port()
    elif setup == "550":
        smtp.recorder.reject_rcpt = "550 5.1.1 mailbox unavailable"
    elif setup == "451":
        smtp.recorder.reject_rcpt = "451 4.7.1 greylisted, try again later"
    elif setup == "554-data":
        smtp.recorder.reject_data = "554 5.7.1 message refused as spam"
    elif setup == "password":
        changes["password"] = "wrong"
    else:
        changes["ca_file"] = None
    with pytest.raises(error) as caught:
        adapter(smtp, **changes).open(VIEW, DEST)
    assert type(caught.value) is error
    assert caught.value.status == status
    assert words in str(caught.value)
    assert smtp.messages == []
    if setup == "password":
        assert smtp.users.failures >= 1  # smtplib tries PLAIN, then LOGIN
        assert "wrong" not in str(caught.value)


def test_server_without_starttls_is_refused_unless_allowed(tmp_path) -> None:
    from tests.smtp_server import start_smtp
    plain = start_smtp(tmp_path, tls="none")
    try:
        no_auth = {"username": None, "password": None}
        with pytest.raises(PermanentError, match="does not offer STARTTLS"):
            adapter(plain, **no_auth).open(VIEW, DEST)
        adapter(plain, starttls=False, **no_auth).open(VIEW, DEST)
        [got] = plain.messages
        assert not got.tls and got.login is None
    finally:
        plain.stop()


def test_implicit_tls(tmp_path) -> None:
    from tests.smtp_server import start_smtp
    smtps = start_smtp(tmp_path, tls="implicit")
    try:
        adapter(smtps, ssl=True).open(VIEW, DEST)
        [got] = smtps.messages
        assert got.tls and got.login == "patrol"
    finally:
        smtps.stop()


@pytest.mark.parametrize(("changes", "message"), [
    ({"ssl": True, "starttls": True}, "ssl (implicit TLS, port 465) and starttls"),
    ({"to": ["ops"]}, "not an email address in 'to': ops"),
    ({"password": None}, "username and password go together"),
    ({"form": "x@example.com"}, "Extra inputs are not permitted"),
], ids=["both-tls-modes", "bad-address", "user-without-password", "unknown-key"])
def test_config_errors(changes, message) -> None:
    raw = {"type": "email", "host": "smtp.example.com", "from": "patrol@example.com",
           "username": "u", "password": "p", **changes}
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Email.Config.model_validate(raw)


def test_config_defaults() -> None:
    config = Email.Config.model_validate({"type": "email", "host": "h", "from": "p@x"})
    assert (config.starttls, config.ssl, config.effective_port) == (True, False, 587)
    smtps = Email.Config.model_validate({"type": "email", "host": "h", "from": "p@x",
                                         "ssl": True})
    assert smtps.effective_port == 465
    with pytest.raises(PermanentError, match="no recipients"):
        Email(config, "mail").open(VIEW, DEST)
