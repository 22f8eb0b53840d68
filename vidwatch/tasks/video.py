"""The Celery task that analyses one video, and the per-process state it needs."""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import redis
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from vidwatch.config import Config
from vidwatch.engines import Engine, choose_kind, load_engine
from vidwatch.errors import EngineError, SourceError
from vidwatch.media.probe import probe
from vidwatch.results.connection import connect
from vidwatch.results.keys import Keys
from vidwatch.results.records import TERMINAL, Records
from vidwatch.results.writer import ResultWriter
from vidwatch.tasks.app import ANALYZE_TASK
from vidwatch.tasks.pipeline import analyze, save_thumbnail

logger = logging.getLogger(__name__)

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
MAX_RETRIES = 5


class WorkerContext:
    """Redis clients and the engine, created lazily in each pool process (after the fork)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.keys = Keys(config.redis.prefix)
        self._pid: int | None = None
        self._engine: Engine | None = None
        self.records: Records
        self.writer: ResultWriter

    def ensure(self) -> None:
        if self._pid == os.getpid():
            return
        client = connect(self.config.redis)
        self.records = Records(client, self.keys, events_maxlen=self.config.redis.events_maxlen)
        self.writer = ResultWriter(
            client,
            self.keys,
            events_maxlen=self.config.redis.events_maxlen,
            detections_maxlen=self.config.redis.detections_maxlen,
            summaries_maxlen=self.config.redis.summaries_maxlen,
        )
        self._engine = None
        self._pid = os.getpid()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = load_engine(self.config.engine, self.config.analysis.fps)
        return self._engine

    def analyze_video(self, video_id: str, worker: str) -> str:
        """Analyse one video unless it already ended; returns its final state."""
        self.ensure()
        record = self.records.get(video_id)
        if not record:
            logger.warning("analyze video=%s: no ledger record; message dropped", video_id)
            return "unknown"
        state, path = record.get("state", ""), record.get("path", "")
        if state in TERMINAL:
            logger.info("analyze video=%s: already %s; duplicate delivery ignored", video_id, state)
            return state
        self.records.transition(
            video_id, "processing", {"worker": worker}, event="started", path=path, detail={"worker": worker}
        )
        try:
            return self._run(video_id, record, worker)
        except REDIS_ERRORS:
            raise
        except SoftTimeLimitExceeded:
            self.records.fail(video_id, f"analyze: {path}: time limit exceeded", path=path)
            return "failed"
        except (SourceError, EngineError) as exc:
            self.records.fail(video_id, f"analyze: {path}: {exc}", path=path)
            return "failed"
        except Exception as exc:
            logger.exception("analyze video=%s: unexpected error", video_id)
            self.records.fail(video_id, f"analyze: {path}: internal error: {exc!r}", path=path)
            return "failed"

    def _run(self, video_id: str, record: dict[str, str], worker: str) -> str:
        path, camera = record.get("path", ""), record.get("camera", "default")
        spool = Path(record.get("spool_path", ""))
        if not record.get("spool_path") or not spool.exists():
            raise SourceError(f"spooled copy {spool} is missing")
        facts = probe(spool)
        engine = self.engine
        analysis = analyze(spool, facts, self.config, engine, camera=camera)
        start_ts = float(record.get("start_ts") or time.time())
        self.writer.write_segment(video_id, 0, camera, start_ts, analysis.frames)
        thumb = save_thumbnail(analysis, facts, self.config.paths.state_dir / "thumbnails" / f"{video_id}.jpg")
        builder = analysis.summary
        wall = max(analysis.wall_s, 1e-6)
        summary: dict[str, Any] = {
            "video_id": video_id,
            "path": path,
            "camera": camera,
            "duration": f"{analysis.duration_s:.3f}",
            "frames_analyzed": str(builder.frames),
            "labels": builder.labels_json(),
            "activity": [list(seg) for seg in builder.activity()],
            "thumbnails": [str(thumb)] if thumb else [],
            "processing": {
                "wall_s": round(wall, 3),
                "fps": round(builder.frames / wall, 2),
                "engine": getattr(engine, "kind", choose_kind(self.config.engine)[0]),
                "worker": worker,
            },
        }
        if analysis.analyzers:
            summary["analyzers"] = analysis.analyzers
        first = {label: stats.first_pts for label, stats in builder.labels.items() if stats.first_pts is not None}
        summary_id = self.writer.write_summary(video_id, path, camera, start_ts, summary, first)
        logger.info(
            "analyze video=%s path=%s done: %d frames in %.2f s, summary %s",
            video_id, path, builder.frames, wall, summary_id,
        )
        return "done" if summary_id else "failed"

    def fail_after_retries(self, video_id: str, reason: str) -> None:
        self.ensure()
        record = self.records.get(video_id)
        self.records.fail(video_id, reason, path=record.get("path", ""))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def register_tasks(app: Celery, config: Config) -> WorkerContext:
    """Register the analysis tasks on ``app`` (one per queue, the same code)."""
    context = WorkerContext(config)

    def run(task: Task, video_id: str) -> str:
        try:
            return context.analyze_video(video_id, worker_name())
        except REDIS_ERRORS as exc:
            if task.request.retries >= MAX_RETRIES:
                context.fail_after_retries(video_id, f"analyze: Redis unreachable after {MAX_RETRIES} retries")
                raise
            raise task.retry(exc=exc, countdown=min(60, 2 ** task.request.retries)) from exc

    for queue, name in ANALYZE_TASK.items():
        app.task(name=name, bind=True, max_retries=MAX_RETRIES, acks_late=True)(
            _bound(run, f"analyze_video_{queue}")
        )
    return context


def _bound(func: Any, name: str) -> Any:
    def task(self: Task, video_id: str) -> str:
        return func(self, video_id)

    task.__name__ = task.__qualname__ = name
    return task
