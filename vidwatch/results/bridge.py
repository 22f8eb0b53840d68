"""Keys that only bridge a video's processing, dropped as soon as the video is done or failed.

While a video is analysed, the worker keeps per-run and per-segment state in Redis: the join
hash of each segment's partial (``join:<id>:r<run>``) and its ``:fired`` flag, a marker per
written segment (``segment:<id>:<k>``, the idempotency marker of its detections) and a delivery
count per unit of work (``deliveries:<id>.<unit>.r<run>``). Once the video ends none of them is
read again: :meth:`Bridge.drop` deletes the join hash, its flag and the markers right after the
terminal transition (the summary script for ``done``, :meth:`~vidwatch.results.records.Records.fail`
for ``failed``), in one script that first checks the video *is* terminal, so it is idempotent and
harmless when late. The delivery counts are not read after the end either; they are left
:data:`DELIVERIES_LINGER_S` (an hour, not 7 days) so that how often each message came can still
be read right after a video ends (operators, tests).

A redelivered segment after the end does not bring them back: the segment script writes nothing
for a video that is done or failed (``writer._SEGMENT``), and the tasks check the record's state
before they count a delivery. Their 30-day (7-day for delivery counts) expiry stays as the
backstop for a process that died between the transition and the drop.
"""

from __future__ import annotations

import json
import logging

import redis

from vidwatch.results.keys import Keys

logger = logging.getLogger(__name__)

DELIVERIES_LINGER_S = 3600

# KEYS: video hash, then the bridge keys (the last ARGV[1] of them: delivery counts, left ARGV[2] s).
# Only when the video ended; returns how many keys it found (-1: not ended).
_DROP = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'done' and state ~= 'failed' then return -1 end
local found = 0
local counts_from = #KEYS - tonumber(ARGV[1]) + 1
for i = 2, #KEYS do
  if i < counts_from then
    found = found + redis.call('DEL', KEYS[i])
  else
    local ttl = redis.call('TTL', KEYS[i])
    if ttl == -1 or ttl > tonumber(ARGV[2]) then found = found + redis.call('EXPIRE', KEYS[i], ARGV[2]) end
  end
end
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
        """The bridge keys of the video's current run, from its record (run, segment plan)."""
        return self.keys.bridge(*self._plan(video_id))

    def _plan(self, video_id: str) -> tuple[str, str, int]:
        run, segments = self.client.hmget(self.keys.video(video_id), ("run", "segments"))
        return video_id, str(run or "1"), segment_count(str(segments) if segments else None)

    def drop(self, video_id: str) -> int:
        """Delete the bridge keys of a done or failed video (delivery counts: expire within the hour);
        returns how many it found (-1: not ended yet)."""
        plan = self._plan(video_id)
        counts = len(self.keys.bridge_counts(*plan))
        removed = int(self._drop(keys=[self.keys.video(video_id), *self.keys.bridge(*plan)],
                                 args=[counts, DELIVERIES_LINGER_S]))
        if removed > 0:
            logger.debug("results: video=%s ended; %d bridge key(s) dropped", video_id, removed)
        return removed
