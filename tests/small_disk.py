"""A real small filesystem for disk-full and read-only tests: a tmpfs of a few
kilobytes mounted on a folder under the test's tmp_path, filled or remounted
read-only at will, and unmounted by its path afterwards. The machine's own disk is
never filled. Needs root (mounting); tests skip with the reason otherwise."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fill(self) -> None:
        """Write until the filesystem refuses (ENOSPC): every later write fails."""
        fd = os.open(self.path / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)

    def free(self) -> None:
        """Space returns."""
        (self.path / "filler").unlink(missing_ok=True)

    def read_only(self, on: bool = True) -> None:
        _run("mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.path))


@contextmanager
def small_disk(path: Path, size: str = "256k") -> Iterator[SmallDisk]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path))
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)
