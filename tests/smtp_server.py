"""A real SMTP server on 127.0.0.1 for the email adapter's tests (aiosmtpd).

``start_smtp`` runs aiosmtpd in its own thread with a certificate from
``tests/certs.py``: STARTTLS (required before MAIL and AUTH) or implicit TLS, AUTH
PLAIN/LOGIN against a user table, and a handler that records every accepted message
with whether TLS was in force and who logged in. ``reject_rcpt`` / ``reject_data``
make it answer a chosen SMTP reply instead (``"550 5.1.1 mailbox unavailable"``).
"""

from __future__ import annotations

import email
import email.policy
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.certs import issue, make_ca
from tests.conftest import free_port


@dataclass
class Received:
    """One accepted message, as the server saw it."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    tls: bool
    login: str | None

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[return-value]


@dataclass
class Recorder:
    """The aiosmtpd handler: records messages, or answers a configured refusal."""

    messages: list[Received] = field(default_factory=list)
    reject_rcpt: str | None = None
    reject_data: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.reject_rcpt:
            return self.reject_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject_data:
            return self.reject_data
        login = session.auth_data if session.authenticated else None
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      envelope.original_content or envelope.content,
                                      _encrypted(server, session), login))
        return "250 Message accepted for delivery"


def _encrypted(server: Any, session: Any) -> bool:
    """STARTTLS sets ``session.ssl``; implicit TLS shows on the transport."""
    transport = getattr(server, "transport", None)
    return session.ssl is not None or (
        transport is not None and transport.get_extra_info("ssl_object") is not None)


class Users:
    """AUTH against a user table; remembers failed attempts."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.failures = 0

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if self.users.get(login) == password:
            return AuthResult(success=True, auth_data=login)
        self.failures += 1
        return AuthResult(success=False, handled=False)


@dataclass
class SmtpServer:
    host: str
    port: int
    ca_file: Path
    recorder: Recorder
    users: Users
    controller: Any

    @property
    def messages(self) -> list[Received]:
        return self.recorder.messages

    def stop(self) -> None:
        self.controller.stop()


def _server_context(directory: Path) -> tuple[ssl.SSLContext, Path]:
    ca = make_ca(directory, "SMTP Test CA")
    cert = issue(ca, directory, common_name="smtp-localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert.cert_path, cert.key_path)
    return context, ca.cert_path


def start_smtp(directory: Path, *, tls: str = "starttls",
               users: dict[str, str] | None = None) -> SmtpServer:
    """``tls``: ``starttls`` (required before MAIL and AUTH), ``implicit`` (SMTPS) or
    ``none`` (plain SMTP, no STARTTLS offered, no AUTH)."""
    from aiosmtpd.controller import Controller
    context, ca_file = _server_context(directory)
    recorder, table = Recorder(), Users(users or {"patrol": "s3cret"})
    port = free_port()
    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": port,
                              "server_hostname": "smtp.test", "ready_timeout": 5.0}
    if tls == "starttls":
        kwargs |= {"tls_context": context, "require_starttls": True,
                   "authenticator": table, "auth_require_tls": True}
    elif tls == "implicit":
        kwargs |= {"ssl_context": context, "authenticator": table, "auth_require_tls": False}
    controller = Controller(recorder, **kwargs)
    controller.start()
    return SmtpServer("127.0.0.1", port, ca_file, recorder, table, controller)
