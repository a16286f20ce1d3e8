"""The built-in knowledge base: first actions per check type, for the ticket body.

DOMAIN.md's step 3: "consult the knowledge base for a known standard fix first". The
entries are what an experienced operator does first, in order, and each is safe to
do (read-only or reversible); they point at the diagnostics the ticket already holds
rather than repeat them. A check's own ``runbook`` link is added by the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

GENERIC: tuple[str, ...] = (
    "Read the diagnostics below and the check's summary; compare with the last "
    "occurrence of this problem.",
    "Look at what changed recently on the host (packages, restarts, edited configs).",
    "Re-run the check (How to verify) after any change.",
)

FIRST_ACTIONS: dict[str, tuple[str, ...]] = {
    "disk": (
        "Look for deleted files still held open (diagnostics: deleted open files); "
        "restarting or signalling the holder frees their space at once.",
        "Check the largest and recently grown directories: logs without rotation, "
        "core dumps, caches, old backups or package caches (`apt-get clean`).",
        "Rotate or compress logs (`logrotate -f`), vacuum the journal "
        "(`journalctl --vacuum-size=500M`).",
        "If the growth is legitimate, extend the filesystem or move data; record the "
        "new capacity plan.",
    ),
    "memory": (
        "Find the processes using the most memory (Top processes) and whether one is "
        "growing (a leak) or many are starting (load).",
        "Check the kernel log for the OOM killer (`journalctl -k | grep -i oom`).",
        "Restart a leaking service in a quiet moment; tune its memory limits.",
    ),
    "swap": (
        "Find what is swapped out and whether the host is actively swapping "
        "(`vmstat 1 5`, columns si/so).",
        "Treat sustained swapping as a memory shortage: see the memory check's actions.",
    ),
    "cpu": (
        "Find the processes using the most CPU (Top processes); check iowait and steal "
        "in the measurements.",
        "High iowait: look at disk latency (`iostat -x 1 5`); high steal: ask the "
        "hypervisor owner.",
        "A runaway process: capture `py-spy`/`perf top` or a stack trace before "
        "restarting it.",
    ),
    "load": (
        "Compare the load with the CPU count; high load with idle CPU means processes "
        "waiting on I/O (state D in Top processes).",
        "Check disk and network storage latency (`iostat -x 1 5`, NFS mounts).",
    ),
    "postgres": (
        "Look at the sessions by state (diagnostics): many 'idle in transaction' "
        "sessions point at an application not committing.",
        "Find long-running queries and their clients; cancel with "
        "`SELECT pg_cancel_backend(pid)` before considering `pg_terminate_backend`.",
        "Compare connections with max_connections; consider a pooler (PgBouncer).",
    ),
    "mysql": (
        "Look at the process list (diagnostics) for long-running or locked queries.",
        "Compare Threads_connected with max_connections; find the client holding most.",
        "Kill a stuck query with `KILL QUERY id` before killing the connection.",
    ),
    "redis": (
        "Compare used memory with maxmemory and the eviction policy.",
        "Check connected and blocked clients (`CLIENT LIST`) and the slow log "
        "(`SLOWLOG GET 10`).",
    ),
    "http": (
        "Read the response excerpt and status (diagnostics); try the URL from another host.",
        "Check the application's and the web server's error logs around the first-seen time.",
        "Check the upstream services and databases the application needs.",
    ),
    "tcp": (
        "Check whether the service listens (`ss -ltnp`) and whether it runs "
        "(`systemctl status`).",
        "From the checking host, test the path: DNS, routing, firewall (`nc -vz host port`).",
    ),
    "tls_cert": (
        "Renew the certificate (e.g. `certbot renew`) and reload the service.",
        "If renewal runs automatically, find why it failed (timer, logs, DNS/HTTP "
        "challenge).",
    ),
    "systemd": (
        "Read the unit's status and last log lines (diagnostics; "
        "`journalctl -u UNIT -n 100`).",
        "Fix the cause before `systemctl restart`; check `systemctl list-dependencies`.",
    ),
    "process": (
        "Check whether the process crashed or was never started (service manager, "
        "kernel log for OOM kills).",
        "Restart it through its service manager, not by hand.",
    ),
    "log": (
        "Read the matching lines (diagnostics) and the lines around them in the log.",
        "Find the first occurrence: it usually names the cause; later ones are echoes.",
    ),
    "file": (
        "Check the job that should write the file (cron, systemd timer, backup tool) "
        "and its last run.",
        "Check permissions and free space where the file is written.",
    ),
    "staleness": (
        "Ask the agent when it last ran the check (How to verify: the status API); a "
        "check stuck past its timeout or a scheduler that stopped shows there.",
        "Read the agent's log around the last result (`journalctl -u patrol-agent`) for "
        "errors, restarts or a config reload that dropped or renamed the check.",
        "A check on a rare schedule (cron) can look silent: compare its schedule with "
        "the collector's stale factor.",
    ),
    "heartbeat": (
        "Check whether the host is up (ping, console) and whether the agent runs "
        "(`systemctl status patrol-agent`).",
        "Check the network path from the host to the collector and the agent's log.",
    ),
    "net_interface": (
        "Check the link at both ends: cable, switch port, negotiated speed and duplex "
        "(`ethtool IFACE`, `ip -s link show IFACE`).",
        "Rising errors point at a bad cable, optic or port; rising drops at a full "
        "receive ring or a saturated link (`ethtool -S IFACE`, `ethtool -g IFACE`).",
        "A bond or team member down: confirm the others carry the traffic before "
        "swapping hardware.",
    ),
    "clock": (
        "Check the time service's own view: `chronyc tracking` and `chronyc sources -v` "
        "(or `timedatectl timesync-status`, `ntpq -p`).",
        "Check that the NTP servers are reachable (UDP 123 through the firewall) and "
        "that only one time service runs.",
        "Step a large offset once with `chronyc makestep` after checking what depends "
        "on monotonic wall time (databases, Kerberos, TLS).",
    ),
    "dns": (
        "Repeat the query by hand against the same server (`dig @SERVER NAME`) and "
        "against another one to tell a server fault from a record fault.",
        "Check /etc/resolv.conf (or `resolvectl status`) and reachability of the "
        "resolver (UDP/TCP 53).",
        "An unexpected answer: check the zone's recent changes and TTLs before "
        "flushing caches.",
    ),
    "disk_health": (
        "Read the SMART attributes in the diagnostics (reallocated, pending, "
        "uncorrectable sectors); confirm with `smartctl -a DEVICE`.",
        "Make sure backups are current before anything else; plan the disk's "
        "replacement.",
        "A degraded array: `mdadm --detail /dev/mdX`, replace the failed member and "
        "watch the resync in /proc/mdstat.",
    ),
    "kernel": (
        "Read the matching kernel lines (diagnostics) and the lines just before the "
        "first one (`journalctl -k -b`).",
        "OOM kills: see the memory check's actions; hung tasks and I/O errors: check "
        "the disk's health and the storage path.",
        "A filesystem remounted read-only: stop writers, check `dmesg` for the cause, "
        "schedule `fsck` before remounting read-write.",
    ),
    "fd": (
        "Find the process closest to its limit (diagnostics) and whether its count "
        "grows (a leak: `ls /proc/PID/fd | wc -l` over time).",
        "Raise the limit where the use is legitimate (`LimitNOFILE=` in the unit, "
        "fs.file-max for the system table) and restart the service.",
    ),
    "zombies": (
        "Find the parent in the diagnostics: it does not reap its children.",
        "Restart or signal the parent (`kill -CHLD PPID`); killing a zombie does "
        "nothing.",
    ),
    "updates": (
        "List the pending updates (`apt list --upgradable`, `dnf check-update`) and "
        "read the security notices for the affected packages.",
        "Apply security updates in the next maintenance window; check whether a reboot "
        "or service restart is needed (`needrestart`).",
    ),
    "listen": (
        "Identify the process behind an unexpected listener (diagnostics; "
        "`ss -ltnup`) and whether it was deployed on purpose.",
        "A missing listener: check the service's status and logs, and its bind address.",
        "Treat an unknown listener as a possible compromise until explained.",
    ),
}


def first_actions(check_type: str, diagnostics: bool = True) -> tuple[str, ...]:
    """The suggested first actions for ``check_type``; generic ones for unknown types,
    which do not point at diagnostics a ticket does not have."""
    actions = FIRST_ACTIONS.get(check_type, GENERIC)
    if actions is GENERIC and not diagnostics:
        return ("Read the check's summary and compare with the last occurrence of this "
                "problem.", *GENERIC[1:])
    return actions


OPERATOR_KEYS = ("first_actions",)


def load_operator_knowledge(path: str | Path) -> dict[str, tuple[str, ...]]:
    """The operator's own first actions, per check type, from a YAML file::

        first_actions:
          disk:
            - "The nightly dump lands in /srv/backups: look there first."

    Every mistake is reported at once as FILE:LINE (raises
    :class:`patrol.contract.yamlsource.ConfigError`); an operator's entries are shown before
    the built-in ones of the same type, since they know their hosts."""
    from patrol.contract.yamlsource import ConfigError, Problem, SourceList, SourceMap, read_tree

    problems: list[Problem] = []
    tree = read_tree(Path(path), problems, OPERATOR_KEYS)
    out: dict[str, tuple[str, ...]] = {}
    section = tree.get("first_actions") if tree is not None else None
    if tree is not None and not isinstance(section, SourceMap):
        problems.append(Problem(str(path), tree.lines.get("first_actions", 1),
                                "'first_actions' must map check types to lists of actions",
                                option="first_actions"))
        section = None
    entries = section if section is not None else SourceMap()
    for check_type, actions in entries.items():
        line = entries.lines[check_type]
        if not isinstance(actions, SourceList) or not actions:
            problems.append(Problem(str(path), line, f"'{check_type}' needs a list of actions "
                                    "(one sentence each)", option=str(check_type)))
            continue
        for i, action in enumerate(actions):
            if not isinstance(action, str) or not action.strip():
                problems.append(Problem(str(path), actions.lines[i],
                                        f"action {i + 1} of '{check_type}' must be text",
                                        option=str(check_type)))
        out[str(check_type)] = tuple(str(a).strip() for a in actions if isinstance(a, str))
    if problems:
        raise ConfigError(problems)
    return out


def all_first_actions(operator: Mapping[str, tuple[str, ...]] | None = None
                      ) -> dict[str, list[tuple[str, str]]]:
    """Every check type's first actions as ``(source, text)``: the operator's, then the
    built-in ones; sorted by type."""
    own = operator or {}
    types = sorted({*FIRST_ACTIONS, *own})
    return {t: [("yours", a) for a in own.get(t, ())]
            + [("built-in", a) for a in FIRST_ACTIONS.get(t, ())] for t in types}
