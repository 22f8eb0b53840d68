"""The analysis tasks, defined here and bound to the app that ``vidwatch worker`` builds.

- ``vidwatch.<queue>.analyze_video(video_id)``: what the daemon publishes. Plans the
  segments (kept in the video's record, so a redelivery plans the same), analyses a
  short video in place, or fans a long one out as segment tasks (:mod:`~vidwatch.tasks.join`).
- ``vidwatch.<queue>.analyze_segment(video_id, k)``: one segment; its detections and
  partial summary are written in one atomic script, once. The finisher that finds every
  segment in enqueues the summary.
- ``vidwatch.summary.summarize(video_id)``: joins the partials into the video's summary
  (:mod:`~vidwatch.tasks.summary`).

Each task body runs under the one error policy (:mod:`~vidwatch.tasks.policy`) and uses
its process's resources (:class:`~vidwatch.tasks.resources.WorkerContext`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from celery import Celery

from vidwatch.config import Config
from vidwatch.errors import SourceError
from vidwatch.media.probe import Probe, probe
from vidwatch.results.crops import BestCrops
from vidwatch.results.progress import ProgressReporter
from vidwatch.results.records import State, VideoRecord
from vidwatch.tasks import join
from vidwatch.tasks.app import ANALYZE_TASK, SEGMENT_TASK, SUMMARY_TASK, task_id
from vidwatch.tasks.pipeline import analyze, save_thumbnail
from vidwatch.tasks.policy import MAX_RETRIES, Check, Job, count_delivery, limits_check, run_task
from vidwatch.tasks.resources import WorkerContext, WorkerTask, worker_name
from vidwatch.tasks.summary import summarize, summarize_video

# WorkerContext and task_id are also importable from here, where callers have found them so far
__all__ = ["WorkerContext", "analyze_segment", "analyze_video", "register_tasks", "task_id"]

logger = logging.getLogger(__name__)


def register_tasks(app: Celery, config: Config, *, threaded: bool = False) -> WorkerContext:
    """Bind the tasks to ``app`` under their contract names; their shared per-process context is returned.

    ``threaded``: for :class:`~vidwatch.tasks.threadpool.ThreadPool` (tasks are threads of one process).
    """
    context = WorkerContext(config, app, threaded=threaded)
    # shared=False: bound to this app only, not to every app finalized later in the process
    options = {"bind": True, "base": WorkerTask, "max_retries": MAX_RETRIES, "context": context, "shared": False}
    for queue in ("gpu", "cpu"):
        app.task(name=ANALYZE_TASK[queue], **options)(analyze_video)
        app.task(name=SEGMENT_TASK[queue], **options)(analyze_segment)
    app.task(name=SUMMARY_TASK, **options)(summarize)
    return context


def analyze_video(task: WorkerTask, video_id: str) -> str:
    """Plan the segments; analyse a one-segment video here, fan a longer one out."""
    context = task.context
    check = limits_check(task, context, video_id)
    job = Job(video_id, "analyze")
    queue = task.name.split(".")[1]  # vidwatch.<queue>.analyze_video
    return run_task(task, context, job, lambda: _analyze_video(context, job, queue, check))


def analyze_segment(task: WorkerTask, video_id: str, segment: int) -> str:
    """Analyse segment ``segment`` of a fanned-out video."""
    context = task.context
    check = limits_check(task, context, video_id)
    job = Job(video_id, "analyze")
    return run_task(task, context, job, lambda: _analyze_segment(context, job, segment, check))


def _analyze_video(context: WorkerContext, job: Job, queue: str, check: Check) -> str:
    context.ensure()
    video_id, worker = job.video_id, worker_name()
    record = context.records.record(video_id)
    if record is None:
        logger.warning("analyze video=%s: no ledger record; message dropped", video_id)
        return "unknown"
    job.path = record.path
    if record.terminal:
        logger.info("analyze video=%s: already %s; duplicate delivery ignored", video_id, record.state)
        return record.state.value
    count_delivery(context, job, "analyze", str(record.run))
    context.records.transition(
        video_id, State.PROCESSING, {"worker": worker},
        event="started" if record.state is not State.PROCESSING else None, path=job.path, detail={"worker": worker},
    )
    spool, facts = spool_facts(record)
    segments = join.plan_segments(context, record, spool, facts)
    if len(segments) == 1:
        return _segment(context, job, 0, record, spool, facts, segments, check)
    join.fan_out(context, video_id, segments, queue)
    return "fanned out"


def _analyze_segment(context: WorkerContext, job: Job, segment: int, check: Check) -> str:
    context.ensure()
    record = context.records.record(job.video_id)
    if record is None or record.terminal:
        return record.state.value if record is not None else "unknown"
    job.path = record.path
    count_delivery(context, job, f"seg{segment}", str(record.run))
    if not record.segments:
        raise SourceError(f"segment {segment} of a video with no segment plan")
    spool, facts = spool_facts(record)
    return _segment(context, job, segment, record, spool, facts, record.segments, check)


def spool_facts(record: VideoRecord) -> tuple[Path, Probe]:
    """The spooled copy the daemon made, and its probe; :class:`SourceError` when it is gone."""
    spool = Path(record.spool_path)
    if not record.spool_path or not spool.exists():
        raise SourceError(f"spooled copy {spool} is missing", kind="missing")
    return spool, probe(spool)


def planned_frames(segments: Sequence[tuple[float, float]], facts: Probe, config: Config) -> list[int]:
    """Frames each segment should have at ``[analysis] fps`` (the last runs to the end of the video)."""
    fps = config.analysis.fps
    out = []
    for k, (start_s, length_s) in enumerate(segments):
        length = max(0.0, facts.duration_s - start_s) if k == len(segments) - 1 else length_s
        out.append(max(1, round(length * fps)))
    return out


def _segment(
    context: WorkerContext, job: Job, k: int, record: VideoRecord, spool: Path, facts: Probe,
    segments: Sequence[tuple[float, float]], check: Check,
) -> str:
    """Analyse segment ``k``, write its detections and partial once, and join: summarise when all are in."""
    video_id, config = job.video_id, context.config
    camera = record.camera or "default"
    start_s, length_s = segments[k]
    last = k == len(segments) - 1
    started, started_at = time.monotonic(), time.time()

    def progress(fraction: float) -> None:
        context.event("progress", video_id, job.path,
                      {"segment": k, "segments": len(segments), "percent": round(100 * fraction, 1)})

    crops = BestCrops(min_side_px=config.summary.crop_min_px) if config.summary.crops else None
    frames = ProgressReporter(context.client, context.keys, video_id, k, plan=planned_frames(segments, facts, config))
    with context.feed() as stream:
        analysis = analyze(
            spool, facts, config, stream, camera=camera, start_s=start_s,
            duration_s=None if last else length_s, track_base=join.track_base(k), on_progress=progress,
            crops=crops, check=check, on_frames=frames.frame,
        )
    analyzed_at = time.time()
    frames.close()
    wall_s = time.monotonic() - started
    crop_entries = crops.write(config.paths.state_dir / "crops" / video_id) if crops is not None else {}
    name = f"{video_id}.jpg" if len(segments) == 1 else f"{video_id}-{k}.jpg"
    thumb = save_thumbnail(analysis, facts, config.paths.state_dir / "thumbnails" / name)
    area = sum((d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in analysis.best_detections)
    partial = join.partial(
        analysis, start_s=start_s, end_s=start_s + analysis.duration_s, wall_s=wall_s, worker=worker_name(),
        thumbnail=str(thumb) if thumb else None, thumbnail_area=area if thumb else 0.0, crops=crop_entries,
        analysed=(started_at, analyzed_at),
    )
    start_ts = record.start_ts if record.start_ts is not None else time.time()
    result = context.writer.write_segment(
        video_id, k, camera, start_ts, analysis.frames, partial=partial, segments=len(segments)
    )
    joined = join.segment_in(context, video_id, job.path, k, len(segments), result)
    if joined is not join.Joined.HERE:
        return str(joined.value)
    job.stage = "summary"  # a one-segment video is summarised by its own task
    return summarize_video(context, job)
