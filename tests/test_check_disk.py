"""disk: space and inodes per mount, mount selection, growth, and the breach walkers."""

from __future__ import annotations

import os
from collections import namedtuple

import psutil
import pytest
from pydantic import ValidationError

from patrol.checks import disk_usage
from patrol.checks.base import CheckError, Status
from patrol.checks.disk import DEFAULT_EXCLUDED_FSTYPES, DiskCheck, mount_point
from patrol.checks.schemas.disk import DiskConfig
from tests.helpers import build, run

GiB, MiB, KiB = 1024**3, 1024**2, 1024
Part = namedtuple("Part", "device mountpoint fstype opts")
Vfs = namedtuple("Vfs", "f_bsize f_frsize f_blocks f_bfree f_bavail f_files f_ffree")

PARTITIONS = [
    Part("/dev/sda1", "/", "ext4", "rw"),
    Part("/dev/sda2", "/boot", "ext4", "rw"),
    Part("/dev/sdb1", "/var", "xfs", "rw"),
    Part("/dev/loop3", "/snap/core/1", "squashfs", "ro"),
    Part("/dev/sda1", "/srv/bind", "ext4", "rw"),  # bind mount of / : same space
    Part("tmpfs", "/dev/shm", "tmpfs", "rw"),
    Part("tmpfs", "/run", "tmpfs", "rw"),
]


def vfs(used_ratio: float, *, blocks: int = 10_000_000, reserved: int = 0,
        files: int = 1_000_000, inodes_used: float = 0.1) -> Vfs:
    """statvfs with 4 KiB blocks, ``used_ratio`` as df shows it, ``reserved`` root blocks."""
    used = round((blocks - reserved) * used_ratio)
    avail = blocks - reserved - used
    return Vfs(4096, 4096, blocks, avail + reserved, avail, files,
               files - round(files * inodes_used))


def disk_world(stats: dict[str, Vfs], parts=PARTITIONS, **extra) -> dict:
    calls = []

    def partitions(all: bool = False):
        calls.append(all)
        return parts

    world = {"disk_partitions": partitions, "statvfs": lambda m: stats[m],
             "mount_of": lambda p: {"/var/lib/db": "/var", "/var/log": "/var"}.get(p, p)}
    world.update(extra)
    return world


