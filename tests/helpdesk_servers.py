"""REAL Redmine and Request Tracker servers on loopback, one of each per test session.

``tests/setup_helpdesks.sh`` (run by ``.ci/run``, needs root) installs Debian's packages and
does the one-time configuration; these fixtures only make per-session state (an RT auth
token, the Redmine admin's API key), start the server on a free port as ``www-data`` and
stop it again. Recipes and pitfalls: ../shared/helpdesks.md.

The server is started with :class:`subprocess.Popen` (``setpriv`` and ``env`` both exec, so
the child IS the server) and reaped with ``wait()`` after ``terminate()``: PID 1 here does not
reap orphans, so a server left to a shell would linger as a zombie. Nothing is stopped by
name, only this PID (RT's Starlet master takes its workers with it on SIGTERM).

Use them by naming this module as a plugin in the test module (one server per session
however many modules ask)::

    pytest_plugins = ["tests.helpdesk_servers"]
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from patrol.ticketing_bridge.protocol import TicketView
from tests.conftest import free_port, unavailable

SETUP = "tests/setup_helpdesks.sh"
START_TIMEOUT = 60.0  # seconds; measured 1.3-3.1 s, a loaded CI box may be much slower
RT_ROOT_PASSWORD = "cipassword"  # preseeded by tests/setup_helpdesks.sh
REDMINE_ADMIN = ("admin", "admin")  # the package's default data

# Queue, custom field (idempotent) and a fresh REST2 token for root, printed once: RT keeps
# only its bcrypt hash. Fed to perl on stdin so www-data needs no access to our temp dirs.
# Earlier sessions' tokens are deleted: RT checks a user's tokens one by one, a bcrypt each,
# so every leftover token made each request slower (measured: ~0.25 s more per token).
RT_SETUP_PL = r"""
use strict; use warnings;
use lib '/usr/share/request-tracker5/lib';
use RT -init;
my $root = RT::User->new(RT->SystemUser); $root->Load('root') or die 'no root';
my $q = RT::Queue->new(RT->SystemUser); $q->Load('Monitoring');
unless ($q->Id) { my ($ok, $m) = $q->Create(Name => 'Monitoring'); die $m unless $ok }
my $cf = RT::CustomField->new(RT->SystemUser);
$cf->LoadByName(Name => 'Alert fingerprint', LookupType => RT::Ticket->CustomFieldLookupType);
unless ($cf->Id) {
  my ($ok, $m) = $cf->Create(Name => 'Alert fingerprint', Type => 'FreeformSingle',
                             LookupType => RT::Ticket->CustomFieldLookupType); die $m unless $ok;
  ($ok, $m) = $cf->AddToObject($q); die $m unless $ok;
}
# RT tries the user's tokens one by one (a bcrypt each): keep only this session's
my $old = RT::AuthTokens->new(RT->SystemUser); $old->LimitOwner(VALUE => $root->Id);
while (my $t = $old->Next) { $t->Delete if $t->Description eq 'patrol tests' }
# re-hash the password at the configured (test) BcryptCost, so basic auth is fast too
my ($ok, $msg) = $root->SetPassword($ENV{RT_ROOT_PASSWORD}); die $msg unless $ok;
my ($id, $m, $auth) = RT::AuthToken->new(RT::CurrentUser->new($root))
                        ->Create(Owner => $root->Id, Description => 'patrol tests');
