"""What a worker process holds for its tasks: Redis clients, the engine's batchers, the crop stages.

Everything is created lazily, in the process that uses it (after the pool's fork): a
Redis connection or a CUDA context made in the parent does not survive the fork. In the
GPU worker's thread pool the tasks are threads of one process: they share one set of
resources, and so one engine and one batcher.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from celery import Celery, Task

from vidwatch import stages
from vidwatch.config import Config
from vidwatch.engines import choose_kind, load_engine
from vidwatch.engines.batcher import BatcherPool, Stream
from vidwatch.errors import EngineError
from vidwatch.results.connection import connect
from vidwatch.results.events import event_fields
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records
from vidwatch.results.version import analysis_version
from vidwatch.results.writer import ResultWriter


def worker_name() -> str:
    """This process, as partial results and the summary name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class WorkerContext:
    """The configuration, the app, and this process's resources (made on first use after a fork).

    ``threaded``: tasks are threads of one process (the GPU worker's pool), whose
    segments share one batcher, and whose time limits the analysis loop checks.
    """

    def __init__(self, config: Config, app: Celery, *, threaded: bool = False) -> None:
        self.config = config
        self.app = app
        self.threaded = threaded
        self.keys = Keys.for_config(config.redis)
        self._pid: int | None = None
        self._ensure_lock = threading.Lock()  # the thread pool's first tasks arrive together
        # a fork while another thread held the lock must not leave the child's copy held
        os.register_at_fork(after_in_child=self._new_lock)
        self._batchers: BatcherPool | None = None
        self._stages: list[Any] | None = None
        self.client: redis.Redis
        self.records: Records
        self.writer: ResultWriter

    def _new_lock(self) -> None:
        self._ensure_lock = threading.Lock()

    def ensure(self) -> None:
        """Create this process's resources unless it has them (idempotent, thread-safe)."""
        if self._pid == os.getpid():
            return
        with self._ensure_lock:
            if self._pid != os.getpid():
                self._connect()

    def _connect(self) -> None:
        """Per process: Redis clients, and the batchers (one engine per process, not one per thread)."""
        self.client = connect(self.config.redis)
        self.records = Records(self.client, self.keys, events_maxlen=self.config.redis.events_maxlen)
        engine = self.config.engine
        # the kind auto resolves to here, so a summary written before feed() has the same analysis version
        self.writer = ResultWriter.from_config(self.client, self.keys, self.config,
                                               engine_kind=choose_kind(engine)[0])
        self._batchers = BatcherPool(lambda: load_engine(engine, self.config.analysis.fps),
                                     batch=engine.batch, timeout_s=engine.batch_timeout_ms / 1000)
        self._stages = None
        self._pid = os.getpid()

    @contextmanager
    def feed(self) -> Iterator[Stream]:
        """A stream into this process's engine (loaded on first use, in the batcher's thread)."""
        if self._batchers is None:
            raise EngineError("worker: feed() before ensure()")
        with self._batchers.stream() as stream:
            # results name the engine that actually ran (auto may have fallen back)
            self.writer.analysis = analysis_version(self.config, engine_kind=self._batchers.engine_kind)
            yield stream

    def stages(self) -> list[Any]:
        """The configured crop stages, built once per process (so their rate limits hold)."""
        if self._stages is None:
            self._stages = stages.build(list(self.config.stages))
        return self._stages

    def batch_stats(self) -> dict[str, str]:
        """This process's batcher counts, for the worker's heartbeat."""
        if self._batchers is None:
            return {}
        stats = self._batchers.stats()
        fill = stats.fill(self.config.engine.batch)
        return {
            "batch_fill": "" if fill is None else str(fill),
            "batch_calls": str(stats.calls),
            "batch_frames": str(stats.frames),
            "batch_mixed": str(stats.mixed_calls),
        }

    def engine_kind(self) -> str:
        """The engine this process ran (or would run: ``auto`` resolved on this host)."""
        kind = self._batchers.engine_kind if self._batchers is not None else None
        return kind or choose_kind(self.config.engine)[0]

    def event(self, kind: str, video_id: str, path: str, detail: Any) -> None:
        """One lifecycle entry on the events stream (``progress``, ``segment_done``)."""
        fields: dict[Any, Any] = event_fields(kind, video_id, path, detail)
        self.client.xadd(self.keys.events, fields, maxlen=self.config.redis.events_maxlen, approximate=True)

    def fail(self, video_id: str, reason: str, *, stage: str, kind: str, path: str | None = None) -> None:
        """Mark the video ``failed`` with ``reason``, ``stage`` and ``kind`` (once: a finished video stays so)."""
        self.ensure()
        if path is None:
            record = self.records.record(video_id)
            path = record.path if record is not None else ""
        self.records.fail(video_id, reason, path=path, stage=stage, kind=kind)

    def fail_hard_limit(self, video_id: str, task_id: str) -> None:
        """A task killed (prefork) or abandoned (threads) at its hard time limit: its video's last word."""
        stage = "summary" if task_id.endswith(".summary") else "analyze"
        self.fail(video_id, f"{stage}: video {video_id}: hard time limit exceeded ({task_id})", stage=stage,
                  kind="timeout")


class WorkerTask(Task):
    """The base of our tasks: ``context`` is set when :func:`~vidwatch.tasks.video.register_tasks` binds them."""

    context: WorkerContext
