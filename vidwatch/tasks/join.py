"""Fan-out and join: a long video's segments, their partials, and the merge into one summary.

A video longer than ``[analysis] segment_seconds`` is cut at keyframes (:func:`plan_segments`,
kept in the video's record so a redelivery plans the same) and fanned out as one task per
segment (:func:`fan_out`). The join is kept in Redis, not in Celery's chord counter: each
segment's write records its partial and says whether every segment is in
(:func:`segment_in`); the one that finds them all enqueues the summary.

Each segment task reduces its analysis to a small JSON *partial* (frame count, per-label
track ids and times, active pts, the first and last sighting of each track, its best
thumbnail). The summary task merges the partials: tracks that cross a cut are joined
(same label, overlapping or nearby boxes within the tracker's age), so counts come from
tracks, as in a single pass.
"""

from __future__ import annotations

import enum
import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidwatch.broker import broker_errors
from vidwatch.media.probe import Probe
from vidwatch.results.partials import SegmentPartial, Sighting
from vidwatch.results.records import VideoRecord
from vidwatch.results.summary import LabelSummary, merge_activity, merge_labels
from vidwatch.results.writer import SegmentWrite
from vidwatch.tasks.app import SEGMENT_TASK, SUMMARY_TASK, task_id, time_limits
from vidwatch.tasks.pipeline import TRACK_MAX_AGE_S, Analysis
from vidwatch.tasks.resources import WorkerContext, worker_name
from vidwatch.tasks.segments import keyframe_times, plan
from vidwatch.tasks.track import affinity

logger = logging.getLogger(__name__)

TRACK_ID_STRIDE = 1_000_000  # segment k's tracks are numbered from k * stride + 1


def track_base(segment: int) -> int:
    return segment * TRACK_ID_STRIDE


def plan_segments(context: WorkerContext, record: VideoRecord, spool: Path, facts: Probe) -> list[tuple[float, float]]:
    """The segment plan ``[(start_s, length_s), …]``, computed once and kept in the record."""
    if record.segments:
        return list(record.segments)
    analysis = context.config.analysis
    keyframes = keyframe_times(spool) if facts.duration_s > analysis.segment_seconds * 1.5 else [0.0]
    segments = plan(facts.duration_s, analysis.fps, analysis.segment_seconds, keyframes)
    key = context.keys.video(record.video_id)
    context.client.hsetnx(key, "segments", json.dumps([list(s) for s in segments]))  # a concurrent plan wins
    return [(float(a), float(b)) for a, b in json.loads(str(context.client.hget(key, "segments") or "[]"))]


def fan_out(context: WorkerContext, video_id: str, segments: Sequence[tuple[float, float]], queue: str) -> None:
    """One task per segment on ``queue``, each with time limits for its own length.

    A broker error raises :class:`~vidwatch.errors.PublishError`, which the task retries (it does
    not fail the video): the retry sends every segment again, and a segment analysed twice writes
    its results once.
    """
    for k, (_, length_s) in enumerate(segments):
        soft, hard = time_limits(context.config, length_s)
        with broker_errors(f"fan-out: video {video_id}: segment {k}"):
            context.app.send_task(
                SEGMENT_TASK[queue], args=[video_id, k], task_id=task_id(video_id, f"seg{k}"),
                soft_time_limit=soft, time_limit=hard,
            )
    logger.info("analyze video=%s: %d segments fanned out", video_id, len(segments))


class Joined(enum.Enum):
    """Where the video stands once a segment is in (the value is the segment task's result)."""

    WAITING = "segment done"  # other segments are still to come
    SENT = "segments done"  # this one completed the video: the summary task is enqueued
    HERE = "summarize here"  # a one-segment video: its own task summarises


def segment_in(
    context: WorkerContext, video_id: str, path: str, k: int, segments: int, written: SegmentWrite
) -> Joined:
    """After segment ``k``'s write: report it, and enqueue the summary when it completed the video.

    The finisher that found every segment in enqueues the summary; so does a redelivered
    finisher (it may have died before enqueueing): the summary is idempotent.
    """
    if written.written and segments > 1:
        context.event("segment_done", video_id, path, {"segment": k, "segments": segments, "worker": worker_name()})
    if not (written.complete and (written.fire or not written.written)):
        return Joined.WAITING
    if segments == 1:
        return Joined.HERE
    with broker_errors(f"join: video {video_id}: summary"):
        context.app.send_task(SUMMARY_TASK, args=[video_id], task_id=task_id(video_id, "summary"))
    return Joined.SENT