# ---- mount selection -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("options", "expected", "all_flag"),
    [
        ({}, ["/", "/boot", "/var"], False),
        ({"exclude_mounts": ["/boot*"]}, ["/", "/var"], False),
        ({"exclude_fstypes": ["xfs"]}, ["/", "/boot"], False),
        ({"include_fstypes": ["tmpfs"]}, ["/dev/shm", "/run"], True),
        ({"paths": ["/var/lib/db", "/var/log", "/boot"]}, ["/var", "/boot"], None),
        ({"path": "/var/log"}, ["/var"], None),
    ],
    ids=["default-real-mounts", "exclude-mounts-glob", "exclude-fstypes-adds-to-default",
         "include-fstypes-needs-all", "paths-resolve-and-dedupe", "single-path"],
)
def test_mount_selection(options, expected, all_flag):
    calls: list[bool] = []

    def partitions(all: bool = False):
        calls.append(all)
        return PARTITIONS

    check, _ = build("disk", world={"disk_partitions": partitions,
                                    "mount_of": disk_world({})["mount_of"]}, **options)
    assert check.mounts() == expected
    assert calls == ([] if all_flag is None else [all_flag])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": "/", "paths": ["/var"]}, "set either path: or paths:, not both"),
        ({"paths": ["/var"], "exclude_fstypes": ["xfs"]},
         ("exclude_fstypes filters the automatic list of mounts and does nothing with "
         "path:/paths:; remove one of them")),
        ({"include_fstypes": ["ext4"], "exclude_fstypes": ["xfs"]},
         "set either include_fstypes: or exclude_fstypes:, not both"),
    ],
    ids=["path-and-paths", "filter-with-paths", "include-and-exclude"],
)
def test_config_contradictions_are_errors(options, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        DiskConfig.model_validate({"name": "d", "type": "disk", **options})


def test_missing_path_is_unknown(tmp_path):
    with pytest.raises(CheckError, match=r"cannot find the mount of .*/nope"):
        run("disk", path=str(tmp_path / "nope"))


# ---- numbers, statuses, summaries ---------------------------------------------------------

@pytest.mark.parametrize(
    ("ratio", "status", "summary"),
    [
        (0.5, Status.OK, "/var is 50.0% full on testhost; 19.1 GiB free"),
        (0.934, Status.WARNING, "/var is 93.4% full on testhost (warning at 85%); 2.5 GiB free"),
        (0.97, Status.CRITICAL,
         "/var is 97.0% full on testhost (critical at 95%); 1.1 GiB free"),
    ],
    ids=["ok", "warning", "critical"],
)
def test_space_status_and_summary(ratio, status, summary):
    result = run("disk", world=disk_world({"/var": vfs(ratio)}), path="/var")
    assert result.status is status
    assert result.summary == summary
    assert result.measurement("used_ratio", "/var") == pytest.approx(ratio)
    assert result.measurement("total_bytes", "/var") == 10_000_000 * 4096
    assert result.measurement("free_bytes", "/var") == round(10_000_000 * (1 - ratio)) * 4096
    assert result.measurement("inodes_used_ratio", "/var") == 0.1
    assert result.measurement("inodes_free", "/var") == 900_000
    assert result.diagnostics["breached"] == ([] if status is Status.OK else ["/var"])


def test_reserved_blocks_count_as_used_like_df():
    # 1000 blocks, 100 reserved for root, 810 used, 90 available: df says 90% (810/900).
    stats = {"/": Vfs(4096, 4096, 1000, 190, 90, 10, 5)}
    result = run("disk", world=disk_world(stats), path="/")
    assert result.measurement("used_ratio", "/") == 0.9
    assert result.measurement("free_bytes", "/") == 90 * 4096


def test_overrides_glob_on_mount_point():
    stats = {"/": vfs(0.88), "/boot": vfs(0.2), "/var": vfs(0.88)}
    result = run("disk", world=disk_world(stats), overrides={"/var*": {"warning": "90%"}})
    assert result.status is Status.WARNING
    assert result.summary == "/ is 88.0% full on testhost (warning at 85%); 4.6 GiB free"
    assert result.diagnostics["breached"] == ["/"]  # /var is under its own 90 %

    stats["/var"] = vfs(0.934)
    result = run("disk", world=disk_world(stats), overrides={"/var*": {"warning": "90%"}})
    assert result.summary == ("/var is 93.4% full on testhost (warning at 90%); 2.5 GiB free "
                              "(and 1 more mount not OK)")


def test_ok_summary_names_the_fullest_mount():
    stats = {"/": vfs(0.3), "/boot": vfs(0.6), "/var": vfs(0.1)}
    result = run("disk", world=disk_world(stats))
    assert result.status is Status.OK
    assert result.summary == "/boot is 60.0% full on testhost; 15.3 GiB free (fullest of 3 mounts)"


def test_inodes_breach_is_named_in_summary():
    stats = {"/var": vfs(0.5, files=100_000, inodes_used=0.96)}
    result = run("disk", world=disk_world(stats), path="/var")
    assert result.status is Status.CRITICAL
    assert result.summary == ("/var has 96.0% of inodes in use on testhost (critical at 95%); "
                              "4,000 inodes free")
    assert result.measurement("inodes_free", "/var") == 4000


def test_zero_inode_filesystem_emits_no_inode_measurements():
    stats = {"/data": vfs(0.5, files=0, inodes_used=0)}  # btrfs reports f_files = 0
    result = run("disk", world=disk_world(stats), path="/data")
    assert result.status is Status.OK
    assert result.measurement("inodes_used_ratio", "/data") is None
    assert result.measurement("inodes_free", "/data") is None


def test_unreadable_mount_is_unknown_and_others_still_measured():
    def statvfs(mount: str) -> Vfs:
        if mount == "/boot":
            raise OSError(116, "Stale file handle")
        return vfs(0.2)

    result = run("disk", world=disk_world({}, statvfs=statvfs))
    assert result.status is Status.UNKNOWN
    assert result.summary == "cannot read /boot on testhost: Stale file handle"
    assert result.measurement("used_ratio", "/var") == pytest.approx(0.2)
    assert "/boot" in result.diagnostics["unreadable"]


def test_no_mounts_left_is_unknown():
    with pytest.raises(CheckError, match="no mounts to check on testhost"):
        run("disk", world=disk_world({}), exclude_mounts=["*"])


def test_full_in_seconds_from_growth_since_previous_run():
    samples = iter([vfs(0.5), Vfs(4096, 4096, 10_000_000, 5_000_000 - 153_600,
                                  5_000_000 - 153_600, 1000, 900)])
    clock = iter([1000.0, 1600.0])
    check, ctx = build("disk", world=disk_world({}, statvfs=lambda m: next(samples),
                                                clock=lambda: next(clock)),
                       path="/var", thresholds={"full_in_seconds": {"warning": "6h"}})
    first = check.run(ctx)
    assert first.measurement("full_in_seconds", "/var") is None
    second = check.run(ctx)
    # 600 MiB in 600 s = 1 MiB/s; (5,000,000 - 153,600) blocks of 4 KiB left.
    assert second.measurement("full_in_seconds", "/var") == (5_000_000 - 153_600) * 4096 / MiB
    assert second.status is Status.WARNING
    assert second.summary == ("/var will be full in 5h 15m on testhost at the current rate "
                              "(warning at 6h); 18.5 GiB free")


def test_shrinking_mount_has_no_full_in():
    samples = iter([vfs(0.5), vfs(0.4)])
    clock = iter([0.0, 60.0])
    check, ctx = build("disk", world=disk_world({}, statvfs=lambda m: next(samples),
                                                clock=lambda: next(clock)), path="/var")
    check.run(ctx)
    assert check.run(ctx).measurement("full_in_seconds", "/var") is None


def test_real_host_root_matches_df():
    root = next(p for p in psutil.disk_partitions(all=True) if p.mountpoint == "/")
    # In a container "/" is overlay, which the default selection leaves out on purpose.
    options = {"path": "/"} if root.fstype in DEFAULT_EXCLUDED_FSTYPES else {}
    result = run("disk", **options)
    assert result.measurement("used_ratio", "/") == pytest.approx(
        psutil.disk_usage("/").percent / 100, abs=0.002)
    st = os.statvfs("/")
    assert result.measurement("total_bytes", "/") == st.f_blocks * st.f_frsize


def test_real_host_path_resolves_to_its_mount(tmp_path):
    result = run("disk", path=str(tmp_path))
    mount = mount_point(str(tmp_path))
    assert os.path.ismount(mount)
    assert {m.item for m in result.measurements} == {mount}


# ---- diagnostics: the walkers on a real temporary tree ----------------------------------

def write(path, size: int, mtime: float | None = None) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    if os.stat(path).st_blocks * 512 != size:
        pytest.skip("this filesystem does not allocate whole 4 KiB blocks exactly")
    return size


NOW = 1_700_000_000.0


@pytest.fixture
def tree(tmp_path):
    """a/ 3 x 64 KiB + a/deep/big 256 KiB (recent); b/ 128 KiB (old); c/ empty."""
    for i in range(3):
        write(tmp_path / "a" / f"f{i}", 64 * KiB, NOW - 90_000)
    write(tmp_path / "a" / "deep" / "big", 256 * KiB, NOW - 100)
    write(tmp_path / "b" / "log", 128 * KiB, NOW - 3_600)
    write(tmp_path / "top.bin", 8 * KiB, NOW - 200_000)
    (tmp_path / "c").mkdir()
    return tmp_path


def test_largest_directories_and_recent_files_exact(tree):
    found = disk_usage.scan_tree(str(tree), now=lambda: NOW)
    assert found["largest_directories"] == [
        {"path": str(tree / "a"), "bytes": 448 * KiB},
        {"path": str(tree / "a" / "deep"), "bytes": 256 * KiB},
        {"path": str(tree / "b"), "bytes": 128 * KiB},
        {"path": str(tree / "c"), "bytes": 0},
    ]
    assert found["recent_large_files"] == [
        {"path": str(tree / "a" / "deep" / "big"), "bytes": 256 * KiB,
         "modified_seconds_ago": 100.0},
        {"path": str(tree / "b" / "log"), "bytes": 128 * KiB, "modified_seconds_ago": 3600.0},
    ]
    coverage = found["coverage"]
    assert coverage["complete"] is True
    assert coverage["bytes"] == 584 * KiB
    assert coverage["entries"] == 10  # 4 dirs + 6 files


def test_depth_and_top_limit_the_listing(tree):
    found = disk_usage.scan_tree(str(tree), top=1, max_depth=1, now=lambda: NOW)
    assert found["largest_directories"] == [{"path": str(tree / "a"), "bytes": 448 * KiB}]
    assert [f["bytes"] for f in found["recent_large_files"]] == [256 * KiB]


def test_hard_links_count_once(tree):
    os.link(tree / "b" / "log", tree / "c" / "same-log")
    found = disk_usage.scan_tree(str(tree), now=lambda: NOW)
    assert found["coverage"]["bytes"] == 584 * KiB


def test_walk_stops_at_the_deadline_and_says_so(tmp_path):
    for i in range(600):
        (tmp_path / f"e{i}").touch()
    ticks = iter(range(100))
    found = disk_usage.scan_tree(str(tmp_path), deadline_seconds=1.5,
                                 clock=lambda: float(next(ticks)))
    # The clock is read at the start and every 256 entries: 1 s, then 2 s > 1.5 s.
    assert found["coverage"]["complete"] is False
    assert found["coverage"]["entries"] == 512


def test_walk_stops_at_the_entry_budget(tmp_path):
    for i in range(50):
        (tmp_path / f"e{i}").touch()
    found = disk_usage.scan_tree(str(tmp_path), max_entries=10)
    assert found["coverage"]["complete"] is False
    assert found["coverage"]["entries"] == 10


def test_walk_never_crosses_into_other_filesystems():
    found = disk_usage.scan_tree("/", deadline_seconds=0.3, max_depth=1)
    listed = {d["path"] for d in found["largest_directories"]}
    assert "/proc" not in listed and "/sys" not in listed
    assert found["coverage"]["other_filesystems_skipped"] >= 2


def test_deleted_but_open_file_is_reported(tmp_path):
    path = tmp_path / "rotated.log"
    size = write(path, 256 * KiB)
    with open(path, "rb") as held:
        path.unlink()
        found = disk_usage.deleted_open_files(mount_point(str(tmp_path)))
        with open("/proc/self/comm", encoding="utf-8") as fh:
            comm = fh.read().strip()
        mine = [f for f in found["files"] if f["pid"] == os.getpid()]
        assert mine == [{"pid": os.getpid(), "process": comm, "fd": held.fileno(),
                         "path": str(path), "bytes": size}]
        assert found["total_bytes"] >= size
    after = disk_usage.deleted_open_files(mount_point(str(tmp_path)))
    assert not [f for f in after["files"] if f["path"] == str(path)]


def test_diagnose_walks_each_breached_mount(tree):
    root = str(tree)
    check, ctx = build("disk", world={"statvfs": lambda m: vfs(0.97), "mount_of": lambda p: p},
                       path=root, top=2)
    result = check.run(ctx)
    assert result.status is Status.CRITICAL
    found = check.diagnose(result)["mounts"][root]
    assert [d["path"] for d in found["largest_directories"]] == [
        str(tree / "a"), str(tree / "a" / "deep")]
    assert found["coverage"]["complete"] is True
    assert "files" in found["deleted_open_files"]


def test_diagnose_is_empty_when_nothing_breached():
    check, ctx = build("disk", world=disk_world({"/var": vfs(0.1)}), path="/var")
    assert check.diagnose(check.run(ctx)) == {}


def test_declares_no_generic_diagnostics():
    assert DiskCheck.DIAGNOSTICS == ()


# ---- ranking: a full disk outranks a mount that could not be read ---------------------

NFS_PARTS = [Part("/dev/sdb1", "/data", "xfs", "rw"), Part("srv:/export", "/mnt/nfs", "nfs4", "rw"),
             Part("/dev/sda1", "/", "ext4", "rw")]


def _nfs_down(full: float):
    def statvfs(mount: str) -> Vfs:
        if mount == "/mnt/nfs":
            raise OSError(5, "Input/output error")
        return vfs(full) if mount == "/data" else vfs(0.3)
    return disk_world({}, parts=NFS_PARTS, statvfs=statvfs)


def test_full_disk_beside_unreadable_nfs_is_critical_and_named_first():
    from patrol.agent.events import build_event
    from patrol.agent.state import CheckInfo, CheckView, Transition

    result = run("disk", world=_nfs_down(0.99))
    assert result.status is Status.CRITICAL
    view = CheckView(CheckInfo("disk", "disk"), status=result.status, result=result)
    event = build_event(view, Transition("disk", Status.OK, result.status), "testhost", {},
                        "0123456789abcdef", 1)
    assert (event.severity, event.summary) == ("critical", result.summary)  # not "error"
    assert result.summary.startswith("/data is 99.0% full on testhost (critical at 95%)")
    assert result.summary.endswith("; also: cannot read /mnt/nfs: Input/output error")
    assert result.diagnostics["breached"] == ["/data"]
    assert result.diagnostics["unreadable"] == {"/mnt/nfs": "Input/output error"}


def test_warning_beside_unreadable_mount_is_unknown_but_still_names_the_warning():
    result = run("disk", world=_nfs_down(0.90))
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith("/data is 90.0% full on testhost (warning at 85%)")
    assert "also: cannot read /mnt/nfs" in result.summary


@pytest.mark.parametrize(("statuses", "worst"), [
    ((Status.UNKNOWN, Status.CRITICAL), Status.CRITICAL),
    ((Status.CRITICAL, Status.UNKNOWN), Status.CRITICAL),
    ((Status.WARNING, Status.UNKNOWN), Status.UNKNOWN),
    ((Status.OK, Status.WARNING), Status.WARNING),
    ((), Status.OK),
])
def test_worst_ranks_critical_above_unknown(statuses, worst):
    assert Status.worst(*statuses) is worst


def test_unreadable_then_full_counts_as_worse_and_captures_diagnostics():
    from patrol.agent.state import Transition

    assert Transition("disk", Status.UNKNOWN, Status.CRITICAL).capture
    assert not Transition("disk", Status.CRITICAL, Status.UNKNOWN).capture
