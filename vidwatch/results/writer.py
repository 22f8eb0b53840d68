"""Idempotent result writes: a redelivered or retried segment leaves Redis as one run would.

Each write is a Lua script (a segment's: three, each in one Redis Cluster slot, each safe to
repeat), so it happens entirely or not at all, and checks its marker first: the segment marker
for detections, the record's ``summary_id`` for the summary. A second run of the same segment
or summary changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from vidwatch.config import Config
from vidwatch.detection import Detection
from vidwatch.results.bridge import Bridge
from vidwatch.results.events import event_fields
from vidwatch.results.keys import Keys
from vidwatch.results.partials import SegmentPartial
from vidwatch.results.summary import Summary
from vidwatch.results.version import SCHEMA_VERSION, AnalysisVersion, analysis_version

SEGMENT_MARKER_TTL_S = 30 * 24 * 3600

# Three scripts, each in one slot of a Redis Cluster (see keys.py), run in this order by write_segment:
#
# 1. the camera's slot. KEYS: segment marker, detections stream, detections index
#    ARGV: maxlen, marker ttl, n entries, fields per entry, run, entries (n * per items),
#          first_ts, last_ts, video_id, segment
#    The marker holds "r<run>": a forced rerun (run > 1) writes its segments again, once per run.
#    Returns 1 when it wrote, 0 when this segment was written before in this run (a redelivery).
_SEGMENT = """
local run = ARGV[5]
local done = redis.call('GET', KEYS[1])
if done and (run == '1' or done == 'r' .. run) then return 0 end
local n = tonumber(ARGV[3])
local per = tonumber(ARGV[4])
local first, last
for e = 0, n - 1 do
  local entry = {}
  for i = 6 + e * per, 5 + (e + 1) * per do entry[#entry + 1] = ARGV[i] end
  entry[#entry + 1] = 'run'
  entry[#entry + 1] = run
  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', unpack(entry))
  if not first then first = id end
  last = id
end
if n > 0 then
  local base = 6 + n * per
  local member = table.concat({first, last, ARGV[base + 2], ARGV[base + 3], run, ARGV[base + 1]}, '|')
  redis.call('ZADD', KEYS[3], ARGV[base], member)
end
redis.call('SET', KEYS[1], 'r' .. run, 'EX', ARGV[2])
return 1
"""

# 2. KEYS: detections span hash; ARGV: camera, span (s). Keeps the longest span (idempotent).
_SPAN = """
local known = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > known then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""

# 3. the video's slot. KEYS: the run's join hash, its "fired" marker, the video hash; ARGV: segment,
#    partial JSON, n segments, ttl. The first partial recorded for a segment stays (as the first
#    detections do). Returns {complete, fire}: fire is 1 for exactly one caller, the first to see
#    every segment of the run in. A video that is done or failed gets nothing: a segment redelivered
#    after the end does not bring its dropped bridge keys back.
_JOIN = """
local state = redis.call('HGET', KEYS[3], 'state')
if state == 'done' or state == 'failed' then return {0, 0} end
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if redis.call('HLEN', KEYS[1]) < tonumber(ARGV[3]) then return {0, 0} end
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[4]) then return {1, 1} end
return {1, 0}
"""

# KEYS: video, summaries, index time, index camera, inflight, events, retention videos, retention files,
#       label index keys...
# ARGV: video_id, summaries_maxlen, events_maxlen, start_ts, n_summary, summary..., n_event, event...,
#       label scores ('' removes the video from a label an earlier run had)..., labels (comma-separated)
_SUMMARY = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'failed' then return false end
if state == 'done' then return redis.call('HGET', KEYS[1], 'summary_id') end
local run = redis.call('HGET', KEYS[1], 'run') or '1'
local ns = tonumber(ARGV[5])
local summary = {}
for i = 6, 5 + ns do summary[#summary + 1] = ARGV[i] end
summary[#summary + 1] = 'run'
summary[#summary + 1] = run
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(summary))
redis.call('HSET', KEYS[1], 'state', 'done', 'summary_id', id, 'summary_run', run, 'labels', ARGV[#ARGV])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[7], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[8], ARGV[4], ARGV[1])
local ne = tonumber(ARGV[6 + ns])
local event = {}
for i = 7 + ns, 6 + ns + ne do event[#event + 1] = ARGV[i] end
event[#event + 1] = 'summary_id'
event[#event + 1] = id
event[#event + 1] = 'run'
event[#event + 1] = run
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[3], '*', unpack(event))
local first_label = 7 + ns + ne
for k = 9, #KEYS do
  local score = ARGV[first_label + k - 9]
  if score == '' then redis.call('ZREM', KEYS[k], ARGV[1]) else redis.call('ZADD', KEYS[k], score, ARGV[1]) end
end
return id
"""


def compact_detections(detections: Sequence[Detection]) -> str:
    """The ``detections`` field of a stream entry: JSON without spaces, boxes in whole source pixels, scores
    to 3 decimals (schema 1's layout, about a quarter smaller than ``json.dumps`` of :meth:`Detection.as_json`;
    ``bench/state.py`` measures it).

    >>> compact_detections([Detection("person", 0.91234, (101.4, 98.0, 142.6, 141.2), 3)])
    '[{"label":"person","score":0.912,"box":[101,98,143,141],"track":3}]'
    """
    out = []
    for detection in detections:
        data = detection.as_json()
        data["score"] = round(detection.score, 3)
        data["box"] = [round(v) for v in detection.box]
        out.append(data)
    return json.dumps(out, separators=(",", ":"))


@dataclass(frozen=True)
class SegmentWrite:
    written: bool  # False: this segment was written before (a redelivery)
    complete: bool  # every segment of the video is in
    fire: bool  # this caller is the one that found it complete first

    def __bool__(self) -> bool:
        return self.written


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
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        events_maxlen: int,
        detections_maxlen: int,
        summaries_maxlen: int,
        analysis: AnalysisVersion | None = None,
    ) -> None:
        """``analysis``: stamped on every entry (``analysis_version``) and in full on the summary (``analysis``)."""
        self.analysis = analysis
        self.client = client
        self.keys = keys
        self.events_maxlen = events_maxlen
        self.detections_maxlen = detections_maxlen
        self.summaries_maxlen = summaries_maxlen
        self._segment = client.register_script(_SEGMENT)
        self._span = client.register_script(_SPAN)
        self._join = client.register_script(_JOIN)
        self._summary = client.register_script(_SUMMARY)
        self._bridge = Bridge(client, keys)

    @classmethod
    def from_config(
        cls, client: redis.Redis, keys: Keys, config: Config, *, engine_kind: str | None = None
    ) -> ResultWriter:
        """A writer with the configured stream lengths that stamps ``config``'s analysis version."""
        return cls(
            client, keys,
            events_maxlen=config.redis.events_maxlen,
            detections_maxlen=config.redis.detections_maxlen,
            summaries_maxlen=config.redis.summaries_maxlen,
            analysis=analysis_version(config, engine_kind=engine_kind),
        )

    def write_segment(
        self,
        video_id: str,
        segment: int,
        camera: str,
        start_ts: float,
        frames: Sequence[FrameResult],
        *,
        partial: SegmentPartial | dict[str, Any] | None = None,
        segments: int = 1,
    ) -> SegmentWrite:
        """Append one entry per frame with detections and record the segment's partial.

        A segment written before in this run (a redelivery) writes nothing again. ``fire`` is true for
        exactly one caller: the first to find every one of the ``segments`` in. Also indexes the
        segment's first/last entry ids by recording time (``index:detections:<camera>``).

        Three steps, each atomic and safe to repeat, so that each touches one slot of a Redis
        Cluster: the detections with their marker (the camera's slot), the longest span, the join.
        A writer that dies between them leaves the rest to the redelivered task. A video that is
        done or failed gets nothing written (its segment markers went with its bridge keys): the
        state is read first, and the join checks it again atomically.
        """
        if isinstance(partial, SegmentPartial):
            partial = partial.to_dict()
        run_field, state = self.client.hmget(self.keys.video(video_id), ["run", "state"])
        if state in ("done", "failed"):
            return SegmentWrite(False, False, False)
        run = str(run_field or "1")
        stamp = ["schema", SCHEMA_VERSION]
        if self.analysis is not None:
            stamp += ["analysis_version", self.analysis.id]
        per_entry = 12 + len(stamp)
        args: list[Any] = [self.detections_maxlen, SEGMENT_MARKER_TTL_S, 0, per_entry, run]
        count = 0
        times: list[float] = []
        for item in frames:
            if not item.detections:
                continue
            count += 1
            ts = f"{start_ts + item.pts_s:.3f}"
            times.append(float(ts))
            args.extend(
                (
                    "video_id", video_id,
                    "segment", str(segment),
                    "frame", str(item.frame),
                    "pts", f"{item.pts_s:.3f}",
                    "ts", ts,
                    "detections", compact_detections(item.detections),
                    *stamp,
                )
            )
        args[2] = count
        first_ts, last_ts = (f"{min(times):.3f}", f"{max(times):.3f}") if times else ("", "")
        args.extend((first_ts, last_ts, video_id, str(segment)))
        keys = [
            self.keys.segment_done(video_id, segment, camera),
            self.keys.detections(camera),
            self.keys.index_detections(camera),
        ]
        written = self._segment(keys=keys, args=args)
        if times:
            span = f"{float(last_ts) - float(first_ts):.3f}"
            self._span(keys=[self.keys.index_detections_span], args=[camera, span])
        join_keys = [self.keys.join(video_id, run), self.keys.join_fired(video_id, run), self.keys.video(video_id)]
        complete, fire = self._join(keys=join_keys, args=[segment, json.dumps(partial or {}), segments,
                                                          SEGMENT_MARKER_TTL_S])
        return SegmentWrite(bool(written), bool(complete), bool(fire))

    def segment_partials(self, video_id: str, run: int | str = 1) -> dict[int, SegmentPartial]:
        """Every segment's partial recorded so far in this run, by segment number."""
        raw: dict[str, str] = self.client.hgetall(self.keys.join(video_id, str(run)))  # type: ignore[assignment]
        return {int(k): SegmentPartial.from_dict(json.loads(v)) for k, v in raw.items()}

    def write_video_summary(self, summary: Summary, start_ts: float) -> str | None:
        """:meth:`write_summary` of a typed :class:`Summary`; returns the entry id (None: the video failed)."""
        return self.write_summary(summary.video_id, summary.path, summary.camera, start_ts, summary.to_fields(),
                                  summary.label_first_pts())

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
        The entry gets ``schema``, ``run`` and, with an analysis version, ``analysis_version`` and ``analysis``;
        a rerun (``submit --force``) replaces the record's ``summary_id`` and label indexes in one step.
        """
        stamped: dict[str, Any] = {"schema": SCHEMA_VERSION}
        if self.analysis is not None:
            stamped.update(analysis_version=self.analysis.id, analysis=self.analysis.as_json())
        fields = _flat({**stamped, **summary})
        event = _flat(event_fields("done", video_id, path, summary.get("processing", "")))
        if self.analysis is not None:
            event += ["analysis_version", self.analysis.id]
        earlier = str(self.client.hget(self.keys.video(video_id), "labels") or "")
        gone = {label for label in earlier.split(",") if label} - set(label_first_pts)
        labels = sorted(set(label_first_pts) | gone)
        keys = [
            self.keys.video(video_id),
            self.keys.summaries,
            self.keys.index_time,
            self.keys.index_camera(camera),
            self.keys.inflight,
            self.keys.events,
            self.keys.retention_videos,
            self.keys.retention_files,
            *(self.keys.index_label(label) for label in labels),
        ]
        args: list[Any] = [
            video_id, self.summaries_maxlen, self.events_maxlen, f"{start_ts:.3f}",
            len(fields), *fields, len(event), *event,
            *(f"{start_ts + label_first_pts[label]:.3f}" if label in label_first_pts else "" for label in labels),
            ",".join(sorted(label_first_pts)),
        ]
        result = self._summary(keys=keys, args=args)
        if result:
            self._bridge.drop(video_id)  # right after the transition to done; idempotent
        return str(result) if result else None
