"""HTTP for adapters, with vendor failures mapped to retryable vs permanent at the
boundary.

==========================================  ==========================================
what happened                               raised
==========================================  ==========================================
connection refused, reset, connect timeout  TemporaryError
sent, but no answer in time (read timeout)  TemporaryError(retry_after=60 s)
429                                         TemporaryError(retry_after=Retry-After)
408, 409 (edit conflict), 5xx               TemporaryError
401, 403                                    PermanentError ("check the credentials")
400, 404, 405, 410, 413, 415, 422           PermanentError (with the vendor's message)
==========================================  ==========================================

Vendor error bodies are cut to 500 characters and never include our request (which
may carry credentials in headers).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

import requests
from pydantic import SecretStr

from patrol.ticketing_bridge.protocol import PermanentError, TemporaryError
from patrol.ticketing_bridge.settings import AdapterSettings

# connect, read. The read timeout is long because the dispatcher keeps a slow call's
# lease renewed: giving up early on a helpdesk that is slow but working would only
# leave the outcome unknown and invite a second ticket.
TIMEOUT = (5.0, 90.0)
# After a read timeout the request may still complete in the helpdesk: retry no
# sooner than this, so that the retry's find() sees the ticket it may have created.
UNKNOWN_OUTCOME_WAIT = 60.0
RETRY_AFTER_CAP = 3600.0


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when - (now if now is not None else time.time())), RETRY_AFTER_CAP)


def _excerpt(response: requests.Response) -> str:
    text = (response.text or "").strip().replace("\n", " ")
    return text[:500] + ("..." if len(text) > 500 else "")


def idempotency_key(fingerprint: str, payload: Any) -> str:
    """An ``Idempotency-Key`` for a request that creates something: the same for a
    resend of the same request (a retry after a crash or a lease takeover), so a
    helpdesk or receiver that honours the header creates nothing twice. The payload's
    digest is part of it because such servers refuse a reused key with a different
    body; a changed request then simply counts as a new one (and ``find`` guards it)."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
    return f"{fingerprint[:200]}.{digest.hexdigest()[:16]}"


def token_or_basic(token: SecretStr | None, scheme: str, username: str | None,
                   password: SecretStr | None) -> tuple[dict[str, str], tuple[str, str] | None]:
    """``(headers, auth)`` for a helpdesk that takes either a token or a user/password:
    ``Authorization: <scheme> <token>`` when ``token`` is set (it wins), else basic auth.
    Which combinations are allowed is each adapter's config validator's decision."""
    if token is not None:
        return {"Authorization": f"{scheme} {token.get_secret_value()}"}, None
    return {}, (username or "", password.get_secret_value() if password else "")


class HttpClient:
    """A ``requests.Session`` bound to one helpdesk's base URL and credentials."""

    @classmethod
    def for_adapter(cls, settings: AdapterSettings, base_url: str, name: str,
                    session: requests.Session | None = None, *,
                    headers: Mapping[str, str] | None = None,
                    auth: tuple[str, str] | None = None) -> HttpClient:
        """A client with the TLS settings every adapter shares: ``ca_file`` (a CA
        bundle to trust) when set, else ``verify_tls``."""
        return cls(base_url, headers=headers, auth=auth,
                   ca_file=str(settings.ca_file) if settings.ca_file else None,
                   verify=settings.verify_tls, name=name, session=session)

    def __init__(self, base_url: str, headers: Mapping[str, str] | None = None,
                 auth: tuple[str, str] | None = None, ca_file: str | None = None,
                 verify: bool = True, name: str = "helpdesk",
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.session = session or requests.Session()
        self.session.headers.update(headers or {})
        if auth is not None:
            self.session.auth = auth
        # Kept here AND passed with every request: requests lets REQUESTS_CA_BUNDLE or
        # CURL_CA_BUNDLE in the environment override a session's ``verify`` (only an
        # argument of the request itself wins), which would silently drop ca_file.
        self.verify: bool | str = ca_file if ca_file else verify
        self.session.verify = self.verify

    def request(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201, 204),
                **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else f"{self.base_url}/{path.lstrip('/')}"
        kwargs.setdefault("timeout", TIMEOUT)
        kwargs.setdefault("verify", self.verify)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.ReadTimeout as exc:  # sent: the helpdesk may still do it
            limit = kwargs["timeout"]
            read = limit[1] if isinstance(limit, tuple) else limit
            raise TemporaryError(f"{self.name}: {method} {path} sent, but no answer within "
                                 f"{read:g} s", None, UNKNOWN_OUTCOME_WAIT) from exc
        except requests.Timeout as exc:
            raise TemporaryError(f"{self.name}: {method} {path} timed out") from exc
        except (requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            # The request was answered but the answer broke off (a proxy or helpdesk that
            # died mid-response): the helpdesk may have done it, as with a read timeout.
            raise TemporaryError(f"{self.name}: {method} {path} sent, but the answer broke "
                                 f"off ({type(exc).__name__})", None,
                                 UNKNOWN_OUTCOME_WAIT) from exc
        except requests.ConnectionError as exc:
            raise TemporaryError(f"{self.name}: cannot connect to {self.base_url}") from exc
        if response.status_code in expect:
            return response
        raise self.error(method, path, response)

    def error(self, method: str, path: str, response: requests.Response) -> Exception:
        status = response.status_code
        what = f"{self.name}: {method} {path} answered {status}"
        if status == 429:
            wait = retry_after(response.headers.get("Retry-After"))
            return TemporaryError(f"{what} (rate limited)", status, wait)
        if status in (408, 409) or status >= 500:
            return TemporaryError(f"{what}: {_excerpt(response)}", status,
                                  retry_after(response.headers.get("Retry-After")))
        if status in (401, 403):
            return PermanentError(f"{what}: check the credentials and the account's "
                                  f"permissions; {_excerpt(response)}", status)
        return PermanentError(f"{what}: {_excerpt(response)}", status)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise TemporaryError(f"{self.name}: {method} {path} returned a body that is "
                                 "not JSON") from exc
