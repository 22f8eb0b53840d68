"""Idempotent result writes: a redelivered or retried segment leaves Redis as one run would.

Each write is one Lua script, so it happens entirely or not at all, and checks its
marker first: the segment marker for detections, the record's ``summary_id`` for the
summary. A second run of the same segment or summary changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from vidwatch.engines.base import Detection
from vidwatch.results.events import event_fields
from vidwatch.results.keys import Keys

SEGMENT_MARKER_TTL_S = 30 * 24 * 3600

# KEYS: segment marker, detections stream, join hash, join-fired marker
# ARGV: maxlen, ttl, n entries, fields per entry, segment, partial JSON, n segments, entries...
# Returns {written, complete, fire}: fire is 1 for exactly one caller, the first to see every segment in.
_SEGMENT = """
local written = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  local n = tonumber(ARGV[3])
  local per = tonumber(ARGV[4])
  for e = 0, n - 1 do
    local entry = {}
    for i = 8 + e * per, 7 + (e + 1) * per do entry[#entry + 1] = ARGV[i] end
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', unpack(entry))
  end
  redis.call('SET', KEYS[1], n, 'EX', ARGV[2])
  redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  written = 1
end
local complete = 0
local fire = 0
if redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[7]) then
  complete = 1
  if redis.call('SET', KEYS[4], '1', 'NX', 'EX', ARGV[2]) then fire = 1 end
end
return {written, complete, fire}
"""

# KEYS: video, summaries, index time, index camera, inflight, events, label index keys...
# ARGV: video_id, summaries_maxlen, events_maxlen, start_ts, n_summary, summary..., n_event, event..., label scores...
_SUMMARY = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'failed' then return false end
if state == 'done' then return redis.call('HGET', KEYS[1], 'summary_id') end
local ns = tonumber(ARGV[5])
local summary = {}
for i = 6, 5 + ns do summary[#summary + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(summary))
redis.call('HSET', KEYS[1], 'state', 'done', 'summary_id', id)
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
local ne = tonumber(ARGV[6 + ns])
local event = {}
for i = 7 + ns, 6 + ns + ne do event[#event + 1] = ARGV[i] end
event[#event + 1] = 'summary_id'
event[#event + 1] = id
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[3], '*', unpack(event))
local first_label = 7 + ns + ne
for k = 7, #KEYS do
  redis.call('ZADD', KEYS[k], ARGV[first_label + k - 7], ARGV[1])
end
return id
"""


@dataclass(frozen=True)
class SegmentWrite:
    written: bool  # False: this segment was written before (a redelivery)
    complete: bool  # every segment of the video is in
    fire: bool  # this caller is the one that found it complete first


@dataclass(frozen=True)
class FrameResult:
    frame: int
    pts_s: float
    detections: list[Detection]


def _flat(mapping: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in mapping.items():
        out.extend((key, value if isinstance(value, str) else json.dumps(value, sort_keys=True)))
    return out


class ResultWriter:
    """Writes detections per segment and the summary per video, each exactly once."""

    def __init__(
        self, client: redis.Redis, keys: Keys, *, events_maxlen: int, detections_maxlen: int, summaries_maxlen: int
    ) -> None:
        self.client = client
        self.keys = keys
        self.events_maxlen = events_maxlen
        self.detections_maxlen = detections_maxlen
        self.summaries_maxlen = summaries_maxlen
        self._segment = client.register_script(_SEGMENT)
        self._summary = client.register_script(_SUMMARY)

    def write_segment(
        self,
        video_id: str,
        segment: int,
        camera: str,
        start_ts: float,
        frames: Sequence[FrameResult],
        *,
        partial: dict[str, Any] | None = None,
        segments: int = 1,
    ) -> SegmentWrite:
        """Append one entry per frame with detections and record the segment's partial, atomically.

        A segment written before (a redelivery) writes nothing again. ``fire`` is true for
        exactly one caller: the first to find every one of the ``segments`` in.
        """
        per_entry = 12
        args: list[Any] = [
            self.detections_maxlen, SEGMENT_MARKER_TTL_S, 0, per_entry, segment,
            json.dumps(partial or {}), segments,
        ]
        count = 0
        for item in frames:
            if not item.detections:
                continue
            count += 1
            args.extend(
                (
                    "video_id", video_id,
                    "segment", str(segment),
                    "frame", str(item.frame),
                    "pts", f"{item.pts_s:.3f}",
                    "ts", f"{start_ts + item.pts_s:.3f}",
                    "detections", json.dumps([d.as_json() for d in item.detections]),
                )
            )
        args[2] = count
        keys = [
            self.keys.segment_done(video_id, segment),
            self.keys.detections(camera),
            self.keys.join(video_id),
            self.keys.join_fired(video_id),
        ]
        written, complete, fire = self._segment(keys=keys, args=args)
        return SegmentWrite(bool(written), bool(complete), bool(fire))

    def partials(self, video_id: str) -> dict[int, dict[str, Any]]:
        """Every segment's partial recorded so far, by segment number."""
        raw = self.client.hgetall(self.keys.join(video_id))
        return {int(k): json.loads(v) for k, v in raw.items()}

    def write_summary(
        self,
        video_id: str,
        path: str,
        camera: str,
        start_ts: float,
        summary: dict[str, Any],
        label_first_pts: dict[str, float],
    ) -> str | None:
        """Add the summary, index the video and mark it ``done``; returns the summary's entry id.

        A second call returns the first call's id and writes nothing. None when the video failed.
        """
        fields = _flat(summary)
        event = _flat(event_fields("done", video_id, path, summary.get("processing", "")))
        labels = sorted(label_first_pts)
        keys = [
            self.keys.video(video_id),
            self.keys.summaries,
            self.keys.index_time,
            self.keys.index_camera(camera),
            self.keys.inflight,
            self.keys.events,
            *(self.keys.index_label(label) for label in labels),
        ]
        args: list[Any] = [
            video_id, self.summaries_maxlen, self.events_maxlen, f"{start_ts:.3f}",
            len(fields), *fields, len(event), *event,
            *(f"{start_ts + label_first_pts[label]:.3f}" for label in labels),
        ]
        result = self._summary(keys=keys, args=args)
        return str(result) if result else None
