"""Tickets as email threads over SMTP.

A ticket is a thread. ``open`` sends the first message with a Message-ID derived from
the fingerprint (``<sha256(fingerprint)[:32]@patrol>``, stable, so a retried open
reuses it and mail clients that saw the first copy drop the second); every later
action (comment, priority, resolve, reopen) is a reply carrying ``In-Reply-To`` and
``References`` to it and the subject ``Re: <subject>``, so mail clients thread them.
Each message is ``multipart/alternative``: readable text (:func:`markup.to_text`)
first, HTML (:func:`markup.to_html`) second, as RFC 2046 orders them (the last part
a client can show wins).

Recipients: ``to`` from the config, replaced by the route's ``assignee`` and/or
``team`` when they are addresses (contain ``@``). The reference's ``url`` is a
``mailto:`` link to the thread (RFC 6068, with ``In-Reply-To``); replies are sent
to its recipients, so a routed ticket's whole thread reaches the same people.

Mail has no read-back and no search:

- ``find`` returns None: email has no second guard against duplicates; the
  dispatcher's stored reference is the only one (a crash between "sent" and "stored"
  re-sends the first message, with the same Message-ID);
- ``status`` always answers ``open``: nobody can acknowledge or close a ticket by
  mail, so MTTA is not measured for email-only tickets.

SMTP failures map at the boundary: connection refused, timeouts, disconnects and
4xx replies are :class:`TemporaryError`; 5xx replies (550 mailbox unavailable, 535
authentication failed, 554), TLS certificate failures and a server without STARTTLS
when it is required are :class:`PermanentError`.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from html import escape
from typing import Any, ClassVar
from urllib.parse import quote, unquote, urlsplit

import requests
from pydantic import ConfigDict, Field, model_validator

from patrol.contract.markup import to_html, to_text
from patrol.ticketing_bridge.protocol import (
    Destination,
    ExternalRef,
    PermanentError,
    RemoteStatus,
    TemporaryError,
    TicketView,
)
from patrol.ticketing_bridge.settings import AdapterSettings, Secret

log = logging.getLogger("patrol.ticketing.email")

# X-Priority values mail clients show (1 highest .. 5 lowest)
DEFAULT_PRIORITIES = {"P1": 1, "P2": 2, "P3": 3, "P4": 5}


def message_id(fingerprint: str, domain: str = "patrol") -> str:
    """The thread's root Message-ID: the same for every send of the same ticket."""
    return f"<{hashlib.sha256(fingerprint.encode()).hexdigest()[:32]}@{domain}>"


