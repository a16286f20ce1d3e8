"""A report as a mail message, and sending it.

Mail clients render neither inline SVG nor ``data:`` URIs reliably, so the report's
charts (PNG ``data:`` URIs in the self-contained file) become ``image/png`` parts
referenced by ``cid:``. The message::

    multipart/alternative
      text/plain           the summary figures, for clients without HTML
      multipart/related
        text/html          the report, images as cid:chart-N@patrol
        image/png ...      one part per chart (Content-ID, inline)

(a report with nothing to chart, e.g. an empty fleet, has the text/html part alone).

Sent through the email helpdesk's SMTP code (:class:`~patrol.ticketing_bridge.email.Email`),
so connection, TLS, login and error mapping (``TemporaryError`` / ``PermanentError``)
are the same as for tickets.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from patrol.collector.reports import present

_DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


def inline_images(html: str) -> tuple[str, list[tuple[str, bytes]]]:
    """``html`` with each PNG ``data:`` URI replaced by ``cid:``, and the images as
    ``(content id, PNG bytes)``; the same image twice is one part."""
    images: dict[str, str] = {}

    def cid(match: re.Match[str]) -> str:
        found = images.setdefault(match[1], f"chart-{len(images) + 1}@patrol")
        return f"cid:{found}"

    replaced = _DATA_URI.sub(cid, html)
    return replaced, [(name, base64.b64decode(data)) for data, name in images.items()]


def subject(report: dict[str, Any], prefix: str = "") -> str:
    if report["report"] == "daily":
        what = f"Daily inspection report {report['date']}"
    else:
        period = report["period"]
        what = f"Retrospective {period['from']} to {period['to']}"
    return f"{prefix}{what}".strip()


def summary_text(report: dict[str, Any]) -> str:
    """The headline figures as plain text (the message's text/plain alternative)."""
    s = report["summary"]
    if report["report"] == "daily":
        status = ", ".join(f"{name} {count}" for name, count in s["status"].items())
        lines = [subject(report), "",
                 f"Hosts: {s['hosts']} ({_count(s['hosts_inspected'])} inspected, "
                 f"{s['hosts_not_reporting']} not reporting)",
                 f"Checks: {s['checks']} ({_count(s['checks_run'])} run today): {status}",
                 f"Tickets: {s['tickets_opened']} opened, {s['tickets_reopened']} reopened, "
                 f"{s['tickets_resolved']} resolved, {s['tickets_open']} open",
                 f"SLAs at risk: {s['sla_at_risk']}"]
        risks = report.get("top_risks") or []
        if risks:
            lines += ["", "Top risks:"] + [f"- {r['ticket']} {r['priority']} {r['title']}"
                                           for r in risks]
    else:
        lines = [subject(report), "",
                 f"Tickets: {s['tickets']}",
                 f"MTTA: {present.duration(s['mtta_seconds'])}, "
                 f"MTTR: {present.duration(s['mttr_seconds'])}",
                 f"SLA met: respond {present.percent(s['respond_compliance'])}, "
                 f"resolve {present.percent(s['resolve_compliance'])}",
                 f"Reopen rate: {present.percent(s['reopen_rate'])}",
                 f"Flapping tickets: {s['flapping_tickets']}, noisy tickets: "
                 f"{s['noisy_tickets']}"]
    lines += ["", "The full report, with charts, is the HTML part of this message."]
    return "\n".join(lines) + "\n"


def _count(value: int | None) -> str:
    return present.DASH if value is None else str(value)


def message(html: str, report: dict[str, Any], sender: str, recipients: list[str],
            prefix: str = "", now: float | None = None) -> EmailMessage:
    """The report as a message; see the module docstring."""
    body, images = inline_images(html)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject(report, prefix)
    msg["Date"] = formatdate(time.time() if now is None else now, usegmt=True)
    msg["Message-ID"] = f"<{uuid.uuid4().hex}.report@patrol>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    msg.set_content(summary_text(report))
    msg.add_alternative(body, subtype="html")
    html_part = msg.get_body(preferencelist=("html",))
    if html_part is None:  # just added; the email package has no other way to say so
        raise AssertionError("the HTML alternative is missing")
    for cid, png in images:
        html_part.add_related(png, "image", "png", cid=f"<{cid}>", disposition="inline",
                              filename=cid.split("@")[0] + ".png")
    return msg


def send(smtp: Any, msg: EmailMessage, recipients: list[str]) -> None:
    """Deliver ``msg`` with ``smtp`` (:class:`~.schedule.SmtpSettings`); raises the
    bridge's ``TemporaryError`` / ``PermanentError``."""
    from patrol.ticketing_bridge.email import Email

    Email(smtp, "reports").deliver(msg, recipients)
