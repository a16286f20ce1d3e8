"""``patrol init agent|collector``: a commented starting config for this host.

Written from what the host shows: its real mounts (one disk check over them), the
systemd services running now (one systemd check), and the databases listening on
loopback or all addresses (PostgreSQL, MariaDB/MySQL, Redis: a check each). Secrets are
never written into the file: they are ``${VAR}`` references or ``file:`` paths under
/etc/patrol/secrets, readable by the patrol user alone. The result passes ``patrol
validate`` as written, so a new host starts from a config that works and is edited
from there rather than from a blank page.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

# Filesystems worth a disk check: the ones that hold data (not proc, tmpfs, overlays).
DATA_FILESYSTEMS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "jfs", "reiserfs",
                    "vfat", "exfat", "ntfs", "ntfs3"}

# Well-known database ports -> (check type, check block lines).
DATABASES: dict[int, tuple[str, list[str]]] = {
    5432: ("postgres", ["type: postgres",
                        "dsn: ${PATROL_PG_DSN:-postgresql://patrol@127.0.0.1:5432/postgres}",
                        "warning: 80%                  # of max_connections",
                        "critical: 90%"]),
    3306: ("mysql", ["type: mysql", "host: 127.0.0.1", "port: 3306", "user: patrol",
                     "password: ${PATROL_MYSQL_PASSWORD:-}",
                     "warning: 80%                  # of max_connections",
                     "critical: 90%"]),
    6379: ("redis", ["type: redis", "url: ${PATROL_REDIS_URL:-redis://127.0.0.1:6379/0}",
                     "warning: 80%                  # of maxclients",
                     "critical: 90%"]),
}


ETC = Path("/etc/patrol")
AGENT_SECRETS = ("agent-api-token",)
COLLECTOR_SECRETS = ("agent-token", "operator-token")


@dataclass(frozen=True)
class HostFacts:
    """What ``patrol init`` found on this host."""

    mounts: list[str]
    services: list[str]
    database_ports: list[int]


def data_mounts() -> list[str]:
    seen: list[str] = []
    for part in psutil.disk_partitions(all=False):
        if part.fstype in DATA_FILESYSTEMS and part.mountpoint not in seen:
            seen.append(part.mountpoint)
    return sorted(seen)


def running_services() -> list[str]:
    """Running service units, when systemd is the init system (else none: containers)."""
    if not Path("/run/systemd/system").is_dir():
        return []
    try:
        done = subprocess.run(
            ["systemctl", "list-units", "--type=service", "--state=running", "--no-legend",
             "--plain", "--no-pager"],
            capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return service_names(done.stdout)


def service_names(listing: str) -> list[str]:
    """The unit names of ``systemctl list-units --no-legend --plain`` output, whose
    first column is the unit (the text form: systemd 252 has no JSON for list-units)."""
    return sorted({line.split()[0] for line in listing.splitlines()
                   if line.strip() and line.split()[0].endswith(".service")})


def listening_database_ports() -> list[int]:
    ports: set[int] = set()
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return []
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port in DATABASES:
            ports.add(conn.laddr.port)
    return sorted(ports)


def detect() -> HostFacts:
    return HostFacts(data_mounts(), running_services(), listening_database_ports())


def _quoted(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def agent_config(facts: HostFacts, etc: Path = ETC) -> str:
    """The agent's starting config for a host with these facts; secrets under ``etc``."""
    out = [
        "# Patrol agent config written by `patrol init agent` for this host.",
        f"# Edit freely, then check it:  patrol validate {etc / 'agent.yaml'}",
        "# Reload a running agent with:  systemctl reload patrol-agent",
        "",
        "agent:",
        "  listen: 127.0.0.1:9731            # 0.0.0.0:9731 lets a remote Prometheus scrape",
        "  labels:                           # group labels: routing, priority, check sets",
        "    tier: standard                  # critical | standard | dev",
        "    env: prod",
        "  state_dir: /var/lib/patrol        # the unit's StateDirectory",
        "  interval: 30s",
        f"  token: file:{etc / 'secrets' / AGENT_SECRETS[0]}   # guards the status API",
        "  # collector:                      # where events and heartbeats go",
        "  #   url: https://collector.example.com:9732",
        f"  #   token: file:{etc / 'secrets' / 'collector-token'}",
        "",
        "include: conf.d                     # more *.yaml files with a checks: list",
        "",
        "checks:",
        "  - name: cpu",
        "    type: cpu",
        "    warning: 80%",
        "    critical: 95%",
        "    for: 5m",
        "  - name: memory",
        "    type: memory",
        "    warning: 90%",
        "    critical: 95%",
        "    for: 5m",
        "  - name: load",
        "    type: load",
        "    warning: 1.5                    # per core",
        "    critical: 3",
        "    for: 10m",
        "",
    ]
    if facts.mounts:
        out += [f"  # mounts found on this host: {', '.join(facts.mounts)}",
                "  - name: disk", "    type: disk", f"    paths: {_quoted(facts.mounts)}",
                "    warning: 85%", "    critical: 95%", "    for: 2m", ""]
    else:
        out += ["  # no data filesystem was found: every real mount is checked",
                "  - name: disk", "    type: disk", "    warning: 85%", "    critical: 95%",
                "    for: 2m", ""]
    if facts.services:
        out += ["  # services running when `patrol init` ran; remove the ones that may stop",
                "  - name: services", "    type: systemd",
                f"    units: {_quoted(facts.services)}", "    interval: 1m", ""]
    else:
        out += ["  # systemd is not the init system here (or runs no services): add a",
                "  # systemd check with units: [...] on hosts where it is", ""]
    for port in facts.database_ports:
        kind, lines = DATABASES[port]
        out += [f"  # {kind} listens on port {port}; its secret comes from the environment",
                f"  - name: {kind}-connections", *(f"    {line}" for line in lines), ""]
    return "\n".join(out).rstrip() + "\n"


