"""Publish one task message per video: persistent, to a durable queue, confirmed by the broker."""

from __future__ import annotations

import logging
import threading
import time

from celery import Celery
from kombu.connection import Connection

from vidwatch.broker import broker_errors
from vidwatch.config import Config
from vidwatch.errors import PublishError
from vidwatch.status import PublishMetrics
from vidwatch.tasks.app import ANALYZE_TASK, task_id

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0


def queue_for(config: Config) -> str:
    """The queue videos are published to: ``[engine] queue``; ``auto`` follows ``[engine] kind``.

    Only the configuration decides (never this host's GPU: the daemon may run where no worker does).

    >>> from vidwatch.config import EngineConfig
    >>> queue_for(Config(engine=EngineConfig(kind="tensorrt"))), queue_for(Config())
    ('gpu', 'cpu')
    >>> queue_for(Config(engine=EngineConfig(queue="gpu")))
    'gpu'
    """
    return config.engine.publish_queue


class Publisher:
    """One broker connection per publishing thread (reopened after a failure); safe to call from several threads.

    Each thread waits for its own publisher confirms: the normalization workers publish at once
    instead of queueing behind one connection's confirm round trip.
    """

    def __init__(self, app: Celery, queue: str, timeout_s: float = 10.0) -> None:
        self.app = app
        self.task_name = ANALYZE_TASK[queue]
        self.timeout_s = timeout_s
        self._lock = threading.Lock()  # guards _open only; never held while publishing
        self._open: set[Connection] = set()
        self._local = threading.local()
        self._metrics: PublishMetrics | None = None

    def report_to(self, metrics: PublishMetrics) -> None:
        """Tell ``metrics`` how long each confirmed publish took (failed ones show as retries)."""
        self._metrics = metrics

    def publish(self, video_id: str) -> None:
        """Return once the broker confirmed the message; raise :class:`PublishError` (retryable) otherwise."""
        started = time.monotonic()
        try:
            with broker_errors(f"publish: video {video_id}"):
                self._send(video_id)
        except PublishError:
            self._reset()
            raise
        if self._metrics is not None:
            self._metrics.publish_confirmed(time.monotonic() - started)

    def _connection(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        with self._lock:
            if connection is not None and connection in self._open:
                return connection
        # Every socket operation is bounded: a broker that accepts TCP but never
        # answers (starting up, overloaded) must not block publishing forever.
        connection = self.app.connection_for_write(
            connect_timeout=CONNECT_TIMEOUT_S,
            transport_options={"read_timeout": self.timeout_s, "write_timeout": self.timeout_s},
        )
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=CONNECT_TIMEOUT_S)
        with self._lock:
            self._open.add(connection)
        self._local.connection = connection
        return connection

    def _send(self, video_id: str) -> None:
        self.app.send_task(  # a nack raises MessageNacked, which broker_errors translates
            self.task_name,
            args=[video_id],
            task_id=task_id(video_id),
            connection=self._connection(),
            retry=False,
            timeout=self.timeout_s,
            confirm_timeout=self.timeout_s,
        )

    @staticmethod
    def _release(connection: Connection) -> None:
        try:
            connection.release()
        except Exception:
            logger.debug("publish: closing a broken connection failed", exc_info=True)

    def _reset(self) -> None:
        """Drop this thread's connection (the next publish opens a new one)."""
        connection: Connection | None = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:
                self._open.discard(connection)
            self._release(connection)

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            self._release(connection)
