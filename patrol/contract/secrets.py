"""Secrets by reference: ``file:/path`` in any config that takes a token or password.

A secret option may be written three ways: inline (where an operator insists),
``${ENV_VAR}`` (expanded for every string by :func:`patrol.contract.yamlsource.expand_all`
before validation, so it never reaches this module), or ``file:/path``, read here when
the config is loaded. The agent's secrets, the collector's tokens and the helpdesk
adapters' credentials all resolve ``file:`` through :func:`resolve_secret`, so a file
is read the same way and a missing one is reported with the same sentence everywhere.
"""

from __future__ import annotations

from pathlib import Path

FILE_PREFIX = "file:"


def resolve_secret(raw: object) -> str:
    """The secret ``raw`` stands for: the text of ``file:/path``, else ``raw`` itself.

    Whitespace around a file's content (the final newline, a Windows ``\\r\\n``, an
    editor's trailing blank) is dropped: it is never part of a generated token or
    password, and a token could not carry it through an HTTP header anyway. A secret
    that really begins or ends with a blank can still be given inline or through
    ``${ENV_VAR}``. Raises ``ValueError`` with the operator's sentence."""
    if not isinstance(raw, str):
        raise ValueError("expected a string, ${ENV_VAR} or file:/path/to/secret")
    if not raw.startswith(FILE_PREFIX):
        return raw
    path = Path(raw[len(FILE_PREFIX):])
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}; create it or fix "
                         "the path") from None
    except UnicodeDecodeError:
        raise ValueError(f"secret file {path} is not UTF-8 text; write the secret as plain "
                         "text") from None
