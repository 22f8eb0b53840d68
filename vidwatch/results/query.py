"""Indexed look-ups of videos: the ``<prefix>:index:*`` sorted sets, never a stream scan.

Used by ``GET /videos``, the status page and ``vidwatch query``. Detections are in
``detections.py``; index members whose stream entries were trimmed are never returned
(``trim.py``).

>>> parse_time("1700000000")
1700000000.0
>>> parse_time("2023-11-14T22:13:20Z")
1700000000.0
>>> parse_time("2h", now=1700007200.0)
1700000000.0
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from vidwatch.results.connection import entries, scored
from vidwatch.results.keys import Keys
from vidwatch.results.trim import live_summaries

MAX_LIMIT = 1000
_CHUNK = 200
ROW_FIELDS = ("path", "camera", "state", "start_ts", "probe_duration_s", "summary_id", "error", "updated_at")


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
TIME_FORMS = 'epoch seconds, ISO 8601 (naive: UTC), "now", or an age: "90s", "30m", "2h", "1d", "1w" ago'


def parse_time(text: str | float | None, *, now: float | None = None) -> float | None:
    """Epoch seconds from any of :data:`TIME_FORMS`; None for no time; raise ValueError otherwise."""
    if text is None or text == "":
        return None
    if isinstance(text, str):
        relative = _RELATIVE.match(text)
        current = time.time() if now is None else now
        if relative:
            return current - float(relative.group(1)) * _UNIT_S[relative.group(2).lower()]
        if text.strip().lower() == "now":
            return current
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None:
        if not math.isfinite(value):
            raise ValueError(f"expected a finite time, got {text!r}")
        return value
    try:
        stamp = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"expected {TIME_FORMS}; got {text!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


@dataclass(frozen=True)
class VideoQuery:
    """Newest first. ``since``/``until`` bound the recording start; with ``label`` alone, the
    label's first occurrence (the score of its index)."""

    camera: str | None = None
    label: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit: expected 1..{MAX_LIMIT}, got {self.limit}")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")


def find_video_ids(client: redis.Redis, keys: Keys, query: VideoQuery) -> list[tuple[str, float]]:
    """``(video_id, score)`` pairs, newest first, at most ``query.limit``.

    Only videos whose summary entry is still in the stream; members whose summary was trimmed
    are removed from the indexes on the way.
    """
    if query.camera:
        primary, other = keys.index_camera(query.camera), keys.index_label(query.label) if query.label else None
    elif query.label:
        primary, other = keys.index_label(query.label), None
    else:
        primary, other = keys.index_time, None
    high = "+inf" if query.until is None else repr(query.until)
    low = "-inf" if query.since is None else repr(query.since)
    found: list[tuple[str, float]] = []
    offset = 0
    while len(found) < query.limit:
        chunk = scored(client.zrevrangebyscore(primary, high, low, start=offset, num=_CHUNK, withscores=True))
        if not chunk:
            break
        alive = live_summaries(client, keys, [str(vid) for vid, _ in chunk])
        dead = [str(vid) for (vid, _), ok in zip(chunk, alive, strict=True) if not ok]
        if dead:
            client.zrem(primary, *dead)
        offset += len(chunk) - len(dead)
        full = len(chunk) == _CHUNK
        chunk = [item for item, ok in zip(chunk, alive, strict=True) if ok]
        if other is None:
            found.extend((str(vid), float(score)) for vid, score in chunk)
        else:
            pipe = client.pipeline(transaction=False)
            for vid, _ in chunk:
                pipe.zscore(other, vid)
            found.extend((str(vid), float(score)) for (vid, score), hit in zip(chunk, pipe.execute(), strict=True)
                         if hit is not None)
        if not full:
            break
    return found[: query.limit]


def video_rows(client: redis.Redis, keys: Keys, video_ids: list[str]) -> list[dict[str, Any]]:
    """One dict per id that has a record: the fields a listing shows."""
    pipe = client.pipeline(transaction=False)
    for video_id in video_ids:
        pipe.hmget(keys.video(video_id), ROW_FIELDS)
    rows = []
    for video_id, values in zip(video_ids, pipe.execute(), strict=True):
        if all(v is None for v in values):
            continue
        record = dict(zip(ROW_FIELDS, values, strict=True))
        rows.append(
            {
                "video_id": video_id,
                "camera": record["camera"] or "",
                "path": record["path"] or "",
                "state": record["state"] or "",
                "start_ts": _float(record["start_ts"]),
                "duration_s": _float(record["probe_duration_s"]),
                "summary_id": record["summary_id"] or None,
                "error": record["error"] or None,
                "updated_at": _float(record["updated_at"]),
            }
        )
    return rows


def find_videos(client: redis.Redis, keys: Keys, query: VideoQuery) -> list[dict[str, Any]]:
    return video_rows(client, keys, [vid for vid, _ in find_video_ids(client, keys, query)])


def summary_of(client: redis.Redis, keys: Keys, video_id: str) -> dict[str, Any] | None:
    """The video's summary entry, JSON fields decoded; None when it has none (yet)."""
    summary_id = client.hget(keys.video(video_id), "summary_id")
    if not summary_id:
        return None
    found = entries(client.xrange(keys.summaries, min=summary_id, max=summary_id, count=1))
    if not found:
        return None  # trimmed from the stream
    entry_id, fields = found[0]
    out: dict[str, Any] = {"summary_id": entry_id}
    for key, value in fields.items():
        if key in ("labels", "activity", "thumbnails", "processing", "analysis", "analyzers"):
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
        elif key in ("duration",):
            out[key] = _float(value)
        elif key == "frames_analyzed":
            out[key] = int(value) if value.isdigit() else value
        else:
            out[key] = value
    return out


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None
