"""What systemd hears from the daemon's main loop: READY once, STATUS lines, WATCHDOG while healthy.

The daemon is ready when its observers are up (at least one, none dead) and Redis and
the broker answer. The watchdog is fed from the main loop itself, and only while no
observer is dead and no part is stuck: a stuck loop, a claim thread wedged past its
deadline, or a dead observer the daemon's supervision cannot restart, stops the pings and
systemd restarts the daemon after ``WatchdogSec``. A root that is missing (a NAS that went
away) is not a dead observer: restarting would not bring it back; it is reported in
STATUS, /readyz and /metrics instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis

from vidwatch.ops.notify import Notifier
from vidwatch.results.keys import Keys
from vidwatch.status import DaemonStatus

logger = logging.getLogger(__name__)

READY_CHECK_S = 2.0
STATUS_S = 5.0
DEFAULT_WATCHDOG_PING_S = 5.0


class Supervised(Protocol):
    client: redis.Redis

    def status(self) -> DaemonStatus: ...


def dead_observers(status: DaemonStatus) -> list[str]:
    return [root for root, alive in status.observers.items() if not alive]


class ServiceNotifier:
    """Call :meth:`after_tick` after every main-loop tick and :meth:`stopping` before shutdown."""

    def __init__(
        self,
        daemon: Supervised,
        notifier: Notifier,
        broker_ok: Callable[[], tuple[bool, Any]],
        keys: Keys,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.daemon = daemon
        self.notifier = notifier
        self.broker_ok = broker_ok
        self.keys = keys
        self.clock = clock
        self.ready = False
        # systemd recommends pinging at half the timeout; a third leaves room for a slow tick
        self.ping_s = notifier.watchdog_s / 3 if notifier.watchdog_s else DEFAULT_WATCHDOG_PING_S
        self._next = {"ready": 0.0, "watchdog": 0.0, "status": 0.0}
        self._last_status = ""

    def after_tick(self) -> None:
        if not self.notifier.enabled:
            return
        now = self.clock()
        status = self.daemon.status()
        alive = not dead_observers(status) and not status.stuck  # a wedged claim thread: let systemd restart us
        if not self.ready and now >= self._next["ready"]:
            self._next["ready"] = now + READY_CHECK_S
            waiting = self._waiting_for(status, alive and bool(status.observers))
            if not waiting:
                self.ready = True
                self._last_status = self.status_line(status)
                self.notifier.ready(self._last_status)
                logger.info("daemon: ready (%s)", self._last_status)
            else:
                self._send_status(f"starting: waiting for {', '.join(waiting)}")
        if alive and now >= self._next["watchdog"]:
            self.notifier.watchdog()
            self._next["watchdog"] = now + self.ping_s
        if self.ready and now >= self._next["status"]:
            self._next["status"] = now + STATUS_S
            self._send_status(self.status_line(status))

    def starting(self) -> None:
        self._send_status("starting: connecting to Redis, starting the observers")

    def stopping(self) -> None:
        self.notifier.stopping("stopping: finishing files in flight")

    def status_line(self, status: DaemonStatus) -> str:
        in_flight = status.claiming + status.videos_in_progress
        try:
            pipe = self.daemon.client.pipeline(transaction=False)
            pipe.zcard(self.keys.backlog)
            pipe.scard(self.keys.inflight)
            waiting, not_done = pipe.execute()
            backlog = f"backlog {status.settling} settling, {waiting} to normalize, {not_done} not done"
        except redis.RedisError:
            backlog = f"backlog {status.settling} settling, Redis unreachable"
        line = f"{in_flight} file(s) in flight; {backlog}"
        if status.publish_retries:
            line += f"; {status.publish_retries} waiting for the broker"
        dead = status.dead_roots
        if dead:
            line += f"; not watching {', '.join(dead)}"
        return line

    def _waiting_for(self, status: DaemonStatus, alive: bool) -> list[str]:
        waiting = []
        if not alive:
            waiting.append("observers")
        if not status.redis_ok:
            waiting.append("Redis")
        if not waiting and not self.broker_ok()[0]:
            waiting.append("the broker")
        return waiting

    def _send_status(self, line: str) -> None:
        if line != self._last_status:
            self._last_status = line
            self.notifier.status(line)
