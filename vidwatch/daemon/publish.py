"""Publish one task message per video: persistent, to a durable queue, confirmed by the broker."""

from __future__ import annotations

import logging
import threading
import time

from amqp.exceptions import MessageNacked
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
    """Holds one broker connection (reopened after a failure); safe to call from several threads."""

    def __init__(self, app: Celery, queue: str, timeout_s: float = 10.0) -> None:
        self.app = app
        self.task_name = ANALYZE_TASK[queue]
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._metrics: PublishMetrics | None = None

    def report_to(self, metrics: PublishMetrics) -> None:
        """Tell ``metrics`` how long each confirmed publish took (failed ones show as retries)."""
        self._metrics = metrics

    def publish(self, video_id: str) -> None:
        """Return once the broker confirmed the message; raise :class:`PublishError` (retryable) otherwise."""
        started = time.monotonic()
        with self._lock:
            try:
                with broker_errors(f"publish: video {video_id}"):
                    self._send(video_id)
            except PublishError:
                self._reset()
                raise
        if self._metrics is not None:
            self._metrics.publish_confirmed(time.monotonic() - started)

    def _send(self, video_id: str) -> None:
        if self._connection is None:
            # Every socket operation is bounded: a broker that accepts TCP but never
            # answers (starting up, overloaded) must not block publishing forever.
            connection = self.app.connection_for_write(
                connect_timeout=CONNECT_TIMEOUT_S,
                transport_options={"read_timeout": self.timeout_s, "write_timeout": self.timeout_s},
            )
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=CONNECT_TIMEOUT_S)
            self._connection = connection
        try:
            self.app.send_task(
                self.task_name,
                args=[video_id],
                task_id=task_id(video_id),
                connection=self._connection,
                retry=False,
                timeout=self.timeout_s,
                confirm_timeout=self.timeout_s,
            )
        except MessageNacked as exc:  # not among py-amqp's AMQPError
            raise PublishError(f"publish: video {video_id}: the broker refused the message (nack)") from exc

    def _reset(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:
                logger.debug("publish: closing a broken connection failed", exc_info=True)
            self._connection = None

    def close(self) -> None:
        with self._lock:
            self._reset()
