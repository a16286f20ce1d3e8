"""One request of the ``http`` check, redirects included, on the standard library's
``http.client``.

Why not ``requests``: the check sends one request per run (plus its redirects) and
reads one body, which ``http.client`` does in this module, while ``requests`` (with
urllib3, idna, charset_normalizer, certifi) added ~5 MiB PSS and its per-request
machinery to every agent with an http check (issue 10, item 5; the pusher made the
same move in agent/collector_http.py).

What is kept from ``requests``, so a check behaves as it did:

- redirects (301, 302, 303, 307, 308) are followed up to 30 times (requests' limit),
  then :class:`TooManyRedirects`; 301/302 (not for HEAD) and 303 turn the request
  into a body-less GET as requests does (301 only for POST); 307/308 keep method and
  body. ``Authorization`` is dropped when a redirect leaves the host (or changes
  scheme or port, except http:80 to https:443), as requests' ``should_strip_auth``;
- cookies set by a redirect response are sent to the same host for the rest of the
  run (names and values only: a run is a few requests, not a browser), never to the
  next run; a ``Cookie`` header in the check's ``headers`` wins, as in requests;
- ``Accept-Encoding: gzip, deflate``, and the body is decoded (``body_bytes`` is the
  decoded size, read up to ``limit`` bytes, decompression bounded too);
- ``user:password@`` in the URL becomes basic authentication;
- the proxies of the environment (``http_proxy``, ``https_proxy``, ``all_proxy``,
  ``no_proxy``, lower case first, as ``urllib``): plain http through the proxy with
  an absolute URI, https through a CONNECT tunnel;
- connections to one origin are reused within a run (a same-origin redirect costs
  no second handshake) and all are closed when the run ends.

Not kept: ``.netrc`` credentials, CIDR entries in ``no_proxy``, IDNA 2008 (the
standard library encodes non-ASCII host names with IDNA 2003, ``encodings.idna``).
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, quote, unquote, urljoin, urlsplit

from patrol.contract.wire_basics import PATROL_VERSION

MAX_REDIRECTS = 30  # requests' default
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE = "!#$%&'()*+,/:;=?@[]~"  # what requests' requote_uri leaves alone
_DEFAULT_HEADERS = {"User-Agent": f"patrol-agent/{PATROL_VERSION}", "Accept": "*/*",
                    "Accept-Encoding": "gzip, deflate"}
_BODY_HEADERS = frozenset({"content-length", "content-type", "transfer-encoding"})
Opener = Callable[..., socket.socket]  # socket.create_connection's shape


class TooManyRedirects(Exception):
    """More than :data:`MAX_REDIRECTS` redirects in one run."""


# What a failed fetch raises: socket and TLS errors (OSError), a broken HTTP answer,
# a redirect loop, a URL or header http.client rejects, a body that does not inflate.
FETCH_ERRORS = (OSError, http.client.HTTPException, TooManyRedirects, ValueError, zlib.error)


@dataclass(frozen=True)
class Hop:
    """A redirect response on the way: its status, the URL asked, where it pointed."""

    status: int
    url: str
    location: str | None


@dataclass(frozen=True)
class Response:
    """The final response: ``headers`` keep the server's spelling of the first
    occurrence, repeated headers joined with ", " (as requests shows them)."""

    url: str
    status: int
    reason: str
    version: int
    headers: dict[str, str]
    body: bytes
    encoding: str | None
    history: list[Hop] = field(default_factory=list)


def encoding_of(message: http.client.HTTPMessage) -> str | None:
    """The body's charset as ``requests`` guesses it from the headers: the
    ``charset`` parameter, else ISO-8859-1 for text/*, utf-8 for JSON, else None."""
    if message.get("Content-Type") is None:
        return None
    charset = message.get_content_charset()
    if charset:
        return charset.strip("'\"")
    kind = message.get_content_type()
    if kind.startswith("text/"):
        return "ISO-8859-1"
    return "utf-8" if kind == "application/json" else None


def proxy_for(parts: SplitResult, environ: Mapping[str, str] = os.environ) -> SplitResult | None:
    """The environment's proxy for ``parts`` (scheme://host), None for a direct
    connection."""
    def env(name: str) -> str:
        return environ.get(name) or environ.get(name.upper()) or ""

    host = (parts.hostname or "").lower()
    for entry in env("no_proxy").replace(" ", "").split(","):
        entry = entry.lower().lstrip(".").split(":")[0]
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
    value = env(f"{parts.scheme}_proxy") or env("all_proxy")
    if not value:
        return None
    proxy = urlsplit(value if "://" in value else f"http://{value}")
    return proxy if proxy.hostname else None


def _basic(user: str | None, password: str | None) -> str:
    pair = f"{unquote(user or '')}:{unquote(password or '')}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _origin(parts: SplitResult) -> tuple[str, str, int]:
    return parts.scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS[parts.scheme]


def strips_auth(old: SplitResult, new: SplitResult) -> bool:
    """Whether a redirect from ``old`` to ``new`` must drop ``Authorization``
    (requests' ``should_strip_auth``)."""
    (old_scheme, old_host, old_port), (new_scheme, new_host, new_port) = _origin(old), _origin(new)
    if old_host != new_host:
        return True
    if (old_scheme, old_port, new_scheme, new_port) == ("http", 80, "https", 443):
        return False
    return (old_scheme, old_port) != (new_scheme, new_port)


def _inflater(coding: str, first: bytes) -> Any:
    """A decompressor for the body's ``Content-Encoding``; None for identity.
    "deflate" is zlib-wrapped by the standard, raw from some servers: the first two
    bytes tell (a zlib header is a multiple of 31 with method 8)."""
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and int.from_bytes(first[:2]) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
    return None


def _read(response: http.client.HTTPResponse, limit: int) -> bytes:
    """The body, decoded (gzip, deflate), at most ``limit`` bytes of it."""
    coding = (response.getheader("Content-Encoding") or "").strip().lower()
    inflate: Any = None
    out = bytearray()
    while len(out) < limit:
        chunk = response.read(65536)
        if not chunk:
            if inflate is not None:
                out += inflate.flush()
            break
        if inflate is None and coding:
            inflate = _inflater(coding, chunk)
        out += chunk if inflate is None else inflate.decompress(chunk, limit - len(out))
    return bytes(out[:limit])


def _redirected(status: int, method: str, data: bytes | None, headers: dict[str, str],
                strip_auth: bool) -> tuple[str, bytes | None, dict[str, str]]:
    """Method, body and headers of the request a redirect asks for (requests'
    ``rebuild_method``, ``rebuild_auth`` and its purge of the body's headers)."""
    drop = {"authorization"} if strip_auth else set()
    if (status in (302, 303) and method != "HEAD") or (status == 301 and method == "POST"):
        method, data = "GET", None
        drop |= _BODY_HEADERS
    return method, data, {k: v for k, v in headers.items() if k.lower() not in drop}


class Fetcher:
    """Sends a request and follows its redirects, on connections opened for this
    call alone. ``context()`` gives the TLS context (called on the first https
    connection); ``opener`` opens the TCP connection (``socket.create_connection``)."""

    def __init__(self, context: Callable[[], ssl.SSLContext],
                 opener: Opener = socket.create_connection) -> None:
        self._context = context
        self._opener = opener

    def fetch(self, method: str, url: str, headers: Mapping[str, str], body: str | None,
              timeout: float, follow: bool, limit: int) -> Response:
        """The final response; raises one of :data:`FETCH_ERRORS`."""
        connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}
        given = {name.lower() for name in headers}
        sent = {k: v for k, v in _DEFAULT_HEADERS.items() if k.lower() not in given}
        sent.update(headers)
        parts = urlsplit(url)
        if parts.username or parts.password:  # the URL's credentials win, as in requests
            sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
            sent["Authorization"] = _basic(parts.username, parts.password)
        data = body.encode() if body is not None else None
        cookies: dict[str, dict[str, str]] = {}
        history: list[Hop] = []
        try:
            while True:
                response = self._send(connections, method, parts, sent, data, cookies, timeout)
                location = response.getheader("Location")
                if not (follow and response.status in REDIRECTS and location):
                    return Response(parts.geturl(), response.status, response.reason,
                                    response.version, _merged(response.msg),
                                    _read(response, limit), encoding_of(response.msg), history)
                history.append(Hop(response.status, parts.geturl(), location))
                _read(response, 65536)
                if not response.isclosed():  # a big redirect body: not worth reading on
                    connections.pop(_origin(parts)).close()
                if len(history) > MAX_REDIRECTS:
                    raise TooManyRedirects(f"exceeded {MAX_REDIRECTS} redirects")
                for raw in response.msg.get_all("Set-Cookie") or []:
                    name, _, value = raw.split(";", 1)[0].strip().partition("=")
                    cookies.setdefault(_origin(parts)[1], {})[name] = value
                new = urlsplit(urljoin(parts.geturl(), location))
                if new.scheme not in _DEFAULT_PORTS or not new.hostname:
                    raise http.client.InvalidURL(f"redirect to {location!r}")
                method, data, sent = _redirected(response.status, method, data, sent,
                                                 strips_auth(parts, new))
                parts = new
        finally:
            for connection in connections.values():
                connection.close()

    def _send(self, connections: dict[tuple[str, str, int], http.client.HTTPConnection],
              method: str, parts: SplitResult, headers: dict[str, str], data: bytes | None,
              cookies: dict[str, dict[str, str]], timeout: float) -> http.client.HTTPResponse:
        key = _origin(parts)
        proxy = proxy_for(parts)
        connection = connections.get(key)
        if connection is None:
            connection = self._connect(parts, proxy, timeout)
            connections[key] = connection
        headers = dict(headers)
        jar = cookies.get(key[1])
        if jar and not any(k.lower() == "cookie" for k in headers):
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        target = quote(parts.path or "/", safe=_SAFE)
        if parts.query:
            target += "?" + quote(parts.query, safe=_SAFE)
        if proxy is not None and parts.scheme == "http":
            target = f"http://{parts.netloc.rpartition('@')[2]}{target}"
            if proxy.username:
                headers["Proxy-Authorization"] = _basic(proxy.username, proxy.password)
        connection.request(method, target, body=data, headers=headers)
        return connection.getresponse()

    def _connect(self, parts: SplitResult, proxy: SplitResult | None,
                 timeout: float) -> http.client.HTTPConnection:
        host, port = parts.hostname or "", parts.port or _DEFAULT_PORTS[parts.scheme]
        via = (proxy.hostname or "", proxy.port or 80) if proxy is not None else (host, port)
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(*via, timeout=timeout,
                                                     context=self._context())
            if proxy is not None:
                auth = ({"Proxy-Authorization": _basic(proxy.username, proxy.password)}
                        if proxy.username else None)
                connection.set_tunnel(host, port, headers=auth)
        else:
            connection = http.client.HTTPConnection(*via, timeout=timeout)
        # http.client's documented-in-source hook for opening the socket (tests give
        # one that fails as a resolver would, without asking a DNS server).
        connection._create_connection = self._opener  # type: ignore[attr-defined]
        return connection


def _merged(message: http.client.HTTPMessage) -> dict[str, str]:
    out: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, value in message.items():
        first = names.setdefault(name.lower(), name)
        out[first] = f"{out[first]}, {value}" if first in out else value
    return out
