"""The analysis tasks and the per-process state they need.

- ``vidwatch.<queue>.analyze_video(video_id)``: what the daemon publishes. Plans the
  segments (kept in the video's record, so a redelivery plans the same), analyses a
  short video in place, or fans a long one out as segment tasks.
- ``vidwatch.<queue>.analyze_segment(video_id, k)``: one segment; its detections and
  partial summary are written in one atomic script, once. The finisher that finds every
  segment in enqueues the summary (exactly one in a normal run; a redelivered finisher
  enqueues it again, which the idempotent summary absorbs).
- ``vidwatch.summary.summarize(video_id)``: joins the partials into the video's summary.

Every task counts its deliveries: past ``[worker] max_deliveries`` the video fails and
the message is rejected to the dead-letter queue instead of looping.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from celery import Celery, Task
from celery.exceptions import Reject, SoftTimeLimitExceeded

from vidwatch import stages
from vidwatch.config import Config
from vidwatch.engines import choose_kind, load_engine
from vidwatch.engines.batcher import BatcherPool, Stream
from vidwatch.errors import EngineError, SourceError
from vidwatch.media.condense import condense
from vidwatch.media.probe import Probe, probe
from vidwatch.results.connection import connect
from vidwatch.results.crops import BestCrops
from vidwatch.results.detections import video_detections
from vidwatch.results.events import event_fields
from vidwatch.results.keys import Keys
from vidwatch.results.records import TERMINAL, Records
from vidwatch.results.sidecar import write_sidecar
from vidwatch.results.timeline import render_timeline
from vidwatch.results.version import analysis_version
from vidwatch.results.writer import ResultWriter
from vidwatch.tasks import join
from vidwatch.tasks.app import ANALYZE_TASK, SEGMENT_TASK, SUMMARY_TASK, time_limits
from vidwatch.tasks.pipeline import analyze, save_thumbnail
from vidwatch.tasks.segments import keyframe_times, plan
from vidwatch.tasks.threadpool import RUNNING, Cancelled

logger = logging.getLogger(__name__)

REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
MAX_RETRIES = 5
DELIVERY_COUNT_TTL_S = 7 * 24 * 3600


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def task_id(video_id: str, unit: str) -> str:
    """Deterministic per video version and unit of work (``analyze``, ``seg3``, ``summary``)."""
    return f"{video_id}.{unit}"


class Poison(Exception):
    """A message delivered more often than ``max_deliveries``."""


Check = Callable[[], None] | None  # called once per analysed frame; raises to stop the task


class WorkerContext:
    """Redis clients and the engine's batchers, created lazily in each pool process (after the fork).

    ``threaded``: tasks are threads of one process (the GPU worker's pool), whose
    segments share one batcher, and whose time limits the analysis loop checks.
    """

    def __init__(self, config: Config, app: Celery, *, threaded: bool = False) -> None:
        self.config = config
        self.app = app
        self.threaded = threaded
        self.keys = Keys(config.redis.prefix)
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
        if self._pid == os.getpid():
            return
        with self._ensure_lock:
            if self._pid != os.getpid():
                self._connect()

    def _connect(self) -> None:
        """Per process: Redis clients, and the batchers (one engine per process, not one per thread)."""
        self.client = connect(self.config.redis)
        self.records = Records(self.client, self.keys, events_maxlen=self.config.redis.events_maxlen)
        self.writer = ResultWriter.from_config(self.client, self.keys, self.config)
        engine = self.config.engine
        self._batchers = BatcherPool(lambda: load_engine(engine, self.config.analysis.fps),
                                     batch=engine.batch, timeout_s=engine.batch_timeout_ms / 1000)
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
        kind = self._batchers.engine_kind if self._batchers is not None else None
        return kind or choose_kind(self.config.engine)[0]

    # ------------------------------------------------------------------ shared
    def count_delivery(self, video_id: str, unit: str, path: str) -> None:
        """Raise :class:`Poison` (after failing the video) when this message keeps coming back.

        Counted per run: ``submit --force`` sends the same task ids again.
        """
        run = self.client.hget(self.keys.video(video_id), "run") or "1"
        key = self.keys.deliveries(f"{task_id(video_id, unit)}.r{run}")
        pipe = self.client.pipeline()
        pipe.incr(key)
        pipe.expire(key, DELIVERY_COUNT_TTL_S)
        deliveries = int(pipe.execute()[0])
        limit = self.config.worker.max_deliveries
        if deliveries > limit:
            reason = f"analyze: {path}: poison message: {unit} delivered {deliveries} times (max_deliveries {limit})"
            self.records.fail(video_id, reason, path=path)
            raise Poison(reason)

    def _event(self, kind: str, video_id: str, path: str, detail: Any) -> None:
        self.client.xadd(self.keys.events, event_fields(kind, video_id, path, detail),
                         maxlen=self.config.redis.events_maxlen, approximate=True)

    def _guarded(self, video_id: str, path: str, step: Any) -> str:
        """Run ``step``; a permanent error fails the video (once), a transient one propagates."""
        try:
            return step()
        except (*REDIS_ERRORS, Poison, Cancelled):
            raise
        except SoftTimeLimitExceeded:
            self.records.fail(video_id, f"analyze: {path}: time limit exceeded", path=path)
        except (SourceError, EngineError) as exc:
            self.records.fail(video_id, f"analyze: {path}: {exc}", path=path)
        except Exception as exc:
            logger.exception("analyze video=%s: unexpected error", video_id)
            self.records.fail(video_id, f"analyze: {path}: internal error: {exc!r}", path=path)
        return "failed"

    def _spool_facts(self, record: dict[str, str]) -> tuple[Path, Probe]:
        spool = Path(record.get("spool_path", ""))
        if not record.get("spool_path") or not spool.exists():
            raise SourceError(f"spooled copy {spool} is missing")
        return spool, probe(spool)

    # ------------------------------------------------------------------ analyze_video
    def analyze_video(self, video_id: str, worker: str, queue: str, check: Check = None) -> str:
        """Plan the segments; analyse a one-segment video here, fan a longer one out."""
        self.ensure()
        record = self.records.get(video_id)
        if not record:
            logger.warning("analyze video=%s: no ledger record; message dropped", video_id)
            return "unknown"
        state, path = record.get("state", ""), record.get("path", "")
        if state in TERMINAL:
            logger.info("analyze video=%s: already %s; duplicate delivery ignored", video_id, state)
            return state
        self.count_delivery(video_id, "analyze", path)
        self.records.transition(
            video_id, "processing", {"worker": worker}, event="started" if state != "processing" else None,
            path=path, detail={"worker": worker},
        )
        return self._guarded(video_id, path, lambda: self._plan_and_run(video_id, worker, queue, check))

    def _plan_and_run(self, video_id: str, worker: str, queue: str, check: Check) -> str:
        record = self.records.get(video_id)
        spool, facts = self._spool_facts(record)
        segments = self._segments(video_id, record, spool, facts)
        if len(segments) == 1:
            return self._segment(video_id, 0, worker, record, spool, facts, segments, check)
        for k, (_, length) in enumerate(segments):
            soft, hard = time_limits(self.config, length)
            self.app.send_task(
                SEGMENT_TASK[queue], args=[video_id, k], task_id=task_id(video_id, f"seg{k}"),
                soft_time_limit=soft, time_limit=hard,
            )
        logger.info("analyze video=%s: %d segments fanned out", video_id, len(segments))
        return "fanned out"

    def _segments(self, video_id: str, record: dict[str, str], spool: Path, facts: Probe) -> list[list[float]]:
        """The segment plan, computed once and kept in the record (a redelivery reuses it)."""
        if record.get("segments"):
            return json.loads(record["segments"])
        segment_s = self.config.analysis.segment_seconds
        keyframes = keyframe_times(spool) if facts.duration_s > segment_s * 1.5 else [0.0]
        segments = [list(s) for s in plan(facts.duration_s, self.config.analysis.fps, segment_s, keyframes)]
        self.client.hsetnx(self.keys.video(video_id), "segments", json.dumps(segments))
        return json.loads(self.client.hget(self.keys.video(video_id), "segments") or "[]")

    # ------------------------------------------------------------------ analyze_segment
    def analyze_segment(self, video_id: str, segment: int, worker: str, check: Check = None) -> str:
        self.ensure()
        record = self.records.get(video_id)
        state, path = record.get("state", ""), record.get("path", "")
        if not record or state in TERMINAL:
            return state or "unknown"
        self.count_delivery(video_id, f"seg{segment}", path)

        def step() -> str:
            spool, facts = self._spool_facts(record)
            segments = json.loads(record["segments"])
            return self._segment(video_id, segment, worker, record, spool, facts, segments, check)

        return self._guarded(video_id, path, step)

    def _segment(
        self, video_id: str, k: int, worker: str, record: dict[str, str], spool: Path, facts: Probe,
        segments: list[list[float]], check: Check = None,
    ) -> str:
        path, camera = record.get("path", ""), record.get("camera", "default")
        start_s, length_s = segments[k]
        last = k == len(segments) - 1
        started = time.monotonic()
        def progress(fraction: float) -> None:
            self._event("progress", video_id, path,
                        {"segment": k, "segments": len(segments), "percent": round(100 * fraction, 1)})

        crops = BestCrops(min_side_px=self.config.summary.crop_min_px) if self.config.summary.crops else None
        with self.feed() as stream:
            analysis = analyze(
                spool, facts, self.config, stream, camera=camera, start_s=start_s,
                duration_s=None if last else length_s, track_base=join.track_base(k), on_progress=progress,
                crops=crops, check=check,
            )
        wall_s = time.monotonic() - started
        crop_entries = crops.write(self.config.paths.state_dir / "crops" / video_id) if crops is not None else {}
        thumbs = self.config.paths.state_dir / "thumbnails"
        name = f"{video_id}.jpg" if len(segments) == 1 else f"{video_id}-{k}.jpg"
        thumb = save_thumbnail(analysis, facts, thumbs / name)
        area = sum((d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in analysis.best_detections)
        partial = join.partial(
            analysis, start_s=start_s, end_s=start_s + analysis.duration_s, wall_s=wall_s, worker=worker,
            thumbnail=str(thumb) if thumb else None, thumbnail_area=area if thumb else 0.0, crops=crop_entries,
        )
        start_ts = float(record.get("start_ts") or time.time())
        result = self.writer.write_segment(
            video_id, k, camera, start_ts, analysis.frames, partial=partial, segments=len(segments)
        )
        if result.written and len(segments) > 1:
            self._event("segment_done", video_id, path, {"segment": k, "segments": len(segments), "worker": worker})
        # The finisher that found every segment in enqueues the summary; so does a redelivered
        # finisher (it may have died before enqueueing): the summary is idempotent.
        if not (result.complete and (result.fire or not result.written)):
            return "segment done"
        if len(segments) == 1:
            return self.summarize(video_id)
        self.app.send_task(SUMMARY_TASK, args=[video_id], task_id=task_id(video_id, "summary"))
        return "segments done"

    # ------------------------------------------------------------------ summarize
    def summarize(self, video_id: str) -> str:
        """Merge the segments' partials into the summary (idempotent: a second call writes nothing)."""
        self.ensure()
        record = self.records.get(video_id)
        state, path = record.get("state", ""), record.get("path", "")
        if not record or state in TERMINAL:
            return state or "unknown"
        segments = json.loads(record.get("segments") or "[[0, 0]]")
        run = record.get("run") or "1"
        parts = self.writer.partials(video_id, run)
        if len(parts) < len(segments):
            missing = sorted(set(range(len(segments))) - set(parts))
            self.records.fail(video_id, f"summarize: {path}: segments {missing} never reported", path=path)
            return "failed"
        analysis = self.config.analysis
        merged = join.merge(list(parts.values()), analysis.fps, min_gap_s=analysis.min_gap_seconds,
                            min_activity_s=analysis.min_activity_seconds)
        camera = record.get("camera", "default")
        start_ts = float(record.get("start_ts") or time.time())
        duration = float(record.get("probe_duration_s") or 0.0) or max(p["end"] for p in parts.values())
        wall = max(merged.wall_s, 1e-6)
        summary: dict[str, Any] = {
            "video_id": video_id,
            "path": path,
            "camera": camera,
            "duration": f"{duration:.3f}",
            "frames_analyzed": str(merged.frames),
            "labels": merged.labels,
            "activity": [list(seg) for seg in merged.activity],
            "thumbnails": [merged.thumbnail] if merged.thumbnail else [],
            "processing": {
                "wall_s": round(wall, 3),
                "fps": round(merged.frames / wall, 2),
                "engine": self.engine_kind(),
                "worker": merged.workers[0] if len(merged.workers) == 1 else merged.workers,
                "segments": len(segments),
                "batch_fill": batch_fill(list(parts.values()), self.config.engine.batch),
            },
        }
        if merged.analyzers:
            summary["analyzers"] = merged.analyzers
        summary.update(self._summary_extras(video_id, record, list(parts.values()), merged, duration))
        first = {label: stats["first_pts"] for label, stats in merged.labels.items() if stats["first_pts"] is not None}
        summary_id = self.writer.write_summary(video_id, path, camera, start_ts, summary, first)
        if summary_id and self.config.results.sidecar_dir is not None:
            entries = video_detections(self.client, self.keys, camera, video_id, run, since=start_ts,
                                       until=start_ts + duration)
            write_sidecar(self.config, video_id, summary, entries)
        logger.info(
            "analyze video=%s path=%s done: %d frames, %d segment(s), %.2f s of analysis, summary %s",
            video_id, path, merged.frames, len(segments), wall, summary_id,
        )
        return "done" if summary_id else "failed"

    def _summary_extras(
        self, video_id: str, record: dict[str, str], parts: list[dict[str, Any]], merged: join.Merged,
        duration_s: float,
    ) -> dict[str, Any]:
        """Per-track crops (through the crop stages), the timeline image, the condensed clip."""
        settings = self.config.summary
        state = self.config.paths.state_dir
        extras: dict[str, Any] = {}
        tracks = join.best_crops(parts, merged.track_map)
        if tracks:
            if self._stages is None:
                self._stages = stages.build(list(self.config.stages))  # once per process: rate limits hold
            tracks = stages.apply(self._stages, tracks, stages.Context(camera=record.get("camera", "default"),
                                                                        video_id=video_id))
            extras["tracks"] = {str(t): entry for t, entry in sorted(tracks.items())}
            extras["thumbnails"] = [*([merged.thumbnail] if merged.thumbnail else []),
                                    *(str(entry["path"]) for _, entry in sorted(tracks.items()))]
        if settings.timeline:
            path = render_timeline(duration_s, [list(a) for a in merged.activity],
                                   join.presence(parts, merged.track_map), state / "timelines" / f"{video_id}.png")
            extras["timeline"] = str(path)
        if settings.condensed_clip and merged.activity:
            target = state / "condensed" / f"{video_id}.mp4"
            seconds = condense(Path(record["spool_path"]), [list(a) for a in merged.activity], target,
                               pad_s=settings.condensed_pad_seconds, timeout_s=120.0 + duration_s)
            if seconds > 0:
                extras["condensed_clip"] = str(target)
        return extras

    def fail_hard_limit(self, video_id: str, task_id: str) -> None:
        """A task killed (prefork) or abandoned (threads) at its hard time limit: its video's last word."""
        self.fail(video_id, f"analyze: video {video_id}: hard time limit exceeded ({task_id})")

    def fail(self, video_id: str, reason: str) -> None:
        self.ensure()
        self.records.fail(video_id, reason, path=self.records.get(video_id).get("path", ""))


def batch_fill(parts: list[dict[str, Any]], batch: int) -> float | None:
    """Frames per engine call ÷ the configured batch, over the whole video (None: the engine never ran)."""
    calls = sum(p.get("engine_calls", 0) for p in parts)
    frames = sum(p.get("engine_frames", 0) for p in parts)
    return round(frames / (calls * batch), 3) if calls else None


def register_tasks(app: Celery, config: Config, *, threaded: bool = False) -> WorkerContext:
    """Register the analysis tasks on ``app`` (``threaded``: for :class:`~vidwatch.tasks.threadpool.ThreadPool`)."""
    context = WorkerContext(config, app, threaded=threaded)

    def limits_check(task: Task, video_id: str) -> Check:
        """In the thread pool: the per-frame check of this task's limits, and what its hard limit does."""
        limits = RUNNING.get(task.request.id) if threaded else None
        if limits is None:
            return None
        limits.on_hard = lambda: context.fail_hard_limit(video_id, task.request.id)
        return limits.check

    def guarded(task: Task, video_id: str, run: Any) -> str:
        try:
            return run()
        except Cancelled:
            logger.warning("task %s: cancelled; its message returns to the queue", task.request.id)
            raise
        except Poison as exc:
            logger.error("%s; dead-lettered", exc)
            raise Reject(str(exc), requeue=False) from exc
        except REDIS_ERRORS as exc:
            if task.request.retries >= MAX_RETRIES:
                context.fail(video_id, f"analyze: Redis unreachable after {MAX_RETRIES} retries")
                raise
            raise task.retry(exc=exc, countdown=min(60, 2 ** task.request.retries)) from exc

    for queue in ("gpu", "cpu"):

        def analyze_video(task: Task, video_id: str, queue: str = queue) -> str:
            check = limits_check(task, video_id)
            return guarded(task, video_id, lambda: context.analyze_video(video_id, worker_name(), queue, check))

        def analyze_segment(task: Task, video_id: str, segment: int) -> str:
            check = limits_check(task, video_id)
            return guarded(task, video_id, lambda: context.analyze_segment(video_id, segment, worker_name(), check))

        app.task(name=ANALYZE_TASK[queue], bind=True, max_retries=MAX_RETRIES)(analyze_video)
        app.task(name=SEGMENT_TASK[queue], bind=True, max_retries=MAX_RETRIES)(analyze_segment)

    def summarize(task: Task, video_id: str) -> str:
        def run() -> str:
            context.ensure()
            context.count_delivery(video_id, "summary", context.records.get(video_id).get("path", ""))
            return context._guarded(video_id, "", lambda: context.summarize(video_id))

        return guarded(task, video_id, run)

    app.task(name=SUMMARY_TASK, bind=True, max_retries=MAX_RETRIES)(summarize)
    return context
