"""Keep the indexes in step with trimmed streams.

Streams are trimmed with ``MAXLEN ~``; the index sorted sets are not trimmed with them. An
index member is *stale* when the entry it stands for is gone: a video whose summary entry
is older than the summaries stream's first entry, a detections span older than its
stream's first entry. Queries check what they return (:func:`live_summaries`) and remove
the stale members they meet; :func:`prune_indexes` sweeps the time index in the background.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import redis

from vidwatch.results.keys import Keys

logger = logging.getLogger(__name__)

PRUNE_BATCH = 500


def entry_id_tuple(entry_id: str) -> tuple[int, int]:
    """``"1700000000000-3"`` → ``(1700000000000, 3)``, comparable."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def first_entry_id(client: redis.Redis, stream: str) -> str | None:
    """The oldest entry still in ``stream``; None when it is empty or missing."""
    entries = client.xrange(stream, count=1)
    return str(entries[0][0]) if entries else None


def is_trimmed(entry_id: str, first_id: str | None) -> bool:
    return first_id is None or entry_id_tuple(entry_id) < entry_id_tuple(first_id)


def live_summaries(client: redis.Redis, keys: Keys, video_ids: Sequence[str]) -> list[bool]:
    """For each id: its summary entry is still in the summaries stream. Stale ones are unindexed."""
    if not video_ids:
        return []
    first = first_entry_id(client, keys.summaries)
    pipe = client.pipeline(transaction=False)
    for video_id in video_ids:
        pipe.hmget(keys.video(video_id), ("summary_id", "camera", "labels"))
    alive = []
    stale: list[tuple[str, str, str]] = []
    for video_id, (summary_id, camera, labels) in zip(video_ids, pipe.execute(), strict=True):
        ok = bool(summary_id) and not is_trimmed(str(summary_id), first)
        alive.append(ok)
        if not ok:
            stale.append((video_id, camera or "", labels or ""))
    if stale:
        unindex(client, keys, stale)
    return alive


def unindex(client: redis.Redis, keys: Keys, stale: Sequence[tuple[str, str, str]]) -> None:
    """Remove videos ``(video_id, camera, comma-separated labels)`` from every index that may hold them."""
    pipe = client.pipeline(transaction=False)
    for video_id, camera, labels in stale:
        pipe.zrem(keys.index_time, video_id)
        if camera:
            pipe.zrem(keys.index_camera(camera), video_id)
        for label in filter(None, labels.split(",")):
            pipe.zrem(keys.index_label(label), video_id)
        pipe.hset(keys.video(video_id), "summary_trimmed", "1")
    pipe.execute()
    logger.info("results: unindexed %d videos whose summaries were trimmed", len(stale))


def prune_indexes(client: redis.Redis, keys: Keys, *, batch: int = PRUNE_BATCH) -> int:
    """Sweep the time index and unindex videos whose summaries were trimmed; returns how many.

    One pipelined round trip per ``batch`` videos (the whole index: recording time says
    nothing about when a summary was written). Run it now and then (hourly); queries do not
    depend on it, they check what they return.
    """
    removed = offset = 0
    while True:
        ids = [str(v) for v in client.zrange(keys.index_time, offset, offset + batch - 1)]
        if not ids:
            return removed
        dead = live_summaries(client, keys, ids).count(False)
        removed += dead
        offset += len(ids) - dead
