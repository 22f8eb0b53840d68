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

from vidwatch.config import Config
from vidwatch.detection import Detection
from vidwatch.results.bridge import Bridge
from vidwatch.results.events import event_fields
from vidwatch.results.keys import Keys
from vidwatch.results.partials import SegmentPartial
from vidwatch.results.summary import Summary
from vidwatch.results.version import SCHEMA_VERSION, AnalysisVersion, analysis_version

SEGMENT_MARKER_TTL_S = 30 * 24 * 3600

# KEYS: segment marker, detections stream, video hash, detections index, detections span hash
# ARGV: maxlen, marker ttl, n entries, fields per entry, segment, partial JSON, n segments,
#       join key prefix (the run is appended), entries (n * per items), camera, first_ts, last_ts, video_id, segment
# The marker holds "r<run>": a forced rerun (run > 1) writes its segments again, once per run, into
# that run's join hash. Returns {written, complete, fire}: fire is 1 for exactly one caller, the
# first to see every segment of the run in. A video that is done or failed gets nothing written: a
# segment redelivered after the end neither writes twice nor brings its dropped bridge keys back.
_SEGMENT = """
local state = redis.call('HGET', KEYS[3], 'state')
if state == 'done' or state == 'failed' then return {0, 0, 0} end
local run = redis.call('HGET', KEYS[3], 'run') or '1'
local join = ARGV[8] .. run
local written = 0
local done = redis.call('GET', KEYS[1])
if not (done and (run == '1' or done == 'r' .. run)) then
  local n = tonumber(ARGV[3])
  local per = tonumber(ARGV[4])
  local first, last
  for e = 0, n - 1 do
    local entry = {}
    for i = 9 + e * per, 8 + (e + 1) * per do entry[#entry + 1] = ARGV[i] end
    entry[#entry + 1] = 'run'
    entry[#entry + 1] = run
    local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', unpack(entry))
    if not first then first = id end
    last = id
  end
  if n > 0 then
    local base = 9 + n * per
    local member = table.concat({first, last, ARGV[base + 3], ARGV[base + 4], run, ARGV[base + 2]}, '|')
    redis.call('ZADD', KEYS[4], ARGV[base + 1], member)
    local span = tonumber(ARGV[base + 2]) - tonumber(ARGV[base + 1])
    local known = tonumber(redis.call('HGET', KEYS[5], ARGV[base]) or '-1')
    if span > known then redis.call('HSET', KEYS[5], ARGV[base], tostring(span)) end
  end
  redis.call('SET', KEYS[1], 'r' .. run, 'EX', ARGV[2])
  redis.call('HSET', join, ARGV[5], ARGV[6])
  redis.call('EXPIRE', join, ARGV[2])
  written = 1
end
local complete = 0
local fire = 0
if redis.call('HLEN', join) >= tonumber(ARGV[7]) then
  complete = 1
  if redis.call('SET', join .. ':fired', '1', 'NX', 'EX', ARGV[2]) then fire = 1 end
end
return {written, complete, fire}
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
local ne = tonumber(ARGV[6 + ns])
local event = {}
for i = 7 + ns, 6 + ns + ne do event[#event + 1] = ARGV[i] end
event[#event + 1] = 'summary_id'
event[#event + 1] = id
event[#event + 1] = 'run'
event[#event + 1] = run
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[3], '*', unpack(event))
redis.call('ZADD', KEYS[7], ARGV[4], ARGV[1])
redis.call('ZADD', KEYS[8], ARGV[4], ARGV[1])
local first_label = 7 + ns + ne
for k = 9, #KEYS do
  local score = ARGV[first_label + k - 9]
  if score == '' then redis.call('ZREM', KEYS[k], ARGV[1]) else redis.call('ZADD', KEYS[k], score, ARGV[1]) end
end
return id
"""


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
        """Append one entry per frame with detections and record the segment's partial, atomically.

        A segment written before in this run (a redelivery) writes nothing again. ``fire`` is true for
        exactly one caller: the first to find every one of the ``segments`` in. Also indexes the
        segment's first/last entry ids by recording time (``index:detections:<camera>``).
        """
        if isinstance(partial, SegmentPartial):
            partial = partial.to_dict()
        stamp = ["schema", SCHEMA_VERSION]
        if self.analysis is not None:
            stamp += ["analysis_version", self.analysis.id]
        per_entry = 12 + len(stamp)
        args: list[Any] = [
            self.detections_maxlen, SEGMENT_MARKER_TTL_S, 0, per_entry, segment,
            json.dumps(partial or {}), segments, self.keys.join(video_id, ""),
        ]
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
        args.extend((camera, first_ts, last_ts, video_id, str(segment)))
        keys = [
            self.keys.segment_done(video_id, segment),
            self.keys.detections(camera),
            self.keys.video(video_id),
            self.keys.index_detections(camera),
            self.keys.index_detections_span,
        ]
        written, complete, fire = self._segment(keys=keys, args=args)
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

        The video enters the retention indexes (by ``start_ts``) in the same script, and its bridge
        keys (join, segment markers, delivery counts: :mod:`vidwatch.results.bridge`) go right after.

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
