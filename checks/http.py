"""HTTP(S) endpoint: status, latency, body content and TLS certificate expiry.

One request per run on a NEW connection (so ``response_seconds`` includes connect
and TLS handshake, as a user's first request would), following redirects unless
told not to. ``response_seconds`` runs from sending the request to the last body
byte, redirects included.

CRITICAL when the server cannot be reached, TLS verification fails, the status is
not expected, or the body does (not) match. For https the server certificate's
remaining validity is ``tls_expiry_seconds``. It is the certificate the final
response's own connection received (read before the body, no second handshake)
when that is the one to report: the configured https URL without a redirect to
another origin, or the final URL when an http URL redirects to https. Otherwise,
and after a failed request (to show who presented a rejected certificate), a
separate TLS handshake to that host reads it without verifying again: the request
has just verified the same server, and a second opinion with another trust store
would only add false alarms.

The whole presented chain counts too: ``tls_chain_expiry_seconds`` is the soonest
expiry among the certificates the server sends (an intermediate that lapses breaks
every client while the leaf still looks fine), read from the same handshake (or the
separate one, whose chain also goes into the diagnostics of a failed request, to
show which certificate was rejected). ``tls_hostname_match`` compares the leaf's
names with the URL's host (RFC 6125), so a wrong certificate is reported even with
``insecure: true``, where the request itself does not check it.

Decisions (cost; measured in bench/README.md):

- The request goes out on the standard library's ``http.client``
  (:mod:`checks.http_fetch`), not ``requests``: ~5 MiB PSS less per agent, and less
  CPU per run (issue 10, item 5).
- Each check instance builds one TLS context, on first https use, and keeps it:
  loading a CA bundle costs ~20-30 ms of CPU. Its trust store is ``ca_file``, else
  the one ``requests`` used (``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``, then
  certifi's bundle), else, without certifi, the system store; none for
  ``insecure``. A reload builds new instances, so a replaced CA file is read then.
- Honesty over speed: every run opens new connections and closes them when it
  ends, and keeps no cookie, so each run pays for connect and handshake again and
  sends no cookie an earlier run got. Keep-alive would be cheaper but measure a warm
  connection (and could hide a server that no longer accepts new ones).

``Result.diagnostics`` always carries what the check saw, kept small: status line,
response headers (cookies and credentials redacted), a body excerpt (<= 2 KiB),
the redirect chain and the peer certificate's subject/issuer/validity.

The configuration model (``HttpCheck.Config``) and status-range parsing live in
:mod:`checks.http_config`.
"""

from __future__ import annotations

import codecs
import os
import re
import socket
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from patrol.checks import tls_info
from patrol.checks.base import ConfigClass, Measurement, MeasurementSpec, Result, RunContext, Status
from patrol.checks.http_fetch import FETCH_ERRORS, Fetcher, Opener, Response, TooManyRedirects
from patrol.checks.schemas import config_schema
from patrol.checks.tcp import seconds_text
from patrol.checks.thresholds import limit_note
from patrol.checks.values import Secret
from patrol.contract.units import format_duration

if TYPE_CHECKING:
    from patrol.checks.schemas.http import HttpConfig

DEFAULT_TIMEOUT = 10.0
_STATUS = re.compile(r"^\s*(?:([1-5])xx|(\d{3})(?:\s*-\s*(\d{3}))?)\s*$", re.IGNORECASE)


def parse_status(spec: int | str) -> tuple[int, int]:
    """Inclusive status range from ``200``, ``"2xx"`` or ``"200-399"``."""
    match = _STATUS.match(str(spec))
    if not match:
        raise ValueError(f"{spec!r} is not a status; write 200, 2xx or 200-299")
    klass, low, high = match.groups()
    if klass:
        return int(klass) * 100, int(klass) * 100 + 99
    lo, hi = int(low), int(high or low)
    if not 100 <= lo <= hi <= 599:
        raise ValueError(f"{spec!r} is not a status range between 100 and 599")
    return lo, hi


