"""A minimal DNS client (RFC 1035): one question over UDP, TCP when truncated.

Enough for a monitoring query and no more: no recursion of its own (it asks a
recursive server with RD set), no DNSSEC validation, no EDNS. Answers are decoded
for the record types an operator checks (A, AAAA, CNAME, NS, PTR, MX, TXT, SOA);
other types are returned as hex. A reply counts only if its ID and question match
the query (RFC 5452's minimum against stray and spoofed packets).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from typing import Any

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
_HEADER = struct.Struct("!HHHHHH")


class DnsError(OSError):
    """No usable answer came back (timeout, malformed or mismatched reply)."""


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    rcode: str
    answers: tuple[str, ...]  # of the asked type, in the server's order
    chain: tuple[str, ...] = ()  # CNAMEs followed on the way


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna") if label else b""
        if not 0 < len(raw) < 64:
            raise ValueError(f"{name!r} is not a valid domain name")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_query(name: str, qtype: int, query_id: int) -> bytes:
    return _HEADER.pack(query_id, 0x0100, 1, 0, 0, 0) + encode_name(name) + struct.pack(
        "!HH", qtype, 1)


def _read_name(data: bytes, offset: int, depth: int = 0) -> tuple[str, int]:
    labels: list[str] = []
    while True:
        if offset >= len(data) or depth > 20:
            raise DnsError("malformed name in DNS reply")
        length = data[offset]
        if length & 0xC0 == 0xC0:  # compression pointer
            pointer = struct.unpack_from("!H", data, offset)[0] & 0x3FFF
            rest, _ = _read_name(data, pointer, depth + 1)
            return ".".join([*labels, rest] if rest else labels), offset + 2
        offset += 1
        if length == 0:
            return ".".join(labels), offset
        labels.append(data[offset:offset + length].decode("ascii", "replace"))
        offset += length


def _rdata(data: bytes, rtype: int, start: int, length: int) -> str:
    raw = data[start:start + length]
    if rtype == 1 and length == 4:
        return str(ipaddress.IPv4Address(raw))
    if rtype == 28 and length == 16:
        return str(ipaddress.IPv6Address(raw))
    if rtype in (2, 5, 12):
        return _read_name(data, start)[0]
    if rtype == 15:
        return f"{struct.unpack_from('!H', data, start)[0]} {_read_name(data, start + 2)[0]}"
    if rtype == 16:
        parts, i = [], 0
        while i < len(raw):
            parts.append(raw[i + 1:i + 1 + raw[i]].decode("utf-8", "replace"))
            i += 1 + raw[i]
        return "".join(parts)
    if rtype == 6:
        mname, offset = _read_name(data, start)
        rname, offset = _read_name(data, offset)
        serial = struct.unpack_from("!I", data, offset)[0]
        return f"{mname} {rname} {serial}"
    return raw.hex()


def parse_reply(data: bytes, name: str, qtype: int, query_id: int) -> tuple[DnsAnswer, bool]:
    """(answer, truncated) for the reply to our question; raises :class:`DnsError`."""
    if len(data) < _HEADER.size:
        raise DnsError("short DNS reply")
    rid, flags, qdcount, ancount, _, _ = _HEADER.unpack_from(data)
    if rid != query_id or not flags & 0x8000:
        raise DnsError("the reply does not answer our query (ID differs)")
    offset = _HEADER.size
    for _ in range(qdcount):
        qname, offset = _read_name(data, offset)
        if qname.lower().rstrip(".") != name.lower().rstrip("."):
            raise DnsError("the reply is for another name")
        offset += 4
    wanted, chain = [], []
    for _ in range(ancount):
        _owner, offset = _read_name(data, offset)
        rtype, _cls, _ttl, length = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        value = _rdata(data, rtype, offset, length)
        offset += length
        if rtype == qtype:
            wanted.append(value)
        elif rtype == 5:
            chain.append(value)
    rcode = RCODES.get(flags & 0xF, f"RCODE{flags & 0xF}")
    return DnsAnswer(rcode, tuple(wanted), tuple(chain)), bool(flags & 0x0200)


def _exchange_tcp(address: tuple[Any, ...], family: int, packet: bytes, timeout: float) -> bytes:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(struct.pack("!H", len(packet)) + packet)
        head = sock.recv(2, socket.MSG_WAITALL)
        if len(head) < 2:
            raise DnsError("the server closed the TCP connection")
        return sock.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL)


def resolve(server: str, name: str, qtype: str = "A", port: int = 53,
            timeout: float = 2.0) -> DnsAnswer:
    """Ask ``server`` one question. Raises :class:`DnsError` or ``OSError``."""
    code = TYPES[qtype]
    query_id = int.from_bytes(os.urandom(2), "big")
    packet = build_query(name, code, query_id)
    family, _, _, _, address = socket.getaddrinfo(server, port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.send(packet)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            raise DnsError(f"no answer from {server}:{port} within {timeout:g}s") from None
    answer, truncated = parse_reply(data, name, code, query_id)
    if truncated:
        answer, _ = parse_reply(_exchange_tcp(address, family, packet, timeout), name, code,
                                query_id)
    return answer
