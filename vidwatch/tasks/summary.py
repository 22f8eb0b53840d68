"""Summary assembly: the segments' partials merged into the video's summary, with its extras.

``vidwatch.summary.summarize(video_id)`` runs :func:`summarize_video` under the error
policy; a one-segment video's own analyze task calls :func:`summarize_video` directly.
Idempotent: a second run for the same video and run writes nothing.

Extras: each joined track's best crop through the crop stages, the timeline image, the
condensed clip, and the JSON sidecar.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from vidwatch import stages
from vidwatch.media.condense import condense
from vidwatch.results.detections import video_detections
from vidwatch.results.records import TERMINAL
from vidwatch.results.sidecar import write_sidecar
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
        record = context.records.get(video_id)
        job.path = record.get("path", "")
        count_delivery(context, job, "summary", record.get("run") or "1")
        return summarize_video(context, job)

    return run_task(task, context, job, body)


def summarize_video(context: WorkerContext, job: Job) -> str:
    """Merge the segments' partials into the summary and write it (a second call writes nothing)."""
    context.ensure()
    video_id = job.video_id
    record = context.records.get(video_id)
    state, path = record.get("state", ""), record.get("path", "")
    job.path = path
    if not record or state in TERMINAL:
        return state or "unknown"
    segments = json.loads(record.get("segments") or "[[0, 0]]")
    run = record.get("run") or "1"
    by_segment = context.writer.partials(video_id, run)
    if len(by_segment) < len(segments):
        missing = sorted(set(range(len(segments))) - set(by_segment))
        context.records.fail(video_id, f"summary: {path}: segments {missing} never reported", path=path)
        return "failed"
    parts = list(by_segment.values())
    analysis = context.config.analysis
    merged = join.merge(parts, analysis.fps, min_gap_s=analysis.min_gap_seconds,
                        min_activity_s=analysis.min_activity_seconds)
    duration_s = float(record.get("probe_duration_s") or 0.0) or max(p["end"] for p in parts)
    summary = assemble(context, video_id, record, parts, merged, duration_s, segments=len(segments))
    summary.update(extras(context, video_id, record, parts, merged, duration_s))
    camera = record.get("camera", "default")
    start_ts = float(record.get("start_ts") or time.time())
    first = {label: stats["first_pts"] for label, stats in merged.labels.items() if stats["first_pts"] is not None}
    summary_id = context.writer.write_summary(video_id, path, camera, start_ts, summary, first)
    if summary_id and context.config.results.sidecar_dir is not None:
        entries = video_detections(context.client, context.keys, camera, video_id, run, since=start_ts,
                                   until=start_ts + duration_s)
        write_sidecar(context.config, video_id, summary, entries)
    logger.info(
        "analyze video=%s path=%s done: %d frames, %d segment(s), %.2f s of analysis, summary %s",
        video_id, path, merged.frames, len(segments), merged.wall_s, summary_id,
    )
    return "done" if summary_id else "failed"


def assemble(
    context: WorkerContext, video_id: str, record: dict[str, str], parts: list[dict[str, Any]], merged: join.Merged,
    duration_s: float, *, segments: int,
) -> dict[str, Any]:
    """The summary entry's fields (the contract's, in ``docs/streams.md``), before the extras."""
    wall = max(merged.wall_s, 1e-6)
    summary: dict[str, Any] = {
        "video_id": video_id,
        "path": record.get("path", ""),
        "camera": record.get("camera", "default"),
        "duration": f"{duration_s:.3f}",
        "frames_analyzed": str(merged.frames),
        "labels": merged.labels,
        "activity": [list(seg) for seg in merged.activity],
        "thumbnails": [merged.thumbnail] if merged.thumbnail else [],
        "processing": {
            "wall_s": round(wall, 3),
            "fps": round(merged.frames / wall, 2),
            "engine": context.engine_kind(),
            "worker": merged.workers[0] if len(merged.workers) == 1 else merged.workers,
            "segments": segments,
            "batch_fill": batch_fill(parts, context.config.engine.batch),
        },
    }
    if merged.analyzers:
        summary["analyzers"] = merged.analyzers
    return summary


def extras(
    context: WorkerContext, video_id: str, record: dict[str, str], parts: list[dict[str, Any]],
    merged: join.Merged, duration_s: float,
) -> dict[str, Any]:
    """Per-track crops (through the crop stages), the timeline image, the condensed clip."""
    settings = context.config.summary
    state = context.config.paths.state_dir
    out: dict[str, Any] = {}
    tracks = join.best_crops(parts, merged.track_map)
    if tracks:
        tracks = stages.apply(context.stages(), tracks,
                              stages.Context(camera=record.get("camera", "default"), video_id=video_id))
        out["tracks"] = {str(t): entry for t, entry in sorted(tracks.items())}
        out["thumbnails"] = [*([merged.thumbnail] if merged.thumbnail else []),
                             *(str(entry["path"]) for _, entry in sorted(tracks.items()))]
    if settings.timeline:
        path = render_timeline(duration_s, [list(a) for a in merged.activity],
                               join.presence(parts, merged.track_map), state / "timelines" / f"{video_id}.png")
        out["timeline"] = str(path)
    if settings.condensed_clip and merged.activity:
        target = state / "condensed" / f"{video_id}.mp4"
        seconds = condense(Path(record["spool_path"]), [list(a) for a in merged.activity], target,
                           pad_s=settings.condensed_pad_seconds, timeout_s=120.0 + duration_s)
        if seconds > 0:
            out["condensed_clip"] = str(target)
    return out


def batch_fill(parts: list[dict[str, Any]], batch: int) -> float | None:
    """Frames per engine call ÷ the configured batch, over the whole video (None: the engine never ran).

    >>> batch_fill([{"engine_calls": 2, "engine_frames": 6}, {"engine_calls": 1, "engine_frames": 2}], 4)
    0.667
    """
    calls = sum(p.get("engine_calls", 0) for p in parts)
    frames = sum(p.get("engine_frames", 0) for p in parts)
    return round(frames / (calls * batch), 3) if calls else None
