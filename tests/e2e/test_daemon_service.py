"""`vidwatch daemon` as systemd runs it: notifications on $NOTIFY_SOCKET, a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.helpers import moving_square_clip, wait_for

pytestmark = pytest.mark.e2e


class Manager:
    """The service manager's end of NOTIFY_SOCKET: records every datagram."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def seen(self, line: str) -> int:
        return sum(1 for m in list(self.messages) if line in m.splitlines())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def test_daemon_notifies_ready_watchdog_and_stopping(site: dict, tmp_path: Path, ffmpeg: str) -> None:
    manager = Manager(tmp_path / "notify.sock")
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1500000",
           "WATCHDOG_PID": ""}
    log = open(tmp_path / "daemon.log", "wb")  # noqa: SIM115 - closed in finally
    daemon = subprocess.Popen([str(Path(sys.executable).with_name("vidwatch")), "daemon", "-c", str(site["config"])],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: manager.seen("READY=1"), timeout_s=60, what="READY=1")
        ready_at = len(manager.messages)
        wait_for(lambda: "WATCHDOG=1" in manager.messages[ready_at:], timeout_s=10, what="a watchdog ping after READY")
        assert any(line.startswith("STATUS=") and "in flight" in line
                   for m in manager.messages for line in m.splitlines())
        health = httpx.get(f"http://127.0.0.1:{site['port']}/healthz", timeout=5)
        assert health.status_code == 200, health.text

        moving_square_clip(site["inbox"] / "cam1" / "a.mp4", seconds=2)  # normalized and published: timed

        def timed() -> bool:
            text = httpx.get(f"http://127.0.0.1:{site['port']}/metrics", timeout=5).text
            return "vidwatch_publish_seconds_count 1.0" in text and "vidwatch_normalize_seconds_count 1.0" in text

        wait_for(timed, timeout_s=30, what="publish and normalize latencies in /metrics")
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
        wait_for(lambda: manager.seen("STOPPING=1"), timeout_s=5, what="STOPPING=1")
    finally:
        if daemon.poll() is None:
            daemon.kill()
        log.close()
        manager.close()
    assert code == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    assert manager.seen("READY=1") == 1
    assert manager.messages[0] == "STATUS=starting: connecting to Redis, starting the observers"
    assert not any("WATCHDOG=1" in m for m in manager.messages[manager.messages.index(
        next(m for m in manager.messages if "STOPPING=1" in m)):])  # no ping after STOPPING