DAY = 86400.0
BODY_LIMIT = 16 * 1024 * 1024  # bytes read at most; body_bytes saturates here
EXCERPT_BYTES = 2048
_TLS_MEASUREMENTS = ("tls_expiry_seconds", "tls_chain_expiry_seconds", "tls_hostname_match")
REDACTED_RESPONSE_HEADERS = {"set-cookie", "authorization", "proxy-authorization", "cookie"}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def default_trust() -> str | bool:
    """The trust store ``requests`` used for ``verify=True``, in its order: the
    environment (``REQUESTS_CA_BUNDLE``, then ``CURL_CA_BUNDLE``), then certifi's
    bundle; the system store (``True``) when certifi is not installed."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        return bundle
    try:
        import certifi
    except ImportError:
        return True
    return str(certifi.where())


def failure_text(exc: BaseException, timeout: float) -> str:
    """Why a request failed, phrased to follow the URL."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"failed TLS verification ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"failed the TLS handshake ({exc})"
    if isinstance(exc, TimeoutError):
        return f"timed out after {seconds_text(timeout)}"
    if isinstance(exc, TooManyRedirects):
        return "redirects too many times"
    if isinstance(exc, ConnectionRefusedError):
        return "refused the connection"
    if isinstance(exc, socket.gaierror):
        return f"cannot be resolved ({exc.strerror or exc})"
    return f"could not be fetched ({type(exc).__name__}: {exc})"


def _headers(raw: Any) -> dict[str, str]:
    return {k: "***" if k.lower() in REDACTED_RESPONSE_HEADERS else v for k, v in raw.items()}


def _status_line(response: Response) -> str:
    version = {9: "HTTP/0.9", 10: "HTTP/1.0", 11: "HTTP/1.1"}.get(response.version, "HTTP/1.1")
    return f"{version} {response.status} {response.reason or ''}".rstrip()


def _codec(name: str | None) -> str:
    """``name`` when Python knows the codec, else utf-8 (a server's typo in its
    charset must not fail the check)."""
    try:
        return codecs.lookup(name or "utf-8").name
    except LookupError:
        return "utf-8"


