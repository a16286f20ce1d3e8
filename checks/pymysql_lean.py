"""PyMySQL without ``cryptography`` until a server asks for RSA-based authentication.

PyMySQL imports ``cryptography`` when it is imported (``pymysql/_auth.py``), ~7.6 MiB
PSS of the agent's ~11.5 MiB for PyMySQL, yet uses it only to RSA-encrypt a password:
``sha256_password``, or ``caching_sha2_password``'s full authentication, on a
connection without TLS (over TLS or a unix socket the password is sent as is).
MariaDB has neither plugin; a MySQL account that has one and a cached entry never
needs it either. (PyMySQL already defers PyNaCl, for ed25519, the same way.)

How: :func:`load` imports PyMySQL while a meta-path finder refuses ``cryptography``
to this thread only (other threads import what they like meanwhile); PyMySQL's own
``except ImportError`` then records that it has none. When a server does ask,
PyMySQL raises ``RuntimeError("'cryptography' package is required ...")`` and
:func:`enable_rsa` re-executes ``pymysql._auth`` (``importlib.reload``) so that it
imports ``cryptography`` now; the caller connects again. That names a private
module of PyMySQL, which is the honest cost: should a future PyMySQL import
``cryptography`` elsewhere, or stop raising that RuntimeError, the check still
works and only the memory saving (tested in tests/test_lean_imports.py) is lost.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

_LOCK = threading.Lock()
DEFERRED = "cryptography"


class _RefuseInThisThread:
    """A meta-path finder: ``cryptography`` is not found, for one thread."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if threading.get_ident() == self.thread and name.partition(".")[0] == DEFERRED:
            raise ModuleNotFoundError(f"{name} is deferred until needed", name=name)
        return None  # not ours: the next finder looks


def load() -> None:
    """Import PyMySQL, without ``cryptography`` unless it is loaded already."""
    with _LOCK:
        if "pymysql" in sys.modules or DEFERRED in sys.modules:
            importlib.import_module("pymysql")  # or cryptography is loaded: nothing to save
            return
        finder = _RefuseInThisThread()
        sys.meta_path.insert(0, finder)
        try:
            importlib.import_module("pymysql")
        finally:
            sys.meta_path.remove(finder)


def needs_rsa(exc: BaseException) -> bool:
    """``exc`` is PyMySQL saying it needs ``cryptography`` for this server's auth."""
    return isinstance(exc, RuntimeError) and "'cryptography' package is required" in str(exc)


def enable_rsa() -> bool:
    """Give PyMySQL ``cryptography`` now; False when it is not installed."""
    with _LOCK:
        auth = importlib.import_module("pymysql._auth")
        if getattr(auth, "_have_cryptography", False):
            return True
        if importlib.util.find_spec(DEFERRED) is None:
            return False
        importlib.reload(auth)
        return bool(getattr(auth, "_have_cryptography", False))
