"""Serve the API from a thread of the daemon process, and the readiness checks it runs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn

from vidwatch.api.app import Check, create_app
from vidwatch.api.deps import DaemonView
from vidwatch.broker import broker_check
from vidwatch.config import Config
from vidwatch.filesystems import spool_space
from vidwatch.ops.snapshot import live_workers, workers_by_queue
from vidwatch.results.keys import Keys
from vidwatch.results.lag import lag_report
from vidwatch.tasks.app import QUEUES

logger = logging.getLogger(__name__)

BROKER_CHECK_TTL_S = 5.0


class BrokerCheck:
    """Connect to the broker (cached for a few seconds: /readyz may be polled often)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._cached: tuple[float, tuple[bool, Any]] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> tuple[bool, Any]:
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < BROKER_CHECK_TTL_S:
                return self._cached[1]
            result: tuple[bool, Any] = broker_check(self.url, timeout_s=3.0)
            self._cached = (time.monotonic(), result)
            return result


def readiness_checks(config: Config, daemon: Any) -> dict[str, Check]:
    keys = Keys(config.redis.prefix)

    def redis_check() -> tuple[bool, Any]:
        daemon.client.ping()
        return True, "ping ok"

    def roots_check() -> tuple[bool, Any]:
        """From the daemon's own supervision: no file system call here, which a hung NAS would block."""
        status = daemon.status()
        errors, observers = status.root_errors, status.observers
        detail = {}
        for root in map(str, config.watch.roots):
            if root in errors:
                detail[root] = errors[root]
            elif root not in observers:
                detail[root] = "not watched yet"
            else:
                detail[root] = "ok" if observers[root] else "observer dead"
        return all(why == "ok" for why in detail.values()), detail

    def workers_check() -> tuple[bool, Any]:
        """Ready when the queue this daemon publishes to has a live worker (and so does summary's, if any)."""
        by_queue = workers_by_queue(live_workers(daemon.client, keys), QUEUES)
        target = getattr(daemon, "queue", "cpu")
        return bool(by_queue.get(target)), {"publishing_to": target, "per_queue": by_queue}

    def spool_check() -> tuple[bool, Any]:
        return spool_space(config.paths.spool)

    def consumers_check() -> tuple[bool, Any]:
        """A warning, never "not ready": consumer groups close to losing entries to trimming or retention."""
        return True, lag_report(daemon.client, keys, config.redis, retention=config.retention)

    return {
        "redis": redis_check,
        "broker": BrokerCheck(config.broker.url.get_secret_value()),
        "roots": roots_check,
        "workers": workers_check,
        "spool": spool_check,
        "consumers": consumers_check,
    }


class ApiServer:
    """uvicorn in a thread; ``port`` is known once started (``listen`` may ask for port 0)."""

    def __init__(self, config: Config, daemon: DaemonView, checks: dict[str, Check]) -> None:
        self.app = app = create_app(daemon, checks)
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host=config.api.host, port=config.api.port, log_level="warning", lifespan="off",
                access_log=False,
            )
        )
        self.thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    def start(self, timeout_s: float = 10.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise OSError("api: the HTTP server did not start (is the port in use?)")
            time.sleep(0.05)
        logger.info("api: listening on http://%s:%d", *self.address)

    @property
    def address(self) -> tuple[str, int]:
        sockets = self.server.servers[0].sockets
        host, port = sockets[0].getsockname()[:2]
        return host, port

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
