"""What a certificate says about itself, for the ``tls_cert`` and ``http`` checks.

One small value type, :class:`CertInfo` (subject, issuer, validity, names), built
from a PEM/DER file or from a live TLS peer, plus the human text for "expires in 5d
3h" / "expired 2d ago".

Decisions:

- Parsing uses ``cryptography``, imported lazily inside the functions (importing
  this module does nothing), because the standard library only decodes a peer
  certificate it has verified; with ``insecure: true`` it returns the DER bytes alone.
- The ``tls_cert`` check fetches the live peer certificate by its own TLS handshake
  to host:port (:func:`peer_chain`). The ``http`` check reads it from its request's
  own handshake (checks/http.py ``_live_tls``) and falls back to :func:`peer_chain`,
  with the same SNI name, only when that handshake was not with the final URL's host
  (a proxy, a redirect elsewhere).
- Times are timezone-aware UTC datetimes; durations are seconds (base unit).
- A look that does not verify uses :func:`unverified_context`: a bare
  ``PROTOCOL_TLS_CLIENT`` context, built once per process. ``create_default_context()``
  would load the whole system CA store (~28 ms of CPU and some memory) only for the
  verification to be switched off again.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from patrol.contract.units import format_duration


@dataclass(frozen=True, slots=True)
class CertInfo:
    """The parts of an X.509 certificate an operator reads in a ticket."""

    subject: str
    issuer: str
    common_name: str | None
    not_before: datetime
    not_after: datetime
    names: tuple[str, ...] = ()

    def seconds_left(self, now: datetime) -> float:
        """Seconds from ``now`` until ``not_after``; negative once expired."""
        return (self.not_after - now).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "names": list(self.names),
        }


def from_x509(cert: Any) -> CertInfo:
    """A :class:`CertInfo` from a ``cryptography.x509.Certificate``."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(
            [str(n) for n in san.get_values_for_type(x509.DNSName)]
            + [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        )
    except x509.ExtensionNotFound:
        names = ()
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        common_name=str(cns[0].value) if cns else None,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        names=names,
    )


def from_der(der: bytes) -> CertInfo:
    """A :class:`CertInfo` from DER bytes (``SSLSocket.getpeercert(binary_form=True)``)."""
    from cryptography import x509

    return from_x509(x509.load_der_x509_certificate(der))


@cache
def unverified_context() -> ssl.SSLContext:
    """A client context that checks neither chain nor host name, and loads no CA
    store (it would not use one). Shared by every caller in the process: an
    ``SSLContext`` is safe to use from several threads; callers must not change it."""
    return client_context(False)


def client_context(verify: bool | str) -> ssl.SSLContext:
    """A new client context: ``False`` verifies nothing (and loads no CA store), a
    path trusts that CA file (or ``c_rehash`` folder) only, ``True`` the system store.
    Build it once and reuse it: loading a CA bundle is the expensive part."""
    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if verify is True:
        return ssl.create_default_context()
    if Path(verify).is_dir():
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def load_file(path: Path) -> tuple[CertInfo, int]:
    """The first (leaf) certificate of a PEM bundle or a DER file, and how many
    certificates the file holds.

    Raises ``OSError`` when the file cannot be read and ``ValueError`` when it holds
    no certificate; the message says which.
    """
    from cryptography import x509

    data = path.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise ValueError(f"holds a malformed PEM certificate ({exc})") from exc
        return from_x509(certs[0]), len(certs)
    try:
        return from_x509(x509.load_der_x509_certificate(data)), 1
    except ValueError:
        raise ValueError("holds no certificate (expected PEM 'BEGIN CERTIFICATE' or DER)") from None


def peer_chain(
    host: str,
    port: int,
    *,
    verify: bool | str,
    timeout: float,
) -> list[CertInfo]:
    """Every certificate a TLS server at ``host:port`` presents, leaf first.

    ``verify`` is the http check's: ``True`` (its default trust store), a CA file path,
    or ``False`` (no chain or host-name check). Raises ``OSError`` (including
    ``ssl.SSLError``) when the handshake fails.
    """
    context = unverified_context() if verify is False else client_context(verify)
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        ders = presented_chain(tls)
    if not ders:
        raise ssl.SSLError(f"{host}:{port} presented no certificate")
    return [from_der(der) for der in ders]


def peer_certificate(host: str, port: int, *, verify: bool | str, timeout: float) -> CertInfo:
    """The certificate (the leaf) a TLS server at ``host:port`` presents; see
    :func:`peer_chain`."""
    return peer_chain(host, port, verify=verify, timeout=timeout)[0]


def presented_chain(tls: ssl.SSLSocket) -> list[bytes]:
    """DER of every certificate the peer sent in the handshake, leaf first, as sent
    (unverified: what the server presents, which is what breaks clients when an
    intermediate expires). Python 3.13 has ``SSLSocket.get_unverified_chain()``;
    3.10-3.12 have the same call on the ``_sslobj`` only. Falls back to the leaf."""
    public = getattr(tls, "get_unverified_chain", None)
    if public is not None:
        return [bytes(der) for der in public() or []]
    inner = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    if inner is not None:
        import _ssl

        return [cert.public_bytes(_ssl.ENCODING_DER) for cert in inner() or []]
    leaf = tls.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def matches_host(cert: CertInfo, host: str) -> bool:
    """Whether ``cert`` names ``host`` (RFC 6125): an IP address must equal an IP
    entry; a DNS name matches an entry exactly or through a ``*`` that stands for
    the whole leftmost label only. The subject CN is not consulted: browsers and
    Python's ssl ignore it when the certificate has SANs, which every public
    certificate must have."""
    import ipaddress

    host = host.rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    for name in cert.names:
        name = name.rstrip(".").lower()
        if address is not None:
            try:
                if ipaddress.ip_address(name) == address:
                    return True
            except ValueError:
                pass
            continue
        if name == host:
            return True
        if name.startswith("*.") and "." in host:
            first, rest = host.split(".", 1)
            if first and rest == name[2:]:
                return True
    return False


def describe_expiry(seconds_left: float) -> str:
    """ "expires in 5d 3h" or "expired 2d ago", for summaries."""
    if seconds_left <= 0:
        return f"expired {format_duration(-seconds_left)} ago"
    return f"expires in {format_duration(seconds_left)}"
