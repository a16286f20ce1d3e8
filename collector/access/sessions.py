"""Web login sessions: a signed, HttpOnly, SameSite cookie that is not a token.

The cookie holds a random 256-bit session id and its HMAC-SHA256 under a key kept in
the store (``collector_keys``, made by the first collector that needs it, so every
replica on the database and every restart accepts the same cookies). The store keeps
only the id's SHA-256, the operator's name, a CSRF token and the expiry; logging out
revokes the row, so a copied cookie dies with the session. The signature lets a
forged or truncated cookie be refused without a query. Signing uses the standard
library's ``hmac``: one MAC over one string needs no dependency.

The JSON API never reads this cookie (:func:`collector.access.auth.presented_token`).

Every form a page posts carries the session's CSRF token; :meth:`Sessions.check_csrf`
compares it in constant time, and a request whose ``Origin`` names another site is
refused before that.

One-time login codes (what ``patrol up`` prints instead of the token) are credentials
of kind ``login_code``: redeeming one revokes it in the same statement, so a code works
exactly once, and it expires after :data:`LOGIN_CODE_SECONDS` anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from patrol.collector.access.identity import LOGIN_CODE, digest, live, new_token

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketStore

COOKIE = "patrol_session"
SESSION_SECONDS = 12 * 3600
LOGIN_CODE_SECONDS = 7 * 86400
_KEY_NAME = "web-session-hmac"


@dataclass(frozen=True)
class Session:
    operator: str
    csrf: str
    session_sha256: str


class Sessions:
    """Starts, finds and ends web sessions in ``store``."""

    def __init__(self, store: TicketStore) -> None:
        self.store = store
        self._key: bytes | None = None

    def _signing_key(self) -> bytes:
        if self._key is None:
            with self.store.transaction() as tx:
                value = tx.ensure_collector_key(_KEY_NAME, secrets.token_hex(32))
            self._key = bytes.fromhex(value)
        return self._key

    def _sign(self, session_id: str) -> str:
        return hmac.new(self._signing_key(), session_id.encode(), hashlib.sha256).hexdigest()

    def start(self, operator: str, now: float) -> str:
        """A new session for ``operator``; the cookie value to set."""
        session_id = secrets.token_urlsafe(32)
        with self.store.transaction() as tx:
            tx.add_web_session(digest(session_id), operator, secrets.token_urlsafe(32),
                               now, now + SESSION_SECONDS)
        return f"{session_id}.{self._sign(session_id)}"

    def find(self, cookie: str | None, now: float) -> Session | None:
        if not cookie or "." not in cookie or len(cookie) > 200:
            return None
        session_id, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(self._sign(session_id), signature):
            return None
        row = self.store.web_session(digest(session_id))
        if row is None or row["revoked_at"] is not None or row["expires_at"] <= now:
            return None
        return Session(row["operator"], row["csrf"], row["session_sha256"])

    def end(self, session: Session, now: float) -> None:
        with self.store.transaction() as tx:
            tx.end_web_session(session.session_sha256, now)

    @staticmethod
    def check_csrf(session: Session, given: str | None) -> bool:
        return given is not None and bool(given) and \
            hmac.compare_digest(session.csrf.encode(), given.encode())

    # -- one-time login codes --------------------------------------------------------

    def issue_login_code(self, operator: str, now: float,
                         lifetime: float = LOGIN_CODE_SECONDS) -> str:
        code = new_token(LOGIN_CODE)
        with self.store.transaction() as tx:
            tx.add_credential(LOGIN_CODE, operator, digest(code), [], now, "patrol up",
                              now + lifetime)
        return code

    def redeem_login_code(self, code: str, now: float) -> str | None:
        """The operator the code logs in, once; None if it is unknown, used or expired."""
        row = self.store.credential_by_hash(digest(code))
        if row is None or row["kind"] != LOGIN_CODE or not live(row, now):
            return None
        with self.store.transaction() as tx:
            if not tx.revoke_credential(row["id"], now):
                return None  # redeemed by someone else meanwhile
        return row["name"]
