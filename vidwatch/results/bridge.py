"""Keys that only bridge a video's processing, dropped as soon as the video is done or failed.

While a video is analysed, the worker keeps per-run and per-segment state in Redis: the join
hash of each segment's partial (``join:<id>:r<run>``) and its ``:fired`` flag, a marker per
written segment (``segment:<id>:<k>``, the idempotency marker of its detections) and a delivery
count per unit of work (``deliveries:<id>.<unit>.r<run>``). Once the video ends none of them is
read again: :meth:`Bridge.drop` deletes them all (the join hash, its flag, the markers and the
delivery counts) right after the terminal transition (the summary script for ``done``,
:meth:`~vidwatch.results.records.Records.fail` for ``failed``), in one script that first checks
the video *is* terminal (the ``{prefix}`` slot's keys in the cluster layout), then the markers (in
the camera's slot there), so it is idempotent and harmless when late. How often a video's messages
came is not kept: its lifecycle events say what ran (one ``started``, a ``segment_done`` per
segment, one ``done``).

A redelivered message after the end does not bring them back: the segment script writes nothing
for a video that is done or failed (``writer._SEGMENT``), and the tasks check the record's state
before they count a delivery. A count that still slips in (a redelivery that read the record just
before the end) carries its 7-day expiry (``tasks.policy.DELIVERY_COUNT_TTL_S``); the join hash and
markers keep their 30-day one, the backstop for a process that died between the transition and
the drop.
"""

from __future__ import annotations

import json
import logging

import redis

from vidwatch.results.keys import Keys

logger = logging.getLogger(__name__)

# KEYS: video hash, then the bridge keys. Only when the video ended; returns how many keys it deleted (-1: not ended).
_DROP = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'done' and state ~= 'failed' then return -1 end
local found = 0
for i = 2, #KEYS do found = found + redis.call('DEL', KEYS[i]) end
return found
"""


def segment_count(raw_segments: str | None) -> int:
    """How many segments a record's ``segments`` field plans (1 when it has none: analysed whole).

    >>> segment_count('[[0.0, 300.0], [300.0, 61.5]]'), segment_count(None)
    (2, 1)
    """
    try:
        return max(1, len(json.loads(raw_segments))) if raw_segments else 1
    except (TypeError, ValueError):
        return 1


class Bridge:
    """Drops a finished video's bridge keys (:meth:`Keys.bridge`)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._drop = client.register_script(_DROP)

    def keys_of(self, video_id: str) -> list[str]:
        """The bridge keys of the video's current run, from its record (run, segment plan, camera)."""
        return self.keys.bridge(*self._plan(video_id))

    def _plan(self, video_id: str) -> tuple[str, str, int, str]:
        run, segments, camera = self.client.hmget(self.keys.video(video_id), ("run", "segments", "camera"))
        return video_id, str(run or "1"), segment_count(str(segments) if segments else None), str(camera or "")

    def drop(self, video_id: str) -> int:
        """Delete the bridge keys of a done or failed video; returns how many it deleted (-1: not ended yet).

        Two steps, one per slot of the cluster layout: the join hash, its flag and the delivery counts with the
        check that the video ended, then (only then) the segment markers; a retry finishes either.
        """
        _, run, segments, camera = self._plan(video_id)
        removed = int(self._drop(keys=[self.keys.video(video_id), *self.keys.bridge_control(video_id, run, segments)]))
        if removed < 0:
            return removed
        removed += int(self.client.delete(*self.keys.bridge_markers(video_id, segments, camera)))
        if removed > 0:
            logger.debug("results: video=%s ended; %d bridge key(s) dropped", video_id, removed)
        return removed