def collector_config(facts: HostFacts, etc: Path = ETC) -> str:
    """The collector's starting config; PostgreSQL is suggested when one listens here."""
    store = "sqlite:////var/lib/patrol-collector/collector.db"
    out = [
        "# Patrol collector config written by `patrol init collector` for this host.",
        f"# Check it with:  patrol validate {etc / 'collector.yaml'}",
        "",
        "collector:",
        "  listen: 127.0.0.1:9732            # 0.0.0.0:9732 (behind TLS) for remote agents",
        f"  store: {store}",
    ]
    if 5432 in facts.database_ports:
        out.append("  # PostgreSQL listens here: for several replicas use")
        out.append("  # store: postgresql://patrol@127.0.0.1:5432/patrol")
    out += [
        "  agent_tokens:                     # one line per token file, readable by patrol only",
        f"    - file:{etc / 'secrets' / COLLECTOR_SECRETS[0]}",
        "  operator_tokens:",
        f"    - file:{etc / 'secrets' / COLLECTOR_SECRETS[1]}",
        "",
        "policy:",
        "  sla:",
        "    respond: {P1: 15m, P2: 30m, P3: 1h, P4: 24h}",
        "    resolve: {P1: 4h, P2: 24h, P3: 72h, P4: 7d}",
        "",
        "# The daily inspection report every morning and the weekly retrospective, archived",
        "# and mailed by the collector (README: Reports). Uncomment and name your mail",
        "# server and recipients to schedule them; `patrol report` makes either on demand.",
        *(f"# {line}" for line in REPORTS_BLOCK),
    ]
    return "\n".join(out) + "\n"


REPORTS_BLOCK = (
    "reports:",
    "  timezone: UTC                     # the crons' zone, e.g. Europe/Berlin",
    "  archive: /var/lib/patrol-collector/reports",
    "  smtp: {host: mail.example.com, from: patrol@example.com}  # port, starttls, username,",
    "                                    # password: file:/etc/patrol/secrets/smtp-password",
    '  daily: {cron: "0 7 * * *", recipients: [ops@example.com]}',
    '  retro: {cron: "0 8 * * 1", period: 7d, recipients: [ops-lead@example.com]}',
)


def _service_ids() -> tuple[int, int] | None:
    """The patrol user's uid and gid when we may hand files to it (running as root)."""
    try:
        entry = pwd.getpwnam("patrol")
    except KeyError:
        return None
    return (entry.pw_uid, entry.pw_gid) if os.geteuid() == 0 else None


def make_layout(etc: Path, secret_names: tuple[str, ...]) -> list[Path]:
    """``etc``/conf.d and ``etc``/secrets with a fresh random token per missing secret
    (mode 0600, owned by the patrol user when it exists); existing secrets are kept."""
    owner = _service_ids()
    (etc / "conf.d").mkdir(parents=True, exist_ok=True)
    folder = etc / "secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    made = []
    for name in secret_names:
        path = folder / name
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        made.append(path)
    if owner is not None:
        for path in (folder, *(folder / n for n in secret_names)):
            os.chown(path, *owner)
    return made


def main(role: str, output: str | None, force: bool) -> int:
    facts = detect()
    if output is None:
        sys.stdout.write(agent_config(facts) if role == "agent" else collector_config(facts))
        return 0
    target = Path(output).absolute()
    if target.exists() and not force:
        print(f"patrol: {target} exists; pass --force to overwrite it", file=sys.stderr)
        return 2
    etc = target.parent
    text = agent_config(facts, etc) if role == "agent" else collector_config(facts, etc)
    etc.mkdir(parents=True, exist_ok=True)
    for path in make_layout(etc, AGENT_SECRETS if role == "agent" else COLLECTOR_SECRETS):
        print(f"wrote {path} (a new random token, readable by its owner only)")
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}; check it with: patrol validate {target}")
    return 0
