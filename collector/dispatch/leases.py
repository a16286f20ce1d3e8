"""The dispatch rows this collector is delivering right now, kept leased while their
helpdesk calls run.

A claim leases a row for a short time (:data:`LEASE`) so that a replica that dies is
replaced within seconds; a helpdesk call may take much longer (a slow helpdesk, a
long read timeout), so a renewer thread extends every held lease every third of the
lease. A renewal the database refuses means the lease had lapsed and another replica
claimed the row: the holder is told once (``on_lost``), and its later outcome write
is refused by the claim token anyway (see :mod:`collector.store.dispatch`).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from patrol.collector.store.base import TicketStore

log = logging.getLogger("patrol.collector.dispatch")
LEASE = 10.0  # seconds; a dead replica's rows are taken over this long after its last renewal


@dataclass
class Claim:
    """One leased row: what the renewer needs, and whether the lease was lost."""

    id: int
    helpdesk: str
    token: str
    lost: bool = False
    settling: bool = False  # its outcome is being written: that write tells the truth


class Leases:
    """Held claims by row id, renewed in the background while any are held."""

    def __init__(self, store: TicketStore, clock: Callable[[], float], lease: float,
                 on_lost: Callable[[Claim], None]) -> None:
        self.store = store
        self.clock = clock
        self.lease = lease
        self.on_lost = on_lost
        self._held: dict[int, Claim] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)

    def busy(self) -> Counter[str]:
        """Held claims per helpdesk."""
        with self._lock:
            return Counter(claim.helpdesk for claim in self._held.values())

    def hold(self, row: dict[str, Any]) -> Claim:
        claim = Claim(row["id"], row["helpdesk"], row["lease_owner"])
        with self._lock:
            self._held[claim.id] = claim
            if self._renewer is None and not self._stop.is_set():
                self._renewer = threading.Thread(target=self._renew_loop, daemon=True,
                                                 name="dispatch-lease-renewer")
                self._renewer.start()
        return claim

    def release(self, dispatch_id: int) -> Claim | None:
        with self._lock:
            return self._held.pop(dispatch_id, None)

    def settling(self, dispatch_id: int) -> None:
        """The holder is writing the outcome: from now on only that write (fenced by
        the token) decides whether the lease was lost, not a racing renewal."""
        with self._lock:
            if dispatch_id in self._held:
                self._held[dispatch_id].settling = True

    def lose(self, dispatch_id: int, *, by_renewal: bool = False) -> Claim | None:
        """Mark the claim lost; the claim the first time only (report it then)."""
        with self._lock:
            claim = self._held.get(dispatch_id)
            if claim is None or claim.lost or (by_renewal and claim.settling):
                return None
            claim.lost = True
            return claim

    def renew(self) -> list[Claim]:
        """Extend every held lease; the claims newly found lost (each reported once)."""
        with self._lock:
            held = [claim for claim in self._held.values()
                    if not (claim.lost or claim.settling)]
        if not held:
            return []
        until = self.clock() + self.lease
        with self.store.transaction() as tx:
            refused = [claim.id for claim in held
                       if not tx.renew_dispatch(claim.id, claim.token, until)]
        lost = [claim for claim in (self.lose(i, by_renewal=True) for i in refused) if claim]
        for claim in lost:
            self.on_lost(claim)
        return lost

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                self.renew()
            except Exception:  # the database is unreachable: try again next round
                log.warning("renewing dispatch leases failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
