"""What the database checks share: where a DSN points, hiding secrets, the CRITICAL
result for a server that cannot be reached, tallies.

Two forms are understood, the two that libpq and redis-py accept:

* URLs: ``postgresql://user:secret@db:5432/app``, ``redis://:secret@cache:6379/0``,
  ``rediss://...``; and
* libpq key/value strings: ``host=db port=5432 user=patrol password=secret``.

Driver error messages are treated as untrusted text: a malformed DSN can come back
quoted in the error, so :func:`redact` removes every known password (raw and
URL-encoded) and anything shaped like a password, before the text reaches a summary,
a ticket or the diagnostics.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

from patrol.checks.base import Result, Status

_KV = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s]*)(@)", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
MASK = "***"


def _is_url(dsn: str) -> bool:
    return "://" in dsn.split("=", 1)[0]


def _keyvalues(dsn: str) -> dict[str, str]:
    out = {}
    for key, value in _KV.findall(dsn):
        if value.startswith("'") and value.endswith("'") and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        out[key.lower()] = value
    return out


def password(dsn: str) -> str | None:
    """The password written in ``dsn`` (URL-decoded), or None."""
    if _is_url(dsn):
        try:
            found = urlsplit(dsn).password
        except ValueError:
            return None
        return unquote(found) if found else None
    return _keyvalues(dsn).get("password") or None


def endpoint(dsn: str, default_port: int, default_host: str = "localhost") -> str:
    """``host:port`` a DSN points at, for messages; never includes credentials.

    A host that is a Unix-socket directory (starts with ``/``) is shown as is.
    Unparseable input gives ``"?"`` rather than raising: this is only for text.
    """
    try:
        if _is_url(dsn):
            parts = urlsplit(dsn)
            netloc = unquote(parts.netloc.rpartition("@")[2])
            if not netloc:
                return f"{default_host}:{default_port}"
            if "," in netloc:  # libpq multi-host URL: show the list as written
                return netloc
            host, colon, port = netloc.rpartition(":")
            if not colon or host.endswith(":") or port.endswith("]"):  # no port, or bare IPv6
                host, port = netloc, ""
            return f"{host}:{port or default_port}"
        values = _keyvalues(dsn)
        host = values.get("host") or values.get("hostaddr") or default_host
        if host.startswith("/"):
            return host
        return f"{host}:{values.get('port') or default_port}"
    except ValueError:
        return "?"


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with every secret and anything password-shaped replaced by ``***``."""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, MASK)
    text = _URL_USERINFO.sub(rf"\1{MASK}\3", text)
    return _KV_PASSWORD.sub(rf"\1{MASK}", text)


def error_text(exc: BaseException, dsn: str) -> str:
    """A driver exception's message (its type's name when empty) with ``dsn``, its
    password and anything password-shaped redacted: safe for summaries and tickets."""
    return redact(str(exc) or type(exc).__name__, dsn, password(dsn))


def cannot_connect(product: str, dsn: str, default_port: int, exc: BaseException,
                   hostname: str) -> Result:
    """The result for a server that refused, timed out or rejected the login: CRITICAL
    (the thing is broken, not "could not find out"), naming the endpoint, with the
    redacted error (<= 4 KiB) and the endpoint in the diagnostics."""
    where = endpoint(dsn, default_port)
    message = error_text(exc, dsn)
    return Result(Status.CRITICAL,
                  f"cannot connect to {product} at {where} on {hostname}: {one_line(message)}",
                  diagnostics={"error": message[:4096], "endpoint": where})


def one_line(text: str, limit: int = 300) -> str:
    """Driver messages span lines (libpq adds hints); a summary is one line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def tally(values: Iterable[str | None]) -> dict[str, int]:
    """Counts per value, most frequent first (then by name); empty shows as ``(none)``."""
    out: dict[str, int] = {}
    for value in values:
        out[value or "(none)"] = out.get(value or "(none)", 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))
