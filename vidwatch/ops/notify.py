"""sd_notify(3) without libsystemd: each notification is one datagram to ``$NOTIFY_SOCKET``.

>>> Notifier(environ={}).notify("READY=1")
False
>>> Notifier(environ={"NOTIFY_SOCKET": "@vidwatch/notify"}).address
'\\x00vidwatch/notify'
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

logger = logging.getLogger(__name__)


def _address(raw: str) -> str | None:
    """A filesystem path, or ``@name`` for Linux's abstract namespace (a leading NUL byte)."""
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    return None


class Notifier:
    """Talks to the service manager when it asked us to (``Type=notify``); silent otherwise."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self.address = _address(raw)
        if raw and self.address is None:
            logger.warning("notify: NOTIFY_SOCKET=%r is not a path or an abstract socket; not notifying", raw)
        self.watchdog_s: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; True when it was sent."""
        if self.address is None:
            return False
        payload = "\n".join(assignments).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(payload)
        except OSError as exc:
            if not self._warned:  # once: the manager may be gone during shutdown
                logger.warning("notify: cannot reach the service manager at NOTIFY_SOCKET: %s", exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify("STOPPING=1", f"STATUS={_one_line(status)}")


def _one_line(text: str) -> str:
    return " ".join(text.split())
