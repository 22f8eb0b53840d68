"""`vidwatch worker`: a Celery worker with our pool, queues and a liveness key in Redis."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Sequence
from typing import Any

import redis
from celery import signals

from vidwatch.config import Config
from vidwatch.engines import choose_kind
from vidwatch.results.connection import connect
from vidwatch.results.keys import Keys
from vidwatch.tasks.app import dead_letter_queue, make_app
from vidwatch.tasks.video import register_tasks

logger = logging.getLogger(__name__)


class Heartbeat:
    """Writes ``<prefix>:worker:<name>`` with a TTL while the worker runs (what /readyz reads)."""

    def __init__(self, config: Config, name: str, queues: Sequence[str]) -> None:
        self.client = connect(config.redis)
        self.key = Keys(config.redis.prefix).worker(name)
        self.period_s = config.worker.heartbeat_seconds
        self.fields = {
            "name": name,
            "queues": json.dumps(list(queues)),
            "engine": choose_kind(config.engine)[0],
            "pid": str(os.getpid()),
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-heartbeat", daemon=True)

    def start(self, **_: Any) -> None:
        self._thread.start()

    def stop(self, **_: Any) -> None:
        self._stop.set()
        try:
            self.client.delete(self.key)
        except redis.RedisError:
            logger.debug("heartbeat: could not delete %s", self.key)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                pipe = self.client.pipeline()
                pipe.hset(self.key, mapping=self.fields)
                pipe.expire(self.key, int(self.period_s * 3) + 1)
                pipe.execute()
            except redis.RedisError as exc:
                logger.warning("heartbeat: Redis unreachable: %s", exc)
            self._stop.wait(self.period_s)


def run_worker(config: Config, queues: Sequence[str], concurrency: int) -> int:
    """Run until stopped (SIGTERM: warm shutdown; unacknowledged work returns to the queue)."""
    app = make_app(config)
    register_tasks(app, config)
    with app.connection_for_write() as connection:  # poison messages need somewhere to go
        dead_letter_queue()(connection.default_channel).declare()
    name = f"vidwatch-{os.getpid()}@{socket.gethostname()}"
    heartbeat = Heartbeat(config, name, queues)
    signals.worker_ready.connect(heartbeat.start, weak=False)
    signals.worker_shutdown.connect(heartbeat.stop, weak=False)
    worker = app.Worker(
        hostname=name,
        queues=list(queues),
        concurrency=concurrency,
        pool="prefork",
        loglevel=config.log.level,
        without_gossip=True,
        without_mingle=True,
        optimization="fair",
    )
    worker.start()
    return int(worker.exitcode or 0)