class HttpCheck:
    """Response time of one request; warning 1 s, critical 5 s by default; TLS
    certificate expiry warning 14 d, critical 7 d."""

    type: ClassVar[str] = "http"
    Config: ClassVar[ConfigClass] = config_schema("http", "HttpConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("response_seconds", "request sent to last body byte, redirects "
                        "included", True, 1.0, 5.0, primary=True),
        MeasurementSpec("status_code", "HTTP status of the final response"),
        MeasurementSpec("body_bytes", "size of the final response body (decoded)"),
        MeasurementSpec("tls_expiry_seconds", "seconds until the server certificate expires",
                        higher_is_worse=False, warning=14 * DAY, critical=7 * DAY),
        MeasurementSpec("up", "1 when the response was as expected, 0 otherwise",
                        higher_is_worse=False),
        MeasurementSpec("tls_chain_expiry_seconds", "seconds until the first certificate the "
                        "server presents (leaf or intermediate) expires",
                        higher_is_worse=False, warning=14 * DAY, critical=7 * DAY),
        MeasurementSpec("tls_hostname_match", "1 when the server certificate names the URL's "
                        "host, 0 when not (seen even with insecure: true)",
                        False, None, 0),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: HttpConfig,
        opener: Opener = socket.create_connection,
        peer_chain: Callable[..., list[tls_info.CertInfo]] = tls_info.peer_chain,
        clock: Callable[[], float] = time.perf_counter,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        """``opener`` opens a TCP connection as ``socket.create_connection`` does;
        ``peer_chain``, ``clock`` and ``now`` are the separate TLS look, the timer and
        the time of day."""
        self.config = config
        self._fetcher = Fetcher(self._tls_context, opener)
        self._context: ssl.SSLContext | None = None
        self._handshake: tuple[str | None, int, bytes | None, list[bytes]] | None = None
        self._chain: list[tls_info.CertInfo] = []
        self._peer_chain = peer_chain
        self._clock = clock
        self._now = now
        self._ranges = [parse_status(s) for s in config.expect_status]

    @property
    def _verify(self) -> bool | str:
        cfg = self.config
        return False if cfg.insecure else (str(cfg.ca_file) if cfg.ca_file else True)

    def _tls_context(self) -> ssl.SSLContext:
        """This instance's client context, built on first use (a plain http check
        that never meets https never loads a CA bundle). Its sockets remember their
        handshake in ``self._handshake``: (server name, port, DER certificate, DER of
        every certificate presented)."""
        if self._context is None:
            context = tls_info.client_context(
                default_trust() if self._verify is True else self._verify)
            check = self

            class Recording(ssl.SSLSocket):
                def do_handshake(self, block: bool = False) -> None:
                    super().do_handshake(block)
                    check._handshake = (self.server_hostname, self.getpeername()[1],
                                        self.getpeercert(binary_form=True),
                                        tls_info.presented_chain(self))

            context.sslsocket_class = Recording  # documented hook of ssl.SSLContext
            self._context = context
        return self._context

    def run(self, ctx: RunContext) -> Result:
        cfg = self.config
        timeout = cfg.timeout or DEFAULT_TIMEOUT
        diagnostics: dict[str, Any] = {"request": f"{cfg.method} {cfg.url}"}
        headers = {k: v.reveal() if isinstance(v, Secret) else v for k, v in cfg.headers.items()}
        self._handshake = None
        self._chain = []
        started = self._clock()
        try:
            response = self._fetcher.fetch(cfg.method, cfg.url, headers, cfg.body, timeout,
                                           cfg.follow_redirects, BODY_LIMIT)
            elapsed = max(0.0, self._clock() - started)
        except FETCH_ERRORS as exc:
            diagnostics["error"] = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ssl.SSLError):
                # Show who presented the rejected certificate (self-signed? expired?).
                self._add_tls(diagnostics, cfg.url, timeout)
            down = Measurement("up", 0.0)
            ctx.judge(down)
            summary = f"{cfg.url} {failure_text(exc, timeout)} on {ctx.hostname}"
            return Result(Status.CRITICAL, summary, (down,), diagnostics)
        return self._judge(ctx, response, elapsed, timeout, diagnostics)

    def _judge(self, ctx: RunContext, response: Response, elapsed: float,
               timeout: float, diagnostics: dict[str, Any]) -> Result:
        cfg = self.config
        body = response.body
        encoding = _codec(response.encoding)
        text = body.decode(encoding, "replace")
        diagnostics.update(
            status_line=_status_line(response),
            headers=_headers(response.headers),
            # "ignore" drops a character cut in half, so the excerpt stays <= 2 KiB.
            body_excerpt=body[:EXCERPT_BYTES].decode(encoding, "ignore"),
            redirects=[{"status": r.status, "url": r.url, "location": r.location}
                       for r in response.history],
        )
        if response.history:
            diagnostics["final_url"] = response.url
        code = response.status
        problem = None
        if not any(lo <= code <= hi for lo, hi in self._ranges):
            expected = ", ".join(str(s) for s in cfg.expect_status)
            problem = f"returned {code} (expected {expected})"
        elif cfg.body_match and not re.search(cfg.body_match, text):
            problem = f"returned {code} but the body does not match {cfg.body_match!r}"
        elif cfg.body_not_match and (found := re.search(cfg.body_not_match, text)):
            problem = f"returned {code} with {found.group(0)[:80]!r} in the body"
        measurements = [
            Measurement("response_seconds", elapsed),
            Measurement("status_code", float(code)),
            Measurement("body_bytes", float(len(body))),
        ]
        tls_url = cfg.url if cfg.url.startswith("https:") else response.url
        cert = self._live_tls(diagnostics, tls_url)
        if cert is None:
            cert = self._add_tls(diagnostics, tls_url, timeout)
        left = cert.seconds_left(self._now()) if cert is not None else 0.0
        if cert is not None:
            measurements.append(Measurement("tls_expiry_seconds", left))
            measurements += self._chain_measurements(diagnostics, cert, tls_url)
        measurements.append(Measurement("up", 0.0 if problem else 1.0))
        verdicts = {m.name: ctx.judge(m) for m in measurements}
        where = f"{cfg.url} "
        if problem:
            return Result(Status.CRITICAL, f"{where}{problem} on {ctx.hostname}",
                          tuple(measurements), diagnostics)
        status = Status.worst(*verdicts.values())
        tls_status = Status.worst(*(verdicts.get(n, Status.OK) for n in _TLS_MEASUREMENTS))
        if cert is not None and tls_status.rank > verdicts["response_seconds"].rank:
            summary = where + self._tls_summary(ctx, verdicts, measurements, cert, tls_url)
        else:
            note = limit_note(ctx.evaluator.levels("response_seconds"),
                              verdicts["response_seconds"], elapsed)
            summary = (f"{where}returned {code} in {format_duration(elapsed)} on "
                       f"{ctx.hostname}{note}")
        return Result(status, summary, tuple(measurements), diagnostics)

    def _chain_measurements(self, diagnostics: dict[str, Any], cert: tls_info.CertInfo,
                            url: str) -> list[Measurement]:
        """The presented chain's soonest expiry (from the request's own handshake, or
        the separate one) and whether the leaf names the URL's host."""
        now = self._now()
        chain = self._chain or [cert]
        soonest = min(chain, key=lambda c: c.seconds_left(now))
        diagnostics["tls_chain"] = self._chain_dicts(chain)
        host = urlsplit(url).hostname or ""
        return [Measurement("tls_chain_expiry_seconds", soonest.seconds_left(now)),
                Measurement("tls_hostname_match", float(tls_info.matches_host(cert, host)))]

    def _tls_summary(self, ctx: RunContext, verdicts: dict[str, Status],
                     measurements: list[Measurement], cert: tls_info.CertInfo,
                     url: str) -> str:
        """The TLS problem that decides the status: a certificate for another host,
        the leaf's expiry, or an intermediate's that expires sooner."""
        values = {m.name: m.value for m in measurements}
        host = ctx.hostname
        worst = Status.worst(*(verdicts.get(n, Status.OK) for n in _TLS_MEASUREMENTS))
        if verdicts.get("tls_hostname_match") is worst:
            names = ", ".join(cert.names[:4]) or "no names"
            return (f"TLS certificate does not name {urlsplit(url).hostname} on {host} "
                    f"(it names {names})")
        name = "tls_expiry_seconds"
        if verdicts.get(name) is not worst:
            name = "tls_chain_expiry_seconds"
        left = values[name]
        note = limit_note(ctx.evaluator.levels(name), worst, left)
        if name == "tls_expiry_seconds":
            return f"TLS certificate {tls_info.describe_expiry(left)} on {host}{note}"
        now = self._now()
        soonest = min(self._chain or [cert], key=lambda c: c.seconds_left(now))
        who = soonest.common_name or soonest.subject
        return (f"TLS chain certificate {who!r} {tls_info.describe_expiry(left)} on "
                f"{host}{note}")

    def _live_tls(self, diagnostics: dict[str, Any], url: str) -> tls_info.CertInfo | None:
        """The certificate this run's last handshake received, when that handshake was
        with ``url``'s host and port (the final response's connection: requests are
        sequential); None otherwise (a proxy, a reused connection, plain http), and
        then the separate handshake runs."""
        parts = urlsplit(url)
        seen = self._handshake
        if parts.scheme != "https" or seen is None or not seen[2]:
            return None
        if (seen[0] or "").lower() != parts.hostname or seen[1] != (parts.port or 443):
            return None
        try:
            cert = tls_info.from_der(seen[2])
            self._chain = [tls_info.from_der(der) for der in seen[3]]
        except (ImportError, ValueError):
            return None
        diagnostics["tls"] = cert.as_dict()
        return cert

    def _add_tls(self, diagnostics: dict[str, Any], url: str,
                 timeout: float) -> tls_info.CertInfo | None:
        """Peer certificate of an https URL into diagnostics (and returned); a failure
        is noted, not raised: the request itself already succeeded or failed."""
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            return None
        try:
            chain = self._peer_chain(parts.hostname, parts.port or 443,
                                     verify=False, timeout=timeout)
        except (OSError, ImportError, ValueError) as exc:
            diagnostics["tls_error"] = f"{type(exc).__name__}: {exc}"
            return None
        self._chain = chain
        diagnostics["tls"] = chain[0].as_dict()
        diagnostics["tls_chain"] = self._chain_dicts(chain)
        return chain[0]

    def _chain_dicts(self, chain: list[tls_info.CertInfo]) -> list[dict[str, Any]]:
        now = self._now()
        return [{**c.as_dict(), "seconds_left": c.seconds_left(now)} for c in chain]

