"""Drive headless Chromium through the DevTools protocol over ``--remote-debugging-pipe`` (no websocket library).

``--dump-dom`` with a virtual-time budget suits pages whose scripts only fetch: virtual time
does not wait for a video to load and decode, so a check that a ``<video>`` plays waits here
in real time instead, with a deadline. Chromium reads commands from its fd 3 and writes
answers and events to its fd 4, each a JSON text ended by a NUL byte.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Browser:
    def __init__(self, proc: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self.proc = proc
        self.to_browser = to_browser
        self.from_browser = from_browser
        self.buffer = b""
        self.next_id = 0
        self.session: str | None = None

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout_s: float = 30.0) -> dict[str, Any]:
        """Send one command (to the attached page, once :meth:`open` attached one) and return its result."""
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            for reply in self._messages(deadline):
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})

    def _messages(self, deadline: float) -> Iterator[dict[str, Any]]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from chromium")
            ready, _, _ = select.select([self.from_browser], [], [], left)
            if ready:
                chunk = os.read(self.from_browser, 65536)
                if not chunk:
                    raise RuntimeError("chromium closed its pipe")
                self.buffer += chunk
        *whole, self.buffer = self.buffer.split(b"\0")
        for text in whole:
            yield json.loads(text)

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout_s: float) -> Any:
        """Evaluate ``expression`` until it is truthy (returns it) or the deadline passes (returns the last value)."""
        deadline = time.monotonic() + timeout_s
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        return value


@contextmanager
def chromium_pipe(chromium: str, flags: list[str], profile: Path) -> Iterator[Browser]:
    """A headless Chromium driven over its debugging pipe; closed (and waited for) afterwards."""
    to_read, to_write = os.pipe()  # we write commands; chromium reads them on fd 3
    from_read, from_write = os.pipe()  # chromium writes answers on fd 4; we read them

    def on_fds_3_and_4() -> None:
        high_in = fcntl.fcntl(to_read, fcntl.F_DUPFD, 100)
        high_out = fcntl.fcntl(from_write, fcntl.F_DUPFD, 100)
        os.dup2(high_in, 3)
        os.dup2(high_out, 4)

    proc = subprocess.Popen(
        [chromium, *[f for f in flags if not f.startswith("--virtual-time-budget")], "--remote-debugging-pipe",
         f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        pass_fds=(3, 4), preexec_fn=on_fds_3_and_4,  # noqa: PLW1509 - only dup2 before exec
    )
    os.close(to_read)
    os.close(from_write)
    browser = Browser(proc, to_write, from_read)
    try:
        yield browser
    finally:
        try:
            browser.call("Browser.close", timeout_s=5)
        except (RuntimeError, TimeoutError, OSError):
            proc.kill()
        proc.wait(timeout=30)
        os.close(to_write)
        os.close(from_read)
