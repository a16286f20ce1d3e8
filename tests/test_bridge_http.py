"""What every HTTP adapter shares (ticketing_bridge.http): TLS settings and credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from patrol.ticketing_bridge.glpi import Glpi
from patrol.ticketing_bridge.http import token_or_basic
from patrol.ticketing_bridge.jira import Jira
from patrol.ticketing_bridge.redmine import Redmine
from patrol.ticketing_bridge.rt import RequestTracker
from patrol.ticketing_bridge.servicenow import ServiceNow
from patrol.ticketing_bridge.webhook import Webhook
from patrol.ticketing_bridge.zammad import Zammad
from patrol.ticketing_bridge.zendesk import Zendesk

URL = "https://helpdesk.example.test"
ADAPTERS: list[tuple[type, dict[str, Any]]] = [
    (Glpi, {"user_token": "u"}), (Jira, {"token": "t", "api_version": 2}),
    (Redmine, {"api_key": "k"}), (RequestTracker, {"token": "t"}),
    (ServiceNow, {"token": "t"}), (Zammad, {"token": "t", "customer": "c@example.test"}),
    (Zendesk, {"email": "ops@example.test", "token": "t"}), (Webhook, {"preset": "slack"}),
]


def _adapter(cls: type, extra: dict[str, Any], **tls: Any) -> Any:
    raw = {"type": cls.type, "url": URL, **extra, **tls}
    config = cls.Config.model_validate(raw)
    return cls(config, "hd")


@pytest.mark.parametrize(("cls", "extra"), ADAPTERS, ids=[c.type for c, _ in ADAPTERS])
def test_every_http_adapter_takes_ca_file_over_verify_tls(cls, extra, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    assert _adapter(cls, extra).http.session.verify is True
    assert _adapter(cls, extra, verify_tls=False).http.session.verify is False
    assert _adapter(cls, extra, ca_file=str(ca), verify_tls=False).http.session.verify == str(ca)


def test_token_wins_over_basic_auth_and_basic_auth_needs_no_token() -> None:
    assert token_or_basic(SecretStr("abc"), "Bearer", "u", SecretStr("p")) == (
        {"Authorization": "Bearer abc"}, None)
    assert token_or_basic(None, "token", "root", SecretStr("pw")) == ({}, ("root", "pw"))
    assert token_or_basic(None, "token", None, None) == ({}, ("", ""))


def _truncating_server() -> tuple[Any, str]:
    """A helpdesk that starts a chunked answer and dies in the middle of it, as a proxy
    restarting mid-response does; a real socket, so requests sees what it would see."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n40\r\n{\"issue\": {\"id\"")

    threading.Thread(target=serve, daemon=True).start()
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_an_answer_that_breaks_off_is_an_unknown_outcome_retried_later() -> None:
    """Not a crash of the dispatcher and not a permanent failure: the helpdesk may have
    created the ticket, so the retry waits long enough for ``find`` to adopt it."""
    from patrol.ticketing_bridge.http import UNKNOWN_OUTCOME_WAIT, HttpClient
    from patrol.ticketing_bridge.protocol import TemporaryError

    listener, url = _truncating_server()
    try:
        client = HttpClient(url, name="redmine")
        with pytest.raises(TemporaryError, match="answer broke off") as info:
            client.json("POST", "/issues.json", json={"issue": {}})
        assert info.value.retry_after == UNKNOWN_OUTCOME_WAIT
    finally:
        listener.close()