def partial(analysis: Analysis, *, start_s: float, end_s: float, wall_s: float, worker: str,
            thumbnail: str | None, thumbnail_area: float,
            crops: Mapping[int, Mapping[str, Any]] | None = None,
            analysed: tuple[float, float] | None = None) -> SegmentPartial:
    """What one segment found, reduced to what the merge needs.

    ``analysed``: epoch s when analyze() started and returned (the latency breakdown's analysis span).
    """
    started_at, analyzed_at = analysed if analysed is not None else (None, None)
    builder = analysis.summary
    return SegmentPartial(
        start=start_s,
        end=end_s,
        frames=builder.frames,
        active_pts=tuple(builder.active_pts),
        labels={label: stats.segment() for label, stats in builder.labels.items()},
        first={t: Sighting(label, box, pts) for t, (label, box, pts) in analysis.track_first.items()},
        last={t: Sighting(label, box, pts) for t, (label, box, pts) in analysis.track_last.items()},
        thumbnail=thumbnail,
        thumbnail_area=thumbnail_area,
        wall_s=wall_s,
        worker=worker,
        analyzers=analysis.analyzers,
        crops=dict(crops or {}),
        engine_calls=analysis.engine_calls,
        engine_frames=analysis.engine_frames,
        started_at=started_at,
        analyzed_at=analyzed_at,
    )


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(b)] = self.find(a)


def best_crops(parts: Sequence[SegmentPartial], track_map: Mapping[int, int]) -> dict[int, Mapping[str, Any]]:
    """Each joined track's best crop over all segments (the highest score wins)."""
    best: dict[int, Mapping[str, Any]] = {}
    for part in parts:
        for track, entry in part.crops.items():
            joined = track_map.get(track, track)
            if joined not in best or entry["score"] > best[joined]["score"]:
                best[joined] = entry
    return best


def presence(parts: Sequence[SegmentPartial], track_map: Mapping[int, int]) -> dict[str, list[list[float]]]:
    """Per label, the spans in which one of its (joined) tracks was seen."""
    spans: dict[int, list[Any]] = {}
    for part in parts:
        for track, seen in part.first.items():
            entry = spans.setdefault(track_map.get(track, track), [seen.label, seen.pts, seen.pts])
            entry[1] = min(entry[1], seen.pts)
        for track, seen in part.last.items():
            entry = spans.setdefault(track_map.get(track, track), [seen.label, seen.pts, seen.pts])
            entry[2] = max(entry[2], seen.pts)
    by_label: dict[str, list[tuple[float, float]]] = {}
    for label, start, end in spans.values():
        by_label.setdefault(label, []).append((start, end))
    return {label: _union(segs) for label, segs in sorted(by_label.items())}


def _union(spans: list[tuple[float, float]]) -> list[list[float]]:
    out: list[list[float]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


@dataclass(frozen=True)
class Merged:
    """The partials of a video's segments, joined."""

    frames: int
    labels: dict[str, LabelSummary]
    activity: list[tuple[float, float]]
    track_map: dict[int, int]  # segment-local track id -> the video's track id
    thumbnail: str | None
    wall_s: float
    workers: list[str]
    analyzers: dict[str, Any]


def join_tracks(parts: Sequence[SegmentPartial], fps: float) -> dict[int, int]:
    """Map every track id to the id of the track it continues across cuts."""
    uf = _UnionFind()
    max_gap_s = TRACK_MAX_AGE_S + 1.0 / fps
    for before, after in itertools.pairwise(parts):
        ends = [(t, s) for t, s in before.last.items() if s.pts >= before.end - max_gap_s]
        starts = [(t, s) for t, s in after.first.items() if s.pts <= after.start + max_gap_s]
        pairs = sorted(
            ((affinity(a_seen.box, b_seen.box), a, b) for a, a_seen in ends for b, b_seen in starts
             if a_seen.label == b_seen.label),
            reverse=True,
        )
        used_a: set[int] = set()
        used_b: set[int] = set()
        for score, a, b in pairs:
            if score <= 0 or a in used_a or b in used_b:
                continue
            used_a.add(a)
            used_b.add(b)
            uf.union(a, b)
    return {track: uf.find(track) for part in parts for stats in part.labels.values() for track in stats.tracks}


def merge(parts: Sequence[SegmentPartial], fps: float, *, min_gap_s: float, min_activity_s: float) -> Merged:
    """One summary from the partials of consecutive segments (ordered by start)."""
    parts = sorted(parts, key=lambda p: p.start)
    track_map = join_tracks(parts, fps)
    active = [pts for part in parts for pts in part.active_pts]
    best = max(parts, key=lambda p: p.thumbnail_area or 0.0)
    return Merged(
        frames=sum(p.frames for p in parts),
        labels=merge_labels(parts, track_map),
        activity=merge_activity(active, 1.0 / fps, min_gap_s=min_gap_s, min_activity_s=min_activity_s),
        track_map=track_map,
        thumbnail=best.thumbnail if best.thumbnail_area else None,
        wall_s=sum(p.wall_s for p in parts),
        workers=sorted({p.worker for p in parts}),
        analyzers=_merge_analyzers(parts),
    )


def _merge_analyzers(parts: Sequence[SegmentPartial]) -> dict[str, Any]:
    """One segment: its analyzers' summaries; several: per analyzer, each segment's value by its start."""
    if len(parts) == 1:
        return dict(parts[0].analyzers)
    names = sorted({name for part in parts for name in part.analyzers})
    return {
        name: [{"segment_start": p.start, "value": p.analyzers[name]} for p in parts if name in p.analyzers]
        for name in names
    }
