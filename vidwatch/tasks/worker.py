"""`vidwatch worker`: a Celery worker with our pool, queues and a liveness key in Redis."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

import cv2
from celery import signals
from celery.exceptions import TimeLimitExceeded

from vidwatch.config import Config
from vidwatch.engines import choose_kind
from vidwatch.engines.onnx import owned_cores
from vidwatch.errors import ResultsError
from vidwatch.results.connection import connect, redis_errors
from vidwatch.results.keys import Keys
from vidwatch.tasks.app import dead_letter_queue, make_app
from vidwatch.tasks.resources import WorkerContext
from vidwatch.tasks.threadpool import ThreadPool
from vidwatch.tasks.video import register_tasks

logger = logging.getLogger(__name__)


def choose_pool(
    config: Config, *, pool: str | None = None, gpu: bool = False, concurrency: int | None = None,
    threads: int | None = None,
) -> tuple[str, int]:
    """(pool, concurrency) of a worker: the threads pool is one process whose tasks share an engine.

    A prefork worker runs ``[worker] concurrency`` processes; 0 (the default): one per core
    it may run on — with one OpenCV/ONNX Runtime thread each (see :func:`share_cores`), several
    videos go through faster than one process with a thread per core.

    >>> choose_pool(Config(), gpu=True)
    ('threads', 2)
    >>> choose_pool(Config(), concurrency=3)
    ('prefork', 3)
    """
    chosen = pool or config.worker.pool
    if chosen == "auto":
        chosen = "threads" if gpu or choose_kind(config.engine)[0] == "tensorrt" else "prefork"
    if chosen == "threads":
        return "threads", threads or config.worker.threads
    # a GPU is owned by one process: a CUDA context per process would split its memory
    return "prefork", 1 if gpu else (concurrency or config.worker.concurrency or owned_cores())


def share_cores(config: Config, processes: int) -> Config:
    """Give each of ``processes`` pool processes its share of the cores, in the parent, before the fork.

    OpenCV: a child forked after the parent ran OpenCV's thread pool inherits a pool whose
    threads did not survive the fork: its parallel work runs on one thread (HOG at half speed
    on two cores), and reconfiguring that pool in the child hangs. So, here in the parent:
    one thread (which stops a pool already started), then the share (a child starts its own
    pool on first use; with a share of one it never does). ONNX Runtime: ``[engine] threads``
    0 becomes the share, so two processes do not run two intra-op threads each on two cores.
    Returns the config to use.
    """
    share = max(1, owned_cores() // max(1, processes))
    cv2.setNumThreads(1)
    cv2.setNumThreads(share)
    if config.engine.threads == 0:
        config = config.model_copy(update={"engine": config.engine.model_copy(update={"threads": share})})
    return config


class Heartbeat:
    """Writes ``<prefix>:worker:<name>`` with a TTL while the worker runs (what /readyz reads).

    ``stats``: extra fields read at each beat (a threads-pool worker's batcher counts).
    """

    def __init__(self, config: Config, name: str, queues: Sequence[str],
                 stats: Callable[[], dict[str, str]] | None = None) -> None:
        self.client = connect(config.redis)
        self.key = Keys.for_config(config.redis).worker(name)
        self.period_s = config.worker.heartbeat_seconds
        self.fields = {
            "name": name,
            "queues": json.dumps(list(queues)),
            "engine": choose_kind(config.engine)[0],
            "pid": str(os.getpid()),
        }
        self.stats = stats
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-heartbeat", daemon=True)

    def start(self, **_: Any) -> None:
        self._thread.start()

    def stop(self, **_: Any) -> None:
        self._stop.set()
        try:
            with redis_errors(f"heartbeat: delete {self.key}"):
                self.client.delete(self.key)
        except ResultsError as exc:
            logger.debug("%s", exc)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                fields: dict[Any, Any] = {**self.fields, **(self.stats() if self.stats else {})}
                with redis_errors("heartbeat"):
                    pipe = self.client.pipeline()
                    pipe.hset(self.key, mapping=fields)
                    pipe.expire(self.key, int(self.period_s * 3) + 1)
                    pipe.execute()
            except ResultsError as exc:
                logger.warning("%s", exc)
            self._stop.wait(self.period_s)


def _hard_limit(context: WorkerContext, *, exception: BaseException | None = None, args: Sequence[Any] = (),
                task_id: str = "", **_: Any) -> None:
    """A task killed at its hard time limit (prefork: in the parent) fails its video, once.

    The soft limit fails it from inside the task; a task stuck where the soft limit cannot
    reach it is killed and its message acknowledged, so this is the video's last word.
    """
    if not isinstance(exception, TimeLimitExceeded) or not args:
        return
    try:
        with redis_errors(f"task {task_id}: fail video {args[0]}"):
            context.fail_hard_limit(str(args[0]), task_id)
    except ResultsError as exc:
        logger.error("task %s: hard time limit exceeded; could not fail video %s: %s", task_id, args[0], exc)


def run_worker(config: Config, queues: Sequence[str], concurrency: int, *, pool: str = "prefork") -> int:
    """Run until stopped (SIGTERM: warm shutdown; unacknowledged work returns to the queue)."""
    threaded = pool == "threads"
    if not threaded:
        config = share_cores(config, concurrency)
    app = make_app(config)
    context = register_tasks(app, config, threaded=threaded)
    with app.connection_for_write() as connection:  # poison messages need somewhere to go
        dead_letter_queue(config)(connection.default_channel).declare()
    name = f"vidwatch-{os.getpid()}@{socket.gethostname()}"
    heartbeat = Heartbeat(config, name, queues, stats=context.batch_stats if threaded else None)
    heartbeat.fields["pool"] = f"{pool}:{concurrency}"
    logger.info("worker %s: queues %s, pool %s, %s %d", name, ",".join(queues), pool,
                "threads" if threaded else "processes", concurrency)
    signals.worker_ready.connect(heartbeat.start, weak=False)
    signals.task_failure.connect(lambda **kw: _hard_limit(context, **kw), weak=False)
    signals.worker_shutdown.connect(heartbeat.stop, weak=False)
    worker = app.Worker(
        hostname=name,
        queues=list(queues),
        concurrency=concurrency,
        pool=ThreadPool if threaded else "prefork",
        loglevel=config.log.level,
        without_gossip=True,
        without_mingle=True,
        optimization="fair",
    )
    worker.start()
    return int(worker.exitcode or 0)
