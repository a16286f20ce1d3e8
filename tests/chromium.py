"""Real headless Chromium (Debian's ``chromium``) for the web page tests, and a tiny PNG
reader so a test can ask which colours a screenshot shows (no imaging library needed).

Each call starts a fresh browser with a throw-away profile, so no cookie, cache or
history carries over between calls: a page that needs a login must be reached through
a one-time ``/login?code=...&next=/page`` link, as a person's first click would. Only pages on
127.0.0.1 are allowed, and background networking is off, so a test never talks to the
internet. Every run has a timeout; a hung browser fails the test with its stderr.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from tests.conftest import require_command

TIMEOUT_SECONDS = 60
WINDOW = (1280, 900)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def _local(url: str) -> str:
    if urlsplit(url).hostname != "127.0.0.1":
        raise ValueError(f"refusing to browse {url!r}: tests only open pages on 127.0.0.1")
    return url


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    binary = require_command("chromium", "chromium")
    with tempfile.TemporaryDirectory(prefix="patrol-chromium-") as profile:
        argv = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"chromium did not finish within {timeout}s: {argv}\n"
                                 f"stderr: {exc.stderr!r}") from exc
    if done.returncode != 0:
        raise AssertionError(f"chromium exited {done.returncode}: {argv}\n{done.stderr}")
    return done


def dump_dom(url: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """The page's DOM after load, serialised as HTML (what ``--dump-dom`` prints)."""
    return _run(["--dump-dom", _local(url)], timeout).stdout


def screenshot(url: str, path: Path, window: tuple[int, int] = WINDOW,
               timeout: float = TIMEOUT_SECONDS) -> Path:
    """A PNG of the page at ``window`` size, written to ``path``."""
    _run([f"--screenshot={path}", f"--window-size={window[0]},{window[1]}",
          "--hide-scrollbars", _local(url)], timeout)
    if not path.is_file():
        raise AssertionError(f"chromium wrote no screenshot to {path}")
    return path


def _unfilter(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    """Undo one PNG scanline filter (RFC 2083 section 6)."""
    if kind == 0:
        return row
    if kind == 2:  # Up: bytewise (row + prev) mod 256, done on big ints without carries
        n = len(row)
        a, b = int.from_bytes(row, "big"), int.from_bytes(prev, "big")
        low, high = int.from_bytes(b"\x7f" * n, "big"), int.from_bytes(b"\x80" * n, "big")
        return (((a & low) + (b & low)) ^ ((a ^ b) & high)).to_bytes(n, "big")
    out = bytearray(row)
    for i in range(len(out)):
        left = out[i - bpp] if i >= bpp else 0
        up = prev[i]
        if kind == 1:
            out[i] = (out[i] + left) & 0xFF
        elif kind == 3:
            out[i] = (out[i] + ((left + up) >> 1)) & 0xFF
        else:  # 4, Paeth
            corner = prev[i - bpp] if i >= bpp else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            out[i] = (out[i] + pred) & 0xFF
    return bytes(out)


def png_colours(path: Path) -> Counter[tuple[int, int, int]]:
    """How many pixels of each RGB colour an 8-bit RGB(A) non-interlaced PNG has (what
    Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, header, idat = 8, b"", []
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        header = body if kind == b"IHDR" else header
        if kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and not interlace, "unsupported PNG layout"
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    counts: Counter[tuple[int, int, int]] = Counter()
    prev = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        prev = _unfilter(raw[start], raw[start + 1:start + 1 + stride], prev, bpp)
        counts.update(zip(prev[0::bpp], prev[1::bpp], prev[2::bpp], strict=True))
    return counts
