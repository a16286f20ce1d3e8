"""Read the complete lines appended to a log file since the previous read.

Survives the two ways logs get rotated:

* **rename + create** (logrotate's default): the file at ``path`` is a new inode.
  The old file is still open here, so its remainder (lines written after the
  previous read but before rotation) is read first, then the new file from its
  start.
* **copytruncate**: same inode, size below the saved offset: read again from 0.
  Lines written between logrotate's copy and its truncate are lost; that is
  copytruncate's own race. If the truncated file grows past the old offset
  before the next read, the truncation cannot be seen by size alone.

A partial last line (no newline yet) is held back until it is complete. A read is
bounded by ``max_bytes``: if more is waiting, the oldest bytes are skipped and
reported, so a runaway log cannot stall the agent. Lines are returned as bytes;
decoding is the caller's job (the split is on ``b"\\n"``, so the encoding must be
ASCII-compatible).

State (open handle, device/inode, offset) lives in the :class:`LogTail` instance;
nothing is written to disk. Starting at the end of a file whose last line is not
finished yet makes the rest of that line, once written, count as a new line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import BinaryIO

MAX_LINE = 1024 * 1024  # a pending partial line longer than this is cut into a line


@dataclass
class Chunk:
    """What one :meth:`LogTail.read` found."""

    lines: list[bytes] = field(default_factory=list)
    skipped_bytes: int = 0
    rotated: bool = False
    truncated: bool = False
    first: bool = False


class LogTail:
    """Incremental reader of one path; ``start_at_end`` skips existing history on
    the very first read. Raises ``OSError`` when the file cannot be opened."""

    def __init__(self, path: str, start_at_end: bool = True, max_bytes: int = 64 << 20) -> None:
        self.path = path
        self.start_at_end = start_at_end
        self.max_bytes = max_bytes
        self._fh: BinaryIO | None = None
        self._identity: tuple[int, int] | None = None
        self._offset = 0
        self._pending = b""

    @property
    def offset(self) -> int:
        return self._offset

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._fh = None

    def _open(self) -> BinaryIO:
        fh = open(self.path, "rb")  # noqa: SIM115 - kept open across reads on purpose
        st = os.fstat(fh.fileno())
        self.close()
        self._fh, self._identity = fh, (st.st_dev, st.st_ino)
        self._offset, self._pending = 0, b""
        return fh

    def read(self) -> Chunk:
        chunk = Chunk()
        if self._fh is None:
            fh = self._open()
            chunk.first = True
            if self.start_at_end:
                self._offset = os.fstat(fh.fileno()).st_size
                return chunk
            self._drain(chunk, self.max_bytes)
            return chunk
        assert self._fh is not None
        if os.fstat(self._fh.fileno()).st_size < self._offset:
            chunk.truncated = True
            self._offset, self._pending = 0, b""
        budget = self._drain(chunk, self.max_bytes)
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return chunk  # rotated away and not recreated yet: keep the old handle
        if (st.st_dev, st.st_ino) != self._identity:
            chunk.rotated = True
            if self._pending:  # the old file's last line will never be completed
                chunk.lines.append(self._pending)
            self._open()
            self._drain(chunk, budget)
        return chunk

    def _drain(self, chunk: Chunk, budget: int) -> int:
        """Read from the offset to EOF (at most ``budget`` bytes, skipping the
        oldest excess); returns the budget left."""
        fh = self._fh
        assert fh is not None
        size = os.fstat(fh.fileno()).st_size
        waiting = size - self._offset
        if waiting <= 0:
            return budget
        if waiting > budget:
            skip = waiting - budget
            chunk.skipped_bytes += skip + len(self._pending)
            self._offset += skip
            self._pending = b""
            fh.seek(self._offset - 1)
            at_line_start = fh.read(1) == b"\n"
            data = fh.read(budget)
            self._offset += len(data)
            budget -= len(data)
            if not at_line_start:  # drop the partial first line, resynchronise
                cut = data.find(b"\n") + 1 or len(data)
                chunk.skipped_bytes += cut
                data = data[cut:]
        else:
            fh.seek(self._offset)
            data = fh.read(waiting)
            self._offset += len(data)
            budget -= len(data)
        data = self._pending + data
        *complete, self._pending = data.split(b"\n")
        if len(self._pending) > MAX_LINE:
            complete.append(self._pending)
            self._pending = b""
        chunk.lines.extend(line.rstrip(b"\r") for line in complete)
        return max(budget, 0)