die $m unless $id;
print "$auth\n";
"""


@dataclass(frozen=True)
class HelpdeskServer:
    """A running helpdesk: base URL, an admin credential, and where its log goes."""

    url: str
    token: str  # Redmine: the admin's API key; RT: a REST2 auth token for root
    pid: int
    log: Path
    username: str = ""
    password: str = ""


def _as_www_data(*argv: str, env: dict[str, str] | None = None) -> list[str]:
    """argv that runs as www-data, like the packages do (files stay writable by the server)."""
    assignments = [f"{k}={v}" for k, v in {"HOME": "/tmp", **(env or {})}.items()]
    return ["setpriv", "--reuid=www-data", "--regid=www-data", "--init-groups",
            "env", *assignments, *argv]


def _require(*paths: str, package: str) -> None:
    if os.geteuid() != 0:
        unavailable(f"{package}: starting it as www-data needs root")
    for path in paths:
        if not Path(path).exists():
            unavailable(f"{path} missing: run {SETUP} as root (installs Debian's {package})")


@contextmanager
def serving(argv: list[str], url: str, log: Path, cwd: str | None = None) -> Iterator[int]:
    """Run a server until the block ends; yields its PID once ``url`` answers HTTP at all."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{argv[-1]} exited {proc.returncode} while starting; log "
                            f"{log}:\n{log.read_text(errors='replace')[-2000:]}", pytrace=False)
            try:
                requests.get(url, timeout=2)
                break  # any status: the server answers (401 without credentials)
            except requests.RequestException:
                if time.monotonic() > deadline:
                    pytest.fail(f"{url} did not answer within {START_TIMEOUT:.0f} s; log {log}",
                                pytrace=False)
                time.sleep(0.1)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def redmine(state: Path, port: int) -> Iterator[HelpdeskServer]:
    """Redmine 5 under thin (Debian's Gemfile only enables thin when installed)."""
    _require("/usr/share/redmine/config.ru", "/usr/bin/thin", package="redmine + thin")
    url = f"http://127.0.0.1:{port}"
    argv = _as_www_data("rackup", "-E", "production", "-o", "127.0.0.1", "-p", str(port),
                        env={"REDMINE_INSTANCE": "default"})
    log = state / "redmine.log"
    with serving(argv, f"{url}/users/current.json", log, cwd="/usr/share/redmine") as pid:
        # the API key is per installation; ask Redmine for it instead of fixing it in setup
        reply = requests.get(f"{url}/my/account.json", auth=REDMINE_ADMIN, timeout=10)
        if reply.status_code != 200:
            pytest.fail(f"Redmine /my/account.json answered {reply.status_code}: is the REST "
                        f"API enabled? run {SETUP}", pytrace=False)
        key = reply.json()["user"]["api_key"]
        yield HelpdeskServer(url, key, pid, log, *REDMINE_ADMIN)


@contextmanager
def request_tracker(state: Path, port: int) -> Iterator[HelpdeskServer]:
    """RT 5 under Starlet with 2 workers (the default 10 take 2.3 GB)."""
    server = "/usr/share/request-tracker5/libexec/rt-server"
    _require(server, "/etc/request-tracker5/RT_SiteConfig.d/99-ci.pm",
             package="request-tracker5 + rt5-db-sqlite + rt5-standalone")
    made = subprocess.run(_as_www_data("perl", "-", env={"RT_ROOT_PASSWORD": RT_ROOT_PASSWORD}),
                          input=RT_SETUP_PL, text=True,
                          capture_output=True, timeout=120)
    if made.returncode != 0:
        pytest.fail(f"RT setup (queue, custom field, token) failed: {made.stderr[-2000:]}",
                    pytrace=False)
    token = made.stdout.strip().splitlines()[-1]
    url = f"http://127.0.0.1:{port}"
    argv = _as_www_data(server, "--host", "127.0.0.1", "--port", str(port),
                        "--max-workers", "2", env={"PATROL_RT_PORT": str(port)})
    log = state / "rt.log"
    with serving(argv, f"{url}/REST/2.0/rt", log) as pid:
        yield HelpdeskServer(url, token, pid, log, "root", RT_ROOT_PASSWORD)


@pytest.fixture(scope="session")
def redmine_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelpdeskServer]:
    with redmine(tmp_path_factory.mktemp("redmine"), free_port()) as server:
        yield server


@pytest.fixture(scope="session")
def rt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HelpdeskServer]:
    with request_tracker(tmp_path_factory.mktemp("rt"), free_port()) as server:
        yield server


def ticket_view(**overrides: object) -> TicketView:
    """A Patrol ticket as the adapters see it; a fresh fingerprint unless given (the servers'
    databases outlive the session, so earlier runs' tickets are still there)."""
    values: dict[str, object] = {
        "number": "TS20261122001", "fingerprint": f"db-01:disk:/var:{uuid.uuid4().hex}",
        "title": "/var is 93.4% full on db-01 (critical at 95%)",
        "body": "**/var** is 93.4% full on `db-01`.\n\n- used_ratio 0.934\n- critical at 0.95",
        "priority": "P3", "severity": "critical", "status": "new", "category": "disk",
        "host": "db-01", "check": "var-disk", "check_type": "disk",
        "resolve_by": time.time() + 2 * 86400,
    }
    return TicketView(**(values | overrides))  # type: ignore[arg-type]
