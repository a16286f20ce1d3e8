"""Throw-away certificates for the HTTPS and TLS-certificate tests.

``make_ca`` creates a CA; ``issue`` signs a server certificate for 127.0.0.1 and
localhost (or chosen names) with a chosen validity window; both write PEM files into
a directory (pytest's ``tmp_path``). EC P-256 keys: generated in milliseconds.

Validity bounds are whole seconds (X.509 cannot store less), so a test that injects
a clock can assert exact remaining seconds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CA:
    """A certificate authority: its PEM file for clients, its key for signing."""

    cert_path: Path
    cert: x509.Certificate
    key: Any
    name: str


@dataclass(frozen=True)
class ServerCert:
    """A server certificate and key as PEM files, and its validity window."""

    cert_path: Path
    key_path: Path
    not_before: datetime
    not_after: datetime
    common_name: str


def whole_second(moment: datetime | None = None) -> datetime:
    return (moment or datetime.now(UTC)).replace(microsecond=0)


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Patrol Tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _key_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(directory: Path, name: str = "Patrol Test CA") -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    now = whole_second()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    slug = name.lower().replace(" ", "-")
    path = directory / f"{slug}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CA(path, cert, key, name)


def issue(
    ca: CA,
    directory: Path,
    *,
    common_name: str = "localhost",
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    valid_for: timedelta = timedelta(days=30),
    chain: bool = False,
) -> ServerCert:
    """Sign a server certificate; files are ``<common_name>.pem`` / ``.key``.

    Default validity: from one hour ago until ``valid_for`` from now (whole
    seconds). ``chain=True`` appends the CA certificate to the PEM file, as a
    full-chain bundle does.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = whole_second()
    start = not_before or now - timedelta(hours=1)
    end = not_after or now + valid_for
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
        )
        .sign(ca.key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    if chain:
        pem += ca.cert.public_bytes(serialization.Encoding.PEM)
    cert_path = directory / f"{common_name}.pem"
    key_path = directory / f"{common_name}.key"
    cert_path.write_bytes(pem)
    key_path.write_bytes(_key_pem(key))
    return ServerCert(cert_path, key_path, start, end, common_name)
