"""A minimal SNTP client (RFC 4330, NTPv4 packet of RFC 5905) over UDP.

One request, one answer: enough to compare this host's clock with a reference
server, independent of whichever daemon disciplines the clock. With T1 our send
time, T2/T3 the server's receive/transmit times and T4 our receive time:

    offset = ((T2 - T1) + (T3 - T4)) / 2      (positive: our clock is behind)
    delay  = (T4 - T1) - (T3 - T2)

An answer is accepted only if it echoes our transmit timestamp as its originate
timestamp (RFC 4330 section 5: guards against stray or spoofed packets), is in
server or broadcast mode, and claims a stratum of 1-15: stratum 0 is a
"kiss-o'-death" (the code, e.g. RATE or DENY, is in the reference id) and a leap
indicator of 3 means the server itself is not synchronised.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
_PACKET = struct.Struct("!BBbbII4sQQQQ")


class SntpError(OSError):
    """The server did not answer, or answered with something we must not trust."""


@dataclass(frozen=True, slots=True)
class SntpAnswer:
    offset: float
    delay: float
    stratum: int
    leap: int
    reference: str


def to_ntp(unix: float) -> int:
    """Unix seconds -> 64-bit NTP timestamp (32.32 fixed point since 1900)."""
    return int((unix + NTP_EPOCH_OFFSET) * 2**32) & 0xFFFFFFFFFFFFFFFF


def from_ntp(stamp: int) -> float:
    return stamp / 2**32 - NTP_EPOCH_OFFSET


def request(transmit: int) -> bytes:
    """A client-mode (3), version-4 request carrying ``transmit`` as its timestamp."""
    return _PACKET.pack((0 << 6) | (4 << 3) | 3, 0, 0, 0, 0, 0, b"\0" * 4, 0, 0, 0, transmit)


def _reference(stratum: int, ref: bytes) -> str:
    if stratum <= 1:  # a kiss code or a clock source name in ASCII
        return ref.rstrip(b"\0").decode("ascii", "replace")
    return socket.inet_ntoa(ref)


def parse_answer(data: bytes, t1: int, t4: float) -> SntpAnswer:
    """Check and interpret a server's reply to the request sent with timestamp ``t1``."""
    if len(data) < _PACKET.size:
        raise SntpError(f"short NTP reply ({len(data)} bytes)")
    first, stratum, _poll, _prec, _rdelay, _rdisp, ref, _reftime, origin, recv, xmit = (
        _PACKET.unpack_from(data))
    leap, mode = first >> 6, first & 0x7
    if origin != t1:
        raise SntpError("the reply does not answer our request (originate timestamp differs)")
    if mode not in (4, 5):
        raise SntpError(f"the reply is in NTP mode {mode}, not server mode")
    if stratum == 0:
        raise SntpError(f"the server sent a kiss-o'-death ({_reference(0, ref) or '?'})")
    if leap == 3 or stratum > 15:
        raise SntpError("the server says it is not synchronised itself")
    if xmit == 0:
        raise SntpError("the reply carries no transmit timestamp")
    t1s, t2, t3 = from_ntp(t1), from_ntp(recv), from_ntp(xmit)
    return SntpAnswer(offset=((t2 - t1s) + (t3 - t4)) / 2, delay=(t4 - t1s) - (t3 - t2),
                      stratum=stratum, leap=leap, reference=_reference(stratum, ref))


def query(host: str, port: int = 123, timeout: float = 2.0,
          clock: Callable[[], float] = time.time) -> SntpAnswer:
    """Ask ``host:port`` once. Raises :class:`SntpError` (an ``OSError``) on no
    answer or an answer that fails the checks above, ``OSError`` on socket errors."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        # The low 32 bits of the fraction are noise at this precision: randomise them
        # so the originate check also rejects replies to someone else's request.
        t1 = (to_ntp(clock()) & ~0xFFFF) | int.from_bytes(os.urandom(2), "big")
        sock.send(request(t1))
        try:
            data = sock.recv(512)
        except TimeoutError:
            raise SntpError(f"no NTP answer from {host}:{port} within {timeout:g}s") from None
        return parse_answer(data, t1, clock())
