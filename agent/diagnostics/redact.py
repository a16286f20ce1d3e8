"""Secret redaction for everything the agent captures at breach.

:func:`redact` returns a JSON-safe copy of any JSON-like structure with secrets
replaced by ``***``. It runs centrally on every diagnostics document, so checks and
collectors need not (and cannot be trusted to) clean their own output.

What counts as a secret *name* (dict keys, ``KEY=value`` pairs, ``--option value``):
the name is split into lower-case words on ``_ - .``, spaces and camelCase humps.

* It is secret if it contains, anywhere (also glued, as in ``PGPASSWORD``),
  ``password``, ``passwd``, ``passphrase``, ``secret``, ``credential``, ``apikey``,
  ``privatekey``, ``accesskey``, ``authorization``.
* Or if its LAST word is ``token``, ``pass``, ``pwd``, ``auth``, ``cookie``, or ``key``
  right after a qualifier (``api``, ``access``, ``private``, ``secret``, ``signing``,
  ``encryption``, ``master``, ``client``, ``session``, ``auth``, ``ssh``, ``license``).
  So ``GITHUB_TOKEN``, ``DB_PASS``, ``MYSQL_PWD``, ``X-Auth-Token``, ``api_key`` are
  secret, while ``tokens_used``, ``max_tokens``, ``token_count``, ``auth_method``,
  ``keyboard``, ``sort_key`` and ``primary_key`` are not: a counter or a setting
  *about* a secret is not one, and over-redacting them would blind the diagnosis.
* ``PWD``/``OLDPWD`` holding an absolute path is the shell's working directory, not
  an ODBC password, and is kept.

Under a secret dict key, strings and numbers become ``***`` (containers keep their
shape with every leaf blanked); ``None`` and booleans are kept, since "no password
set" is a useful fact and reveals nothing.

In free text: URL/DSN passwords (``scheme://user:PASSWORD@host``), ``key=value`` and
``key: value`` pairs (libpq keyword DSNs, environment dumps, query strings, ODBC
``PWD=...;``, JSON fragments), ``--option value`` command-line arguments,
``Authorization: <scheme> <credential>`` and bare ``Bearer <token>``. Known literal
secret values (the config's ``Secret`` fields) are scrubbed wherever they appear,
also percent-encoded; values shorter than 4 characters are not scrubbed as
literals (replacing every "a" would destroy the text), they still fall to the
rules above. Redaction is idempotent, and linear in the text (names are capped at
128 characters, URL schemes at 32) so a 200 KB log line cannot stall a capture.

URL query parameters are judged by their own list as well, because in a query
``?key=``, ``?sig=`` or ``?signature=`` is a credential even though ``key`` in free text
is not: :data:`QUERY_NAMES` plus the names configured in ``agent.secret_names``
(which also count as secret names everywhere else).

:class:`Policy` bundles the rules with the literal secrets and configured names so
that every boundary (the check runner, diagnostics capture, ``patrol check``, the
agent's log handler) applies the same policy, built once per config.

Not recognised (pass the value as a literal secret instead): mysql's glued
``-pSECRET``, a token used as a bare URL user name (``https://TOKEN@host``), and a
password given as a positional argument.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

MASK = "***"
# Query parameter names that carry credentials in URLs (presigned URLs, webhook keys).
QUERY_NAMES = frozenset({"token", "key", "password", "passwd", "secret", "signature", "sig",
                         "auth", "api_key", "apikey", "access_token", "x-amz-signature",
                         "x-goog-signature", "x-amz-security-token", "client_secret"})

_GLUED = ("password", "passwd", "passphrase", "secret", "credential", "apikey",
          "privatekey", "accesskey", "authorization")
_LAST_WORD = frozenset({"token", "pass", "pwd", "auth", "cookie"})
_KEY_QUALIFIERS = frozenset({"api", "access", "private", "secret", "signing", "encryption",
                             "master", "client", "session", "auth", "ssh", "license"})
_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+")

# scheme://user:password@host — password may contain '@' (greedy to the last one).
_URL_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s/:@?#]*:)"
                           r"(?P<pw>[^\s/?#]*)@")
_AUTH_SCHEMES = r"(?i:Bearer|Basic|Digest|Token|Negotiate|NTLM|ApiKey|AWS4-HMAC-SHA256)"
_QUOTED_OR_WORD = r"""(?:"[^"]*"|'[^']*'|[^\s;&'"]+)"""
# key=value, key: value, "key": "value"; the optional scheme keeps "Bearer" visible;
# a value never starts with "//", so "https://..." is not swallowed as https's value.
_KEY_SEP = re.compile(
    r"""(?<![\w.])(?P<q>["']?)(?P<key>[A-Za-z_][\w.-]{0,127})(?P=q)(?P<sep>[ \t]*[=:][ \t]*)"""
    r"(?!//)"
)
_VALUE = re.compile(rf"(?P<scheme>{_AUTH_SCHEMES}[ \t]+)?(?P<value>{_QUOTED_OR_WORD})")
# --password value / -token value (the "=" form is a pair, above).
_OPTION = re.compile(
    r"""(?<![\w-])(?P<opt>--?(?P<name>[A-Za-z][\w.-]{0,127}))(?P<sp>[ \t]+)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s"'-]\S*)"""
)
_BEARER = re.compile(r"\bBearer[ \t]+[A-Za-z0-9._~+/=-]+")
# ?name=value or &name=value inside a URL (also HTML-escaped &amp;).
_QUERY = re.compile(r"(?P<head>(?:[?&]|&amp;)(?P<name>[A-Za-z0-9_.~%-]{1,128})=)"
                    r"(?P<value>[^&#\s'\"<>]*)")


def _words(name: str) -> list[str]:
    return [w.lower() for w in _WORD_SPLIT.split(_HUMP.sub(" ", name)) if w]


def is_secret_name(name: str, extra: frozenset[str] = frozenset()) -> bool:
    """Whether a key, variable or option name names a secret (rules in the module doc);
    ``extra`` holds configured names (lower case) that count as secret as well."""
    if extra and name.lower() in extra:
        return True
    words = _words(name)
    if not words:
        return False
    glued = "".join(words)
    if any(part in glued for part in _GLUED):
        return True
    last = words[-1]
    if last in _LAST_WORD:
        return True
    if last == "key" and len(words) > 1 and words[-2] in _KEY_QUALIFIERS:
        return True
    return last in {"apikey", "privatekey", "accesskey"}


def _is_working_dir(key: str, value: str) -> bool:
    return key.upper() in {"PWD", "OLDPWD"} and value.strip("'\"").startswith("/")


def _mask_value(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[0] + MASK + value[0]
    return MASK


def _pairs(text: str, extra: frozenset[str]) -> str:
    """Mask secret ``key=value`` pairs. The value is matched only after the key is
    known to be secret (scanning every value would be quadratic on long lines), and
    a non-secret pair's value is scanned again, so ``url=https://h/?token=x`` still
    loses its token."""
    out: list[str] = []
    pos = 0
    while match := _KEY_SEP.search(text, pos):
        key = match["key"]
        value = _VALUE.match(text, match.end()) if is_secret_name(key, extra) else None
        if (value is None or _is_working_dir(key, value["value"])
                or value["value"].startswith(MASK)):  # masked by the query rule already
            out.append(text[pos:match.end()])
            pos = match.end()
            continue
        out.append(text[pos:match.end()])
        out.append(f"{value['scheme'] or ''}{_mask_value(value['value'])}")
        pos = value.end()
    out.append(text[pos:])
    return "".join(out)


def _option(match: re.Match[str], extra: frozenset[str]) -> str:
    name = match["name"]
    if name.lower().startswith("no-") or not is_secret_name(name, extra):
        return match[0]
    return f"{match['opt']}{match['sp']}{_mask_value(match['value'])}"


def _query(match: re.Match[str], extra: frozenset[str]) -> str:
    name = match["name"]
    if not match["value"] or not (name.lower() in QUERY_NAMES or is_secret_name(name, extra)):
        return match[0]
    return f"{match['head']}{MASK}"


def _literals(secrets: Iterable[Any]) -> list[str]:
    """Literal secrets, longest first; ``Secret`` objects are revealed here only."""
    found: set[str] = set()
    for raw in secrets:
        secret = raw.reveal() if hasattr(raw, "reveal") else str(raw)
        if len(secret) < 4:
            continue
        found.add(secret)
        found.add(quote(secret, safe=""))
    return sorted(found, key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[Any] = (), names: Iterable[str] = ()) -> str:
    """``text`` with every secret the rules (or the literal ``secrets``) find masked."""
    return _redact_text(text, _literals(secrets), _names(names))


def _names(names: Iterable[str]) -> frozenset[str]:
    return frozenset(n.strip().lower() for n in names if n.strip())


def _redact_text(text: str, literals: list[str], extra: frozenset[str] = frozenset()) -> str:
    for literal in literals:
        text = text.replace(literal, MASK)
    text = _URL_USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)
    text = _QUERY.sub(lambda m: _query(m, extra), text)
    text = _pairs(text, extra)
    text = _OPTION.sub(lambda m: _option(m, extra), text)
    return _BEARER.sub(f"Bearer {MASK}", text)


def _blank(value: Any) -> Any:
    """Every leaf of a value stored under a secret key, masked (None/bool kept)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, dict):
        return {str(k): _blank(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_blank(v) for v in value]
    return MASK


def redact(obj: Any, secrets: Iterable[Any] = (), names: Iterable[str] = ()) -> Any:
    """A JSON-safe copy of ``obj`` with secrets masked.

    Dicts, lists and tuples are walked (tuples become lists, keys become strings);
    ints, floats, bools and None pass through; any other object is turned into its
    ``str()`` and redacted as text, so the result always serialises.
    """
    return _walk(obj, _literals(secrets), _names(names))


def _walk(obj: Any, literals: list[str], extra: frozenset[str] = frozenset()) -> Any:
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    if isinstance(obj, str):
        return _redact_text(obj, literals, extra)
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            name = _redact_text(str(key), literals, extra)
            if is_secret_name(str(key), extra) and not (
                isinstance(value, str) and _is_working_dir(str(key), value)
            ):
                out[name] = _blank(value)
            else:
                out[name] = _walk(value, literals, extra)
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_walk(v, literals, extra) for v in obj]
    return _redact_text(str(obj), literals, extra)


@dataclass(frozen=True)
class Policy:
    """One redaction policy: the rules above, the config's literal secrets and its
    configured secret names. Built once per loaded config and handed to every place
    where data leaves a check, so no sink can apply a weaker version of it."""

    literals: tuple[str, ...] = ()
    names: frozenset[str] = frozenset()

    @classmethod
    def build(cls, secrets: Iterable[Any] = (), names: Iterable[str] = ()) -> Policy:
        return cls(tuple(_literals(secrets)), _names(names))

    def merged(self, secrets: Iterable[Any]) -> Policy:
        """This policy plus more literal secrets (a check's own Secret fields)."""
        return Policy(tuple(sorted(set(self.literals) | set(_literals(secrets)),
                                   key=len, reverse=True)), self.names)

    def text(self, text: str) -> str:
        return _redact_text(text, list(self.literals), self.names)

    def data(self, obj: Any) -> Any:
        return _walk(obj, list(self.literals), self.names)


class RedactingFilter(logging.Filter):
    """A log filter that renders each record's message and masks it with a policy,
    so a check (or a library it calls) that logs a URL cannot leak a token to the log."""

    def __init__(self, policy: Policy) -> None:
        super().__init__()
        self.policy = policy

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for logging to report
            return True
        cleaned = self.policy.text(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.policy.text(record.exc_text)
        record.msg, record.args = cleaned, None
        return True



def install_log_redaction(policy: Policy, logger: logging.Logger | None = None) -> None:
    """Mask every record that reaches ``logger``'s handlers (the root's by default)
    with ``policy``, replacing the filter a previous config installed."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(RedactingFilter(policy))