class Email:
    """SMTP delivery; see the module docstring."""

    type: ClassVar[str] = "email"

    class Config(AdapterSettings):
        model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

        host: str
        port: int | None = Field(default=None, ge=1, le=65535,
                                 description="default 465 with ssl, else 587")
        starttls: bool = True
        ssl: bool = Field(default=False, description="implicit TLS (SMTPS, port 465)")
        username: str | None = None
        password: Secret | None = None
        sender: str = Field(alias="from", pattern=r".+@.+")
        to: list[str] = Field(default_factory=list)
        subject_prefix: str = ""
        message_id_domain: str = "patrol"
        timeout: float = Field(default=20.0, gt=0, description="seconds per SMTP command")

        @model_validator(mode="after")
        def _tls_modes(self) -> Email.Config:
            if self.ssl and self.starttls and "starttls" in self.model_fields_set:
                raise ValueError("ssl (implicit TLS, port 465) and starttls (upgrade on "
                                 "port 587) exclude each other; set only one")
            if (self.username is None) != (self.password is None):
                raise ValueError("username and password go together")
            bad = [a for a in self.to if "@" not in a]
            if bad:
                raise ValueError(f"not an email address in 'to': {', '.join(bad)}")
            return self

        @property
        def effective_port(self) -> int:
            return self.port or (465 if self.ssl else 587)

    def __init__(self, config: Email.Config, name: str,
                 session: requests.Session | None = None) -> None:
        self.config = config
        self.name = name

    # -- the protocol ----------------------------------------------------------------

    def open(self, view: TicketView, dest: Destination) -> ExternalRef:
        root = message_id(view.fingerprint, self.config.message_id_domain)
        recipients = self._recipients(dest)
        subject = self._subject(view)
        text = view.body
        if view.url:
            text += f"\n\nThe ticket in Patrol: {view.url}\n"
        self._send(recipients, subject, text, view, message_id_=root)
        return ExternalRef(self.name, root, self._mailto(recipients, subject, root))

    def find(self, fingerprint: str, dest: Destination) -> ExternalRef | None:
        return None  # a mailbox cannot be searched from here: see the module docstring

    def comment(self, ref: ExternalRef, text: str, view: TicketView) -> None:
        self._reply(ref, view, text)

    def set_priority(self, ref: ExternalRef, view: TicketView, dest: Destination) -> None:
        self._reply(ref, view, f"Priority is now **{view.priority}**.")

    def resolve(self, ref: ExternalRef, text: str, view: TicketView,
                dest: Destination) -> None:
        self._reply(ref, view, f"**Resolved.** {text}".strip())

    def reopen(self, ref: ExternalRef, text: str, view: TicketView,
               dest: Destination) -> None:
        self._reply(ref, view, f"**Reopened.** {text}".strip())

    def status(self, ref: ExternalRef) -> RemoteStatus:
        return RemoteStatus("open")  # mail has no read-back: see the module docstring

    # -- messages ----------------------------------------------------------------------

    def _subject(self, view: TicketView) -> str:
        return f"{self.config.subject_prefix}[{view.number}] {view.title}".strip()

    def _recipients(self, dest: Destination) -> list[str]:
        routed = [a for a in (dest.assignee, dest.team) if a and "@" in a]
        recipients = routed or list(self.config.to)
        if not recipients:
            raise PermanentError(f"{self.name}: no recipients: set 'to' or route an "
                                 "assignee/team that is an email address")
        return recipients

    def _mailto(self, recipients: list[str], subject: str, root: str) -> str:
        return (f"mailto:{','.join(quote(r, safe='@') for r in recipients)}"
                f"?subject={quote('Re: ' + subject)}&In-Reply-To={quote(root)}")

    def _thread(self, ref: ExternalRef) -> list[str]:
        """The recipients stored in the reference's mailto URL (else the config's)."""
        if ref.url and ref.url.startswith("mailto:"):
            path = urlsplit(ref.url).path
            found = [unquote(p) for p in path.split(",") if "@" in p]
            if found:
                return found
        return self._recipients(Destination(self.name))

    def _reply(self, ref: ExternalRef, view: TicketView, markdown: str) -> None:
        if view.url:
            markdown += f"\n\nThe ticket in Patrol: {view.url}"
        self._send(self._thread(ref), f"Re: {self._subject(view)}", markdown, view,
                   reply_to=ref.id)

    def build(self, recipients: list[str], subject: str, markdown: str, view: TicketView,
              message_id_: str | None = None, reply_to: str | None = None) -> EmailMessage:
        """The message as it will be sent (public for tests and previews)."""
        msg = EmailMessage()
        msg["From"] = self.config.sender
        msg["To"] = ", ".join(recipients)
        msg["Subject"] = subject
        msg["Date"] = formatdate(time.time(), localtime=False, usegmt=True)
        msg["Message-ID"] = message_id_ or (
            f"<{uuid.uuid4().hex}.{message_id(view.fingerprint)[1:17]}"
            f"@{self.config.message_id_domain}>")
        if reply_to:
            msg["In-Reply-To"] = reply_to
            msg["References"] = reply_to
        level = self.config.mapped_priority(view.priority, DEFAULT_PRIORITIES)
        msg["X-Priority"] = str(level)
        msg["Importance"] = "high" if int(level) <= 2 else "normal"
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        msg["X-Patrol-Ticket"] = view.number
        msg["X-Patrol-Fingerprint"] = view.fingerprint
        msg.set_content(to_text(markdown) + "\n")
        msg.add_alternative(_html_page(subject, to_html(markdown)), subtype="html")
        return msg

    def _send(self, recipients: list[str], subject: str, markdown: str, view: TicketView,
              **ids: Any) -> None:
        self.deliver(self.build(recipients, subject, markdown, view, **ids), recipients)

    def deliver(self, msg: EmailMessage, recipients: list[str]) -> None:
        """Send any message through this adapter's SMTP settings, failures mapped to
        :class:`TemporaryError` / :class:`PermanentError` (the collector's mailed
        reports use it too)."""
        try:
            with self._connect() as smtp:
                refused = smtp.send_message(msg, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _by_code(min(codes), f"{self.name}: every recipient refused: "
                           f"{_describe(exc.recipients)}") from exc
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, f"{self.name}: {_verb(exc)} answered "
                           f"{exc.smtp_code} {_text(exc.smtp_error)}") from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"{self.name}: {self.config.host} does not offer STARTTLS; "
                                 "set ssl: true for port 465, or starttls: false to send "
                                 "in clear text (not recommended)") from exc
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:  # dropped mid-handshake
            raise TemporaryError(f"{self.name}: {self.config.host} closed the TLS "
                                 f"connection: {exc}") from exc
        except ssl.SSLError as exc:
            raise PermanentError(f"{self.name}: TLS with {self.config.host} failed: "
                                 f"{exc}; check ca_file / verify_tls") from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out
            raise TemporaryError(f"{self.name}: cannot deliver through {self.config.host}:"
                                 f"{self.config.effective_port}: {exc}") from exc
        if refused:
            log.warning("%s: some recipients refused %s: %s", self.name, msg["Message-ID"],
                        _describe(refused))

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context(
            cafile=str(self.config.ca_file) if self.config.ca_file else None)
        if not self.config.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        if c.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(c.host, c.effective_port, timeout=c.timeout,
                                                  context=self._tls())
        else:
            smtp = smtplib.SMTP(c.host, c.effective_port, timeout=c.timeout)
        try:
            if c.starttls and not c.ssl:
                smtp.starttls(context=self._tls())
            if c.username is not None and c.password is not None:
                smtp.login(c.username, c.password.get_secret_value())
        except BaseException:
            smtp.close()
            raise
        return smtp


def _by_code(code: int, message: str) -> TemporaryError | PermanentError:
    if 400 <= code < 500:
        return TemporaryError(message, code)
    if code == 535:
        message += "; check the username and password"
    return PermanentError(message, code)


def _text(raw: bytes | str) -> str:
    return (raw.decode(errors="replace") if isinstance(raw, bytes) else raw)[:300]


def _verb(exc: smtplib.SMTPResponseException) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "AUTH"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return "MAIL FROM"
    if isinstance(exc, smtplib.SMTPDataError):
        return "DATA"
    if isinstance(exc, smtplib.SMTPConnectError):
        return "the greeting"
    return "the server"


def _describe(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{rcpt}: {code} {_text(text)}" for rcpt, (code, text) in refused.items())


def _html_page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n")
