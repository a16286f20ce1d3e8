"""A tiny SNTP responder on loopback for the clock tests (and as chronyd's source).

It answers every client-mode request with stratum 1, reference "PTST", and this
machine's clock shifted by ``skew`` seconds, so a test can make a server that is
right, wrong by a known amount, not synchronised (leap 3) or sending a kiss-o'-death.
It runs in a thread, listens on 127.0.0.1 only, and stops when closed.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

from patrol.checks.sntp import to_ntp

_PACKET = struct.Struct("!BBbbII4sQQQQ")


class SntpServer:
    def __init__(self, skew: float = 0.0, leap: int = 0, stratum: int = 1,
                 reference: bytes = b"PTST") -> None:
        self.skew, self.leap, self.stratum, self.reference = skew, leap, stratum, reference
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            received = time.time() + self.skew
            if len(data) < _PACKET.size or data[0] & 0x7 != 3:
                continue
            self.requests += 1
            version = (data[0] >> 3) & 0x7
            client_transmit = _PACKET.unpack_from(data)[10]
            now = to_ntp(received)
            reply = _PACKET.pack((self.leap << 6) | (version << 3) | 4, self.stratum, 4, -20,
                                 0, 0x10, self.reference, now, client_transmit, now,
                                 to_ntp(time.time() + self.skew))
            self.sock.sendto(reply, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
