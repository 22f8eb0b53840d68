"""Summary assembly: the segments' partials merged into the video's summary, with its extras.

``vidwatch.summary.summarize(video_id)`` runs :func:`summarize_video` under the error
policy; a one-segment video's own analyze task calls :func:`summarize_video` directly.
Idempotent: a second run for the same video and run writes nothing.

Extras: each joined track's best crop through the crop stages, the timeline image, the
condensed clip, and the JSON sidecar.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

from vidwatch import stages
from vidwatch.media.condense import condense
from vidwatch.results import latency
from vidwatch.results.detections import video_detections
from vidwatch.results.objects import write_summary_objects
from vidwatch.results.partials import SegmentPartial
from vidwatch.results.records import VideoRecord
from vidwatch.results.sidecar import write_sidecar
from vidwatch.results.summary import Summary
from vidwatch.results.timeline import render_timeline
from vidwatch.tasks import join
from vidwatch.tasks.policy import Job, count_delivery, run_task
from vidwatch.tasks.resources import WorkerContext, WorkerTask

logger = logging.getLogger(__name__)


def summarize(task: WorkerTask, video_id: str) -> str:
    """The summary task's body: count the delivery, then assemble and write the summary."""
    context = task.context
    job = Job(video_id, "summary")

    def body() -> str:
        context.ensure()
        record = context.records.record(video_id)
        job.path = record.path if record is not None else ""
        if record is not None and record.terminal:  # a redelivery after the end: no count (its key was dropped)
            return record.state.value
        count_delivery(context, job, "summary", str(record.run if record is not None else 1))
        return summarize_video(context, job)

    return run_task(task, context, job, body)


def summarize_video(context: WorkerContext, job: Job) -> str:
    """Merge the segments' partials into the summary and write it (a second call writes nothing)."""
    context.ensure()
    video_id = job.video_id
    record = context.records.record(video_id)
    if record is None or record.terminal:
        return record.state.value if record is not None else "unknown"
    job.path = record.path
    segments = len(record.segments or ((0.0, 0.0),))
    by_segment = context.writer.segment_partials(video_id, record.run)
    if len(by_segment) < segments:
        missing = sorted(set(range(segments)) - set(by_segment))
        context.records.fail(video_id, f"summary: {record.path}: segments {missing} never reported",
                             path=record.path, stage="summary", kind="missing")
        return "failed"
    parts = list(by_segment.values())
    analysis = context.config.analysis
    merged = join.merge(parts, analysis.fps, min_gap_s=analysis.min_gap_seconds,
                        min_activity_s=analysis.min_activity_seconds)
    duration_s = record.duration_s or max(p.end for p in parts)
    summary = with_extras(context, assemble(context, record, parts, merged, duration_s, segments=segments),
                          record, parts, merged)
    start_ts = record.start_ts if record.start_ts is not None else time.time()
    write_summary_objects(context.client, context.keys, summary, parts, merged.track_map, start_ts, run=record.run,
                          maxlen=context.config.redis.objects_maxlen)  # first: a redelivery then writes the summary
    summary = with_latency(summary, record, parts)
    summary_id = context.writer.write_video_summary(summary, start_ts)
    if summary_id and context.config.results.sidecar_dir is not None:
        entries = video_detections(context.client, context.keys, summary.camera, video_id, str(record.run),
                                   since=start_ts, until=start_ts + duration_s)
        write_sidecar(context.config, video_id, summary.to_fields(), entries)
    logger.info(
        "analyze video=%s path=%s done: %d frames, %d segment(s), %.2f s of analysis, summary %s",
        video_id, record.path, merged.frames, segments, merged.wall_s, summary_id,
    )
    return "done" if summary_id else "failed"


def assemble(
    context: WorkerContext, record: VideoRecord, parts: list[SegmentPartial], merged: join.Merged,
    duration_s: float, *, segments: int,
) -> Summary:
    """The summary (the contract's fields, in ``docs/streams.md``), before the extras."""
    wall = max(merged.wall_s, 1e-6)
    return Summary(
        video_id=record.video_id,
        path=record.path,
        camera=record.camera or "default",
        duration_s=duration_s,
        frames_analyzed=merged.frames,
        labels=merged.labels,
        activity=tuple(merged.activity),
        thumbnails=(merged.thumbnail,) if merged.thumbnail else (),
        processing={
            "wall_s": round(wall, 3),
            "fps": round(merged.frames / wall, 2),
            "engine": context.engine_kind(),
            "worker": merged.workers[0] if len(merged.workers) == 1 else merged.workers,
            "segments": segments,
            "batch_fill": batch_fill(parts, context.config.engine.batch),
        },
        analyzers=merged.analyzers or None,
    )


def with_extras(
    context: WorkerContext, summary: Summary, record: VideoRecord, parts: list[SegmentPartial], merged: join.Merged,
) -> Summary:
    """The summary with per-track crops (through the crop stages), the timeline image, the condensed clip."""
    settings = context.config.summary
    state = context.config.paths.state_dir
    video_id, duration_s = record.video_id, summary.duration_s
    activity = [list(a) for a in merged.activity]
    tracks = join.best_crops(parts, merged.track_map)
    if tracks:
        staged = stages.apply(context.stages(), tracks, stages.Context(camera=summary.camera, video_id=video_id))
        ordered = sorted(staged.items())
        summary = replace(summary, tracks={str(t): entry for t, entry in ordered},
                          thumbnails=(*summary.thumbnails, *(str(entry["path"]) for _, entry in ordered)))
    if settings.timeline:
        image = render_timeline(duration_s, activity, join.presence(parts, merged.track_map),
                                state / "timelines" / f"{video_id}.png")
        summary = replace(summary, timeline=str(image))
    if settings.condensed_clip and merged.activity:
        target = state / "condensed" / f"{video_id}.mp4"
        seconds = condense(Path(record.spool_path), activity, target, pad_s=settings.condensed_pad_seconds,
                           timeout_s=120.0 + duration_s)
        if seconds > 0:
            summary = replace(summary, condensed_clip=str(target))
    return summary


def with_latency(summary: Summary, record: VideoRecord, parts: list[SegmentPartial]) -> Summary:
    """The summary with the latency breakdown (:mod:`vidwatch.results.latency`) added to ``processing``, up to now:
    the last step before the write."""
    figures = latency.breakdown(latency.stamps_of(record, parts, written=time.time()))
    return replace(summary, processing={**summary.processing, **figures})


def batch_fill(parts: list[SegmentPartial], batch: int) -> float | None:
    """Frames per engine call ÷ the configured batch, over the whole video (None: the engine never ran).

    >>> batch_fill([SegmentPartial(0, 5, 10, engine_calls=2, engine_frames=6),
    ...             SegmentPartial(5, 9, 8, engine_calls=1, engine_frames=2)], 4)
    0.667
    """
    calls = sum(p.engine_calls for p in parts)
    frames = sum(p.engine_frames for p in parts)
    return round(frames / (calls * batch), 3) if calls else None
