"""DNS: do the names that matter resolve, quickly, to what they should?

Each query is a name and a record type (A by default), optionally with ``expect``:
values that must all be among the answers (an address, a mail exchanger "10
mx.example.org", a TXT string). Without ``server:`` A and AAAA go through the system
resolver (``getaddrinfo``: /etc/hosts, nsswitch, resolv.conf, exactly what the
host's programs get); other types, and every query with ``server:``, are asked
directly with a minimal DNS client (:mod:`checks.dns_wire`), of the first
``nameserver`` in /etc/resolv.conf when no server is set. No dnspython: one
question, one answer, a handful of record types need ~150 lines, not a dependency.

A name that does not resolve is CRITICAL (item ``name/TYPE``), an answer other than
expected is CRITICAL too (a hijacked or stale record), a slow answer a WARNING at
500 ms, CRITICAL at 2 s (resolvers time out and retry at 5 s).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from patrol.checks import dns_wire
from patrol.checks.base import (
    CheckError,
    ConfigClass,
    Measurement,
    MeasurementSpec,
    Result,
    RunContext,
    Status,
)
from patrol.checks.schemas import config_schema
from patrol.checks.thresholds import limit_note
from patrol.checks.worst_item import worst_item
from patrol.contract.units import format_duration

if TYPE_CHECKING:
    from patrol.checks.schemas.dns import DnsConfig, DnsQuery

RESOLV_CONF = Path("/etc/resolv.conf")
TYPES = ("A", "AAAA", "CNAME", "NS", "PTR", "MX", "TXT", "SOA")
RecordType = Literal["A", "AAAA", "CNAME", "NS", "PTR", "MX", "TXT", "SOA"]


def _normal(value: str) -> str:
    text = value.strip().rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def system_lookup(name: str, qtype: str, timeout: float) -> dns_wire.DnsAnswer:
    """A/AAAA through getaddrinfo, as every program on the host resolves. (getaddrinfo
    takes no timeout: resolv.conf's ``options timeout:`` governs it.)"""
    family = socket.AF_INET if qtype == "A" else socket.AF_INET6
    try:
        infos = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
            return dns_wire.DnsAnswer("NXDOMAIN", ())
        raise dns_wire.DnsError(exc.strerror or str(exc)) from None
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    return dns_wire.DnsAnswer("NOERROR", tuple(seen))


def first_nameserver(path: Path = RESOLV_CONF) -> str | None:
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                return fields[1]
    except OSError:
        return None
    return None


class DnsCheck:
    """Per query: not resolving or an unexpected answer is critical; latency warning
    500 ms, critical 2 s."""

    type: ClassVar[str] = "dns"
    Config: ClassVar[ConfigClass] = config_schema("dns", "DnsConfig")
    MEASUREMENTS: ClassVar[tuple[MeasurementSpec, ...]] = (
        MeasurementSpec("resolved", "1 when the query got answers, 0 when it failed",
                        False, None, 0, primary=True),
        MeasurementSpec("latency_seconds", "time to the answer", True, 0.5, 2.0),
        MeasurementSpec("answers", "records of the asked type in the answer"),
        MeasurementSpec("expected_match", "1 when every expected value was answered, 0 "
                        "when not (only with expect)", False, None, 0),
    )
    REQUIRES: ClassVar[tuple[str, ...]] = ()
    DIAGNOSTICS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        config: DnsConfig,
        system: Callable[[str, str, float], dns_wire.DnsAnswer] = system_lookup,
        wire: Callable[..., dns_wire.DnsAnswer] = dns_wire.resolve,
        nameserver: Callable[[], str | None] = first_nameserver,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.config = config
        self._system = system
        self._wire = wire
        self._nameserver = nameserver
        self._clock = clock

    def _via(self, query: DnsQuery) -> str:
        if self.config.server:
            return self.config.server
        if query.type in ("A", "AAAA"):
            return "the system resolver"
        server = self._nameserver()
        if server is None:
            raise CheckError(f"{query.item} needs a DNS server and /etc/resolv.conf names "
                             "none; set server:")
        return server

    def _ask(self, query: DnsQuery, via: str) -> dns_wire.DnsAnswer:
        if via == "the system resolver":
            return self._system(query.name, query.type, self.config.query_timeout)
        return self._wire(via, query.name, query.type, port=self.config.port,
                          timeout=self.config.query_timeout)

    def run(self, ctx: RunContext) -> Result:
        measurements: list[Measurement] = []
        per: dict[str, tuple[Status, str]] = {}
        found: dict[str, Any] = {}
        for query in self.config.queries:
            via = self._via(query)
            start = self._clock()
            try:
                answer = self._ask(query, via)
                error = None
            except OSError as exc:
                answer, error = None, str(exc)
            elapsed = self._clock() - start
            item = query.item
            answers = answer.answers if answer else ()
            own = [Measurement("resolved", float(bool(answers)), item)]
            missing: list[str] = []
            if answer is not None:
                own += [Measurement("latency_seconds", elapsed, item),
                        Measurement("answers", float(len(answers)), item)]
                if query.expect and answers:
                    got = {_normal(a) for a in answers}
                    missing = [e for e in query.expect if _normal(e) not in got]
                    own.append(Measurement("expected_match", float(not missing), item))
            measurements += own
            found[item] = {"via": via, "rcode": answer.rcode if answer else None,
                           "answers": list(answers), "cname_chain": list(answer.chain)
                           if answer else [], "seconds": round(elapsed, 6)}
            if error:
                found[item]["error"] = error
            per[item] = self._explain(ctx, query, via, own, answer, error, missing)
        status, summary = worst_item(per, "query", "queries")
        if status is Status.OK and len(per) > 1:
            slowest = max(found, key=lambda i: found[i]["seconds"])
            summary = (f"{len(per)} DNS queries answered on {ctx.hostname}; slowest "
                       f"{slowest} in {format_duration(found[slowest]['seconds'])}")
        return Result(status, summary, tuple(measurements), {"queries": found})

    @staticmethod
    def _explain(ctx: RunContext, query: DnsQuery, via: str, own: list[Measurement],
                 answer: dns_wire.DnsAnswer | None, error: str | None,
                 missing: list[str]) -> tuple[Status, str]:
        judged = {m.name: (ctx.judge(m), m.value) for m in own}
        status = Status.worst(*(s for s, _ in judged.values()))
        host, item = ctx.hostname, query.item
        how = f"via {via}"
        if judged["resolved"][1] == 0:
            why = error or (f"{answer.rcode}, no {query.type} record" if answer else "?")
            return status, f"{item} does not resolve on {host} {how}: {why}"
        shown = ", ".join(answer.answers[:3]) if answer else ""
        if missing:
            return status, (f"{item} resolves to {shown} on {host} {how}, expected "
                            f"{', '.join(missing)}")
        latency = judged["latency_seconds"]
        note = limit_note(ctx.evaluator.levels("latency_seconds", item), latency[0], latency[1])
        return status, (f"{item} resolves to {shown} in {format_duration(latency[1])} on "
                        f"{host} {how}{note}")
