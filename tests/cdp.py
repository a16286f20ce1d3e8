"""Driving real headless Chromium like a person: type into a field, click a button,
follow the redirect, read the page, take a screenshot. Through the DevTools protocol
(a WebSocket), because ``--dump-dom`` and ``--screenshot`` cannot fill a form.

One :class:`Browser` is one Chromium process with a throw-away profile; its cookies
live as long as it does, so a test logs in once and then acts. Only pages on
127.0.0.1 are opened; the process is stopped by its PID.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import requests
from websockets.sync.client import connect

from tests.chromium import FLAGS, WINDOW, _local
from tests.conftest import free_port, require_command

TIMEOUT_SECONDS = 30.0


class Browser:
    def __init__(self, window: tuple[int, int] = WINDOW) -> None:
        binary = require_command("chromium", "chromium")
        self._profile = tempfile.TemporaryDirectory(prefix="patrol-cdp-")
        port = free_port()
        self._proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self._profile.name}",
             f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
             f"--window-size={window[0]},{window[1]}", "--hide-scrollbars", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []
        self._stack = ExitStack()
        try:
            target = self._page_target(port)
            self._ws = self._stack.enter_context(
                connect(target, max_size=64 * 1024 * 1024, open_timeout=10))
            for domain in ("Page", "DOM"):
                self.call(f"{domain}.enable")
        except BaseException:
            self.close()
            raise

    def _page_target(self, port: int) -> str:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise AssertionError(f"chromium exited {self._proc.returncode}: "
                                     f"{self._proc.stderr.read().decode()[-2000:]}")
            try:
                pages = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=1).json()
                found = [p["webSocketDebuggerUrl"] for p in pages if p.get("type") == "page"]
                if found:
                    return found[0]
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError("chromium's DevTools endpoint did not come up")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            message = json.loads(self._ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                return message.get("result", {})
            self._events.append(message)

    def _wait_for_load(self) -> None:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while True:
            if any(e.get("method") == "Page.loadEventFired" for e in self._events):
                self._events.clear()
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("the page did not finish loading")
            self._events.append(json.loads(self._ws.recv(timeout=remaining)))

    # -- what a person does ------------------------------------------------------------

    def open(self, url: str) -> None:
        self._events.clear()
        self.call("Page.navigate", url=_local(url))
        self._wait_for_load()

    def _node(self, selector: str) -> int:
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        if not node:
            raise AssertionError(f"no element {selector!r} on {self.url()}")
        return node

    def type(self, selector: str, text: str) -> None:
        """Focus the field and type ``text`` into it (as keyboard input, no script)."""
        self.call("DOM.focus", nodeId=self._node(selector))
        self.call("Input.insertText", text=text)

    def click(self, selector: str, navigates: bool = True) -> None:
        """A mouse click in the middle of the element; waits for the next page."""
        node = self._node(selector)
        self.call("DOM.scrollIntoViewIfNeeded", nodeId=node)
        quad = self.call("DOM.getBoxModel", nodeId=node)["model"]["content"]
        x, y = sum(quad[0::2]) / 4, sum(quad[1::2]) / 4
        self._events.clear()
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)
        if navigates:
            self._wait_for_load()

    def html(self) -> str:
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        return self.call("DOM.getOuterHTML", nodeId=root)["outerHTML"]

    def url(self) -> str:
        return self.call("Page.getNavigationHistory")["entries"][-1]["url"]

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        shot = self.call("Page.captureScreenshot", format="png",
                         captureBeyondViewport=full_page)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        self._stack.close()
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
