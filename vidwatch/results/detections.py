"""Detections in a recording-time range, without scanning streams.

Each written segment adds one member to ``<prefix>:index:detections:<camera>``:
``first_id|last_id|video_id|segment|run|last_ts``, scored by the recording time of its first
detection. ``<prefix>:index:detections-span`` keeps, per camera, the longest
``last_ts - first_ts`` ever indexed, so the members that can overlap ``[since, until]`` are
exactly those scored in ``[since - longest span, until]``: one ``ZRANGEBYSCORE``, then one
``XRANGE first_id last_id`` per overlapping segment (its entries are contiguous: a segment is
written by one script).

Only the run that made the video's current summary counts (``submit --force`` makes a new
run; until its summary is in, readers keep seeing the earlier run). Members whose entries
were trimmed, or that belong to a replaced run, are removed when met.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import redis

from vidwatch.results.connection import scored
from vidwatch.results.keys import Keys
from vidwatch.results.trim import first_entry_id, is_trimmed

MAX_DETECTIONS = 10_000
TS_RESOLUTION_S = 0.001  # ts fields are written with 3 decimals: a margin against float rounding at the edge


@dataclass(frozen=True)
class DetectionQuery:
    camera: str | None = None
    label: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 1000

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_DETECTIONS:
            raise ValueError(f"limit: expected 1..{MAX_DETECTIONS}, got {self.limit}")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")


@dataclass(frozen=True)
class Span:
    member: str
    first_id: str
    last_id: str
    video_id: str
    segment: str
    run: str
    first_ts: float
    last_ts: float

    @classmethod
    def parse(cls, member: str, score: float) -> Span | None:
        parts = member.split("|")
        if len(parts) != 6:
            return None
        first_id, last_id, video_id, segment, run, last_ts = parts
        try:
            return cls(member, first_id, last_id, video_id, segment, run, score, float(last_ts))
        except ValueError:
            return None


def cameras(client: redis.Redis, keys: Keys) -> list[str]:
    """Cameras that have detections indexed."""
    return sorted(str(c) for c in client.hkeys(keys.index_detections_span))


def find_detections(client: redis.Redis, keys: Keys, query: DetectionQuery) -> list[dict[str, Any]]:
    """Entries with ``since <= ts <= until`` (and a detection of ``label``), oldest first, at most ``limit``.

    Each: ``camera``, ``entry_id`` and the entry's fields, ``detections`` decoded (only ``label``'s
    when a label is asked for).
    """
    found: list[dict[str, Any]] = []
    for camera in [query.camera] if query.camera else cameras(client, keys):
        found.extend(_camera_detections(client, keys, camera, query))
    found.sort(key=lambda row: (row["ts"], row["camera"], row["entry_id"]))
    return found[: query.limit]


def _camera_detections(client: redis.Redis, keys: Keys, camera: str, query: DetectionQuery) -> list[dict[str, Any]]:
    longest = float(client.hget(keys.index_detections_span, camera) or 0.0)
    since = -math.inf if query.since is None else query.since
    until = math.inf if query.until is None else query.until
    low = "-inf" if query.since is None else repr(query.since - longest - TS_RESOLUTION_S)
    high = "+inf" if query.until is None else repr(query.until)
    index = keys.index_detections(camera)
    spans = [s for m, score in scored(client.zrangebyscore(index, low, high, withscores=True))
             if (s := Span.parse(str(m), float(score))) is not None and s.last_ts >= since]
    if not spans:
        return []
    current = _current_runs(client, keys, sorted({s.video_id for s in spans}), query.label)
    stream = keys.detections(camera)
    first_id = first_entry_id(client, stream)
    stale = [s.member for s in spans if is_trimmed(s.last_id, first_id) or _replaced(s, current)]
    live = [s for s in spans if s.member not in set(stale) and current.get(s.video_id) == s.run]
    if stale:
        client.zrem(index, *stale)
    pipe = client.pipeline(transaction=False)
    for span in live:
        pipe.xrange(stream, min=span.first_id, max=span.last_id)
    rows = []
    for span, entries in zip(live, pipe.execute(), strict=True):
        for entry_id, fields in entries:
            row = _row(camera, str(entry_id), fields, span, since, until, query.label)
            if row is not None:
                rows.append(row)
    return rows


def _current_runs(client: redis.Redis, keys: Keys, video_ids: list[str], label: str | None) -> dict[str, str]:
    """video_id → the run whose detections count (its summary's run; else the run in progress).

    With ``label``, a video whose summary does not list it is left out.
    """
    pipe = client.pipeline(transaction=False)
    for video_id in video_ids:
        pipe.hmget(keys.video(video_id), ("summary_run", "run", "labels", "summary_id"))
    runs = {}
    for video_id, (summary_run, run, labels, summary_id) in zip(video_ids, pipe.execute(), strict=True):
        if label and summary_id and labels is not None and label not in labels.split(","):
            continue
        runs[video_id] = summary_run or run or "1"
    return runs


def _replaced(span: Span, current: dict[str, str]) -> bool:
    run = current.get(span.video_id)
    return run is not None and run.isdigit() and span.run.isdigit() and int(span.run) < int(run)


def _row(
    camera: str, entry_id: str, fields: dict[str, str], span: Span, since: float, until: float, label: str | None
) -> dict[str, Any] | None:
    if fields.get("video_id") != span.video_id or fields.get("run", "1") != span.run:
        return None
    try:
        ts = float(fields.get("ts", ""))
        detections = json.loads(fields.get("detections", "[]"))
    except ValueError:
        return None
    if not since <= ts <= until:
        return None
    if label:
        detections = [d for d in detections if isinstance(d, dict) and d.get("label") == label]
        if not detections:
            return None
    row: dict[str, Any] = {"camera": camera, "entry_id": entry_id, **fields, "detections": detections, "ts": ts}
    try:
        row["pts"] = float(fields["pts"])
    except (KeyError, ValueError):
        row["pts"] = None
    return row


def video_detections(
    client: redis.Redis, keys: Keys, camera: str, video_id: str, run: str, *, since: float, until: float
) -> list[dict[str, Any]]:
    """Every detections entry of one run of one video recorded in ``[since, until]`` (for sidecars)."""
    index = keys.index_detections(camera)
    longest = float(client.hget(keys.index_detections_span, camera) or 0.0)
    spans = [s for m, score in scored(client.zrangebyscore(index, repr(since - longest - 1.0), repr(until + 1.0),
                                                           withscores=True))
             if (s := Span.parse(str(m), float(score))) is not None and s.video_id == video_id and s.run == run]
    pipe = client.pipeline(transaction=False)
    for span in sorted(spans, key=lambda s: (int(s.segment), s.first_id)):
        pipe.xrange(keys.detections(camera), min=span.first_id, max=span.last_id)
    return [dict(fields) for entries in pipe.execute() for _, fields in entries if fields.get("video_id") == video_id]
