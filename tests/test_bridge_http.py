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
