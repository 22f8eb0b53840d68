"""Retention: results older than ``[retention]`` allows, by **recording** time, removed in bounded steps.

Stream entry ids are write times; retention is by recording time, and for a backlog of old
recordings the two differ (a file recorded a month ago and analysed today has today's ids).
So every kind is removed through an index scored by recording time, and the streams are also
trimmed by write time as a backstop:

- detections (``detections_days``): through ``index:detections:<camera>``, each segment member
  recorded before the cutoff, its entries (``XDEL`` of ``XRANGE first last``) and the member;
  then ``XTRIM detections:<camera> MINID <cutoff>``;
- records, summaries, index members, events (``summaries_days``): through ``retention:videos``
  (every ended video by recording start; ``index:time`` too, for videos that ended before it
  existed), :meth:`Retention.delete_video`; then ``XTRIM summaries`` and ``XTRIM events`` ``MINID``;
- files (``files_days``, at most ``summaries_days``): through ``retention:files``, the video's
  thumbnails, crops, timeline, clip and sidecar (:mod:`vidwatch.results.files`).

The write-time trims are safe because an entry written before the cutoff was recorded before
it; they catch what no index points at any more (a replaced run's detections and summary, the
lifecycle events). Each step reads a bounded range (``ZRANGEBYSCORE … LIMIT``, ``XRANGE first
last``), never a whole key. Videos in flight are never removed; a video's record is removed
with its summary entry, its index members, its detections, its bridge keys and its files, in one
script (the files right after).

Issue 17's ``objects`` stream is not covered yet (it was not on main when this was written): when
it lands, its entries go with their video in :data:`_DELETE_VIDEO` (or through its own time index
in a step like :meth:`Retention._detections`) and its stream is trimmed by ``MINID`` with the others.

Kept on purpose: the ``ledger:paths`` hint of a removed video's source (about 144 B): it is what
keeps the daemon's rescans from analysing a file still on the NAS again.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from vidwatch.config import Config
from vidwatch.errors import ResultsError
from vidwatch.results.bridge import segment_count
from vidwatch.results.detections import Span
from vidwatch.results.files import find_files, remove_files
from vidwatch.results.keys import Keys
from vidwatch.results.trim import entry_id_tuple

logger = logging.getLogger(__name__)

BATCH = 500
XDEL_CHUNK = 1000
KINDS = ("videos", "summaries", "index_members", "events", "detections", "detection_spans", "files", "file_bytes",
         "bridge_keys")
DAY_S = 86400.0

# KEYS: video, summaries, index time, index camera, retention videos, retention files, inflight, detections stream,
#       detections index, label indexes (ARGV[3] of them), bridge keys (the rest)
# ARGV: video_id, dry ('1': count only), n labels, span members of this video...
# Returns {status, records, summaries, index members, spans, entries, bridge keys}; status 1 removed (or would be),
# 0 in flight (nothing changed), -1 no record (its stray index members removed).
_DELETE_VIDEO = """
local vid = ARGV[1]
local dry = ARGV[2] == '1'
local state = redis.call('HGET', KEYS[1], 'state')
if state and state ~= 'done' and state ~= 'failed' then return {0, 0, 0, 0, 0, 0, 0} end
local status, records, summaries, members, spans, entries, bridge = 1, 0, 0, 0, 0, 0, 0
if state then records = 1 else status = -1 end
local sid = redis.call('HGET', KEYS[1], 'summary_id')
if sid and sid ~= '' and #redis.call('XRANGE', KEYS[2], sid, sid) > 0 then
  summaries = 1
  if not dry then redis.call('XDEL', KEYS[2], sid) end
end
local nl = tonumber(ARGV[3])
local indexes = {KEYS[3], KEYS[4]}
for i = 10, 9 + nl do indexes[#indexes + 1] = KEYS[i] end
for _, index in ipairs(indexes) do
  if redis.call('ZSCORE', index, vid) then
    members = members + 1
    if not dry then redis.call('ZREM', index, vid) end
  end
end
for i = 4, #ARGV do
  if redis.call('ZSCORE', KEYS[9], ARGV[i]) then
    local first, last = string.match(ARGV[i], '^([^|]+)|([^|]+)|')
    local found = redis.call('XRANGE', KEYS[8], first, last)
    spans = spans + 1
    entries = entries + #found
    if not dry then
      local ids = {}
      for _, entry in ipairs(found) do
        ids[#ids + 1] = entry[1]
        if #ids == XDEL_CHUNK then redis.call('XDEL', KEYS[8], unpack(ids)); ids = {} end
      end
      if #ids > 0 then redis.call('XDEL', KEYS[8], unpack(ids)) end
      redis.call('ZREM', KEYS[9], ARGV[i])
    end
  end
end
for i = 10 + nl, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    bridge = bridge + 1
    if not dry then redis.call('DEL', KEYS[i]) end
  end
end
if not dry then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[7], vid)
  redis.call('ZREM', KEYS[5], vid)
  redis.call('ZREM', KEYS[6], vid)
end
return {status, records, summaries, members, spans, entries, bridge}
""".replace("XDEL_CHUNK", str(XDEL_CHUNK))

# KEYS: detections stream, detections index; ARGV: dry, members... Returns the entries removed (or that would be).
_DROP_SPANS = """
local dry = ARGV[1] == '1'
local entries = 0
for i = 2, #ARGV do
  local first, last = string.match(ARGV[i], '^([^|]+)|([^|]+)|')
  local found = redis.call('XRANGE', KEYS[1], first, last)
  entries = entries + #found
  if not dry then
    local ids = {}
    for _, entry in ipairs(found) do
      ids[#ids + 1] = entry[1]
      if #ids == XDEL_CHUNK then redis.call('XDEL', KEYS[1], unpack(ids)); ids = {} end
    end
    if #ids > 0 then redis.call('XDEL', KEYS[1], unpack(ids)) end
    redis.call('ZREM', KEYS[2], ARGV[i])
  end
end
return entries
""".replace("XDEL_CHUNK", str(XDEL_CHUNK))


class VideoInFlight(ResultsError):
    """The video is not done or failed: its results are still being written."""


class NoSuchVideo(ResultsError):
    """No record of the video."""


@dataclass(frozen=True)
class Cutoffs:
    """Per kind, the recording time (epoch s) before which results go; None: kept."""

    detections: float | None = None
    summaries: float | None = None
    files: float | None = None

    @classmethod
    def from_config(cls, config: Config, now: float) -> Cutoffs:
        """``now`` minus each ``[retention]`` horizon (``files_days`` 0: the ``summaries_days`` one)."""
        retention = config.retention

        def cut(kind: str) -> float | None:
            horizon = retention.horizon_s(kind)
            return None if horizon is None else now - horizon

        return cls(cut("detections"), cut("summaries"), cut("files"))

    @classmethod
    def before(cls, ts: float) -> Cutoffs:
        """Everything recorded before ``ts`` (``vidwatch prune --before``)."""
        return cls(ts, ts, ts)

    def as_dict(self) -> dict[str, float | None]:
        return {"detections": self.detections, "summaries": self.summaries, "files": self.files}

    @property
    def any(self) -> bool:
        return any(v is not None for v in self.as_dict().values())


@dataclass
class PruneReport:
    """What a pass removed (or, with ``dry_run``, would remove), per kind."""

    dry_run: bool
    cutoffs: Cutoffs
    counts: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0  # old videos skipped because they are not done or failed
    more: bool = False  # the pass stopped at its limit: more is due

    def as_dict(self) -> dict[str, object]:
        return {"dry_run": self.dry_run, "cutoffs": self.cutoffs.as_dict(),
                "removed": {kind: self.counts.get(kind, 0) for kind in KINDS},
                "skipped_in_flight": self.in_flight, "more": self.more}

    def lines(self) -> list[str]:
        """One line per kind, for people."""
        verb = "would remove" if self.dry_run else "removed"
        names = {"videos": "video records", "summaries": "summary entries", "index_members": "index members",
                 "events": "event entries", "detections": "detection entries", "detection_spans":
                 "detection index members", "files": "files", "file_bytes": "bytes of files",
                 "bridge_keys": "bridge keys"}
        out = []
        for kind, cut in self.cutoffs.as_dict().items():
            when = "kept (no retention)" if cut is None else "recorded before " + time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(cut))
            out.append(f"{kind}: {when}")
        out += [f"{verb} {self.counts.get(kind, 0)} {names[kind]}" for kind in KINDS]
        if self.in_flight:
            out.append(f"skipped {self.in_flight} old video(s) still in flight")
        return out


def _merge(into: Counter[str], values: Iterable[tuple[str, int]]) -> None:
    for kind, value in values:
        into[kind] += value


class Retention:
    """Removes results by recording time (:meth:`run`) and one video on request (:meth:`delete_video`)."""

    def __init__(self, client: redis.Redis, keys: Keys, config: Config, *, batch: int = BATCH) -> None:
        self.client = client
        self.keys = keys
        self.config = config
        self.batch = batch
        self._delete = client.register_script(_DELETE_VIDEO)
        self._drop_spans = client.register_script(_DROP_SPANS)
        self._counted: set[str] = set()

    # ------------------------------------------------------------------ one video
    def delete_video(self, video_id: str, *, dry_run: bool = False, counted: set[str] | None = None) -> Counter[str]:
        """Remove one ended video's record, summary entry, index members, detections, bridge keys and files.

        Raises :class:`VideoInFlight` (nothing changed) when it is not done or failed, :class:`NoSuchVideo`
        when there is no record and nothing was indexed under its id. ``counted``: detections-index members
        a dry run counted already (left out here).
        """
        fields: dict[str, str] = self.client.hgetall(self.keys.video(video_id))  # type: ignore[assignment]
        camera = fields.get("camera", "")
        labels = [label for label in (fields.get("labels") or "").split(",") if label]
        segments = segment_count(fields.get("segments"))
        members = [m for m in self._spans_of(video_id, camera, fields) if m not in (counted or ())] if camera else []
        detections = camera or "default"
        keys = [
            self.keys.video(video_id), self.keys.summaries, self.keys.index_time, self.keys.index_camera(detections),
            self.keys.retention_videos, self.keys.retention_files, self.keys.inflight,
            self.keys.detections(detections), self.keys.index_detections(detections),
            *(self.keys.index_label(label) for label in labels),
            *self.keys.bridge(video_id, fields.get("run") or "1", segments),
        ]
        found = find_files(self.config, video_id, camera, segments) if fields else None
        status, records, summaries, index_members, spans, entries, bridge = (
            int(v) for v in self._delete(keys=keys, args=[video_id, "1" if dry_run else "0", len(labels), *members])
        )
        if status == 0:
            raise VideoInFlight(
                f"video {video_id}: still {fields.get('state')}: only a done or failed video is removed")
        if status < 0 and not index_members:
            raise NoSuchVideo(f"video {video_id}: no such video")
        counts: Counter[str] = Counter(videos=records, summaries=summaries, index_members=index_members,
                                       detection_spans=spans, detections=entries, bridge_keys=bridge)
        if found is not None and found.paths:
            counts.update(files=found.count, file_bytes=found.bytes)
            if not dry_run:
                remove_files(found)
        return counts

    def _spans_of(self, video_id: str, camera: str, fields: dict[str, str]) -> list[str]:
        """The video's members of its camera's detections index (every run), from its recording time."""
        try:
            start = float(fields["start_ts"])
        except (KeyError, ValueError):
            return []
        longest = float(cast(str, self.client.hget(self.keys.index_detections_span, camera)) or 0.0)
        try:
            duration = float(fields.get("probe_duration_s") or 0.0)
        except ValueError:
            duration = 0.0
        duration = duration or DAY_S
        rows = self.client.zrangebyscore(self.keys.index_detections(camera), repr(start - longest - 1.0),
                                         repr(start + duration + 1.0))
        return [str(m) for m in rows if (s := Span.parse(str(m), 0.0)) is not None and s.video_id == video_id]

    # ------------------------------------------------------------------ a pass
    def run(self, cutoffs: Cutoffs, *, dry_run: bool = False, limit: int | None = None) -> PruneReport:
        """Remove what is older than ``cutoffs``; ``limit``: at most this many videos (and spans per camera)
        in this pass (the daemon's bound; ``more`` says the next pass has work left)."""
        report = PruneReport(dry_run, cutoffs)
        self._counted = set()  # dry run: detections-index members counted by the detections step
        if cutoffs.detections is not None:
            self._detections(cutoffs.detections, report, limit)
        files_done: set[str] = set()
        if cutoffs.files is not None:
            self._files(cutoffs.files, report, limit, files_done)
        if cutoffs.summaries is not None:
            self._videos(cutoffs.summaries, report, limit, files_done)
        return report

    def _range(self, key: str, cut: float, offset: int, *, scores: bool = False) -> list[Any]:
        return cast(list[Any], self.client.zrangebyscore(key, "-inf", f"({cut!r}", start=offset, num=self.batch,
                                                         withscores=scores))

    def _detections(self, cut: float, report: PruneReport, limit: int | None) -> None:
        for camera in sorted(str(c) for c in self.client.hkeys(self.keys.index_detections_span)):
            index, stream = self.keys.index_detections(camera), self.keys.detections(camera)
            counted: list[tuple[tuple[int, int], tuple[int, int]]] = []
            offset = done = 0
            while limit is None or done < limit:
                rows = self._range(index, cut, offset, scores=True)
                if not rows:
                    break
                spans = [s for m, score in rows if (s := Span.parse(str(m), float(score))) is not None]
                old = [s for s in spans if s.last_ts < cut]  # a span that reaches past the cutoff waits
                offset += len(rows) if report.dry_run else len(rows) - len(old)
                if old:
                    args = ["1" if report.dry_run else "0", *(s.member for s in old)]
                    report.counts["detections"] += int(self._drop_spans(keys=[stream, index], args=args))
                    report.counts["detection_spans"] += len(old)
                    counted += [(entry_id_tuple(s.first_id), entry_id_tuple(s.last_id)) for s in old]
                    if report.dry_run:
                        self._counted.update(s.member for s in old)
                    done += len(old)
                if len(rows) < self.batch:
                    break
            else:
                report.more = True
            report.counts["detections"] += self._trim(stream, cut, report.dry_run, counted)

    def _trim(self, stream: str, cut: float, dry_run: bool, counted: list[tuple[tuple[int, int], tuple[int, int]]],
              skip_ids: set[str] | None = None) -> int:
        """``XTRIM MINID``: entries *written* before ``cut`` (so recorded before it too); the count when dry."""
        min_id = f"{math.floor(cut * 1000)}-0"
        if not dry_run:
            return int(self.client.xtrim(stream, minid=min_id, approximate=False))
        counted.sort()
        starts = [first for first, _ in counted]
        total, low = 0, "-"
        while True:
            entries = cast(list[tuple[str, Any]], self.client.xrange(stream, min=low, max=f"({min_id}",
                                                                     count=XDEL_CHUNK))
            for entry_id, _ in entries:
                key = entry_id_tuple(str(entry_id))
                at = bisect.bisect_right(starts, key) - 1
                inside = at >= 0 and counted[at][0] <= key <= counted[at][1]
                if not inside and not (skip_ids and str(entry_id) in skip_ids):
                    total += 1
            if len(entries) < XDEL_CHUNK:
                return total
            low = f"({entries[-1][0]}"

    def _files(self, cut: float, report: PruneReport, limit: int | None, done_ids: set[str]) -> None:
        offset = 0
        while limit is None or len(done_ids) < limit:
            ids = [str(v) for v in self._range(self.keys.retention_files, cut, offset)]
            if not ids:
                return
            pipe = self.client.pipeline(transaction=False)
            for video_id in ids:
                pipe.hmget(self.keys.video(video_id), ("camera", "segments", "state"))
            handled = []
            for video_id, (camera, segments, state) in zip(ids, pipe.execute(), strict=True):
                if state not in (None, "done", "failed"):
                    report.in_flight += 1  # analysed again (submit --force): its files are being replaced
                    continue
                found = find_files(self.config, video_id, camera or "", segment_count(segments))
                report.counts.update(files=found.count, file_bytes=found.bytes)
                done_ids.add(video_id)
                handled.append(video_id)
                if not report.dry_run:
                    remove_files(found)
            if report.dry_run or not handled:
                offset += len(ids)
            else:
                self.client.zrem(self.keys.retention_files, *handled)
                offset += len(ids) - len(handled)
        report.more = True

    def _videos(self, cut: float, report: PruneReport, limit: int | None, files_done: set[str]) -> None:
        met: dict[str, str] = {}  # dry run: video id -> summary id counted here (not again by the trim)
        handled = 0
        for zset in (self.keys.retention_videos, self.keys.index_time):  # index_time: ended before retention existed
            offset = 0
            while True:
                if limit is not None and handled >= limit:
                    report.more = True
                    return
                ids = [str(v) for v in self._range(zset, cut, offset)]
                if not ids:
                    break
                for video_id in ids:
                    handled += 1
                    offset += self._remove(zset, video_id, report, files_done, met)
                if len(ids) < self.batch:
                    break
        for stream, kind in ((self.keys.summaries, "summaries"), (self.keys.events, "events")):
            report.counts[kind] += self._trim(stream, cut, report.dry_run, [],
                                              skip_ids=set(met.values()) if kind == "summaries" else None)

    def _remove(self, zset: str, video_id: str, report: PruneReport, files_done: set[str], met: dict[str, str]) -> int:
        """One old video of a retention pass; returns how far the range's offset moves (members left in place)."""
        if report.dry_run:
            if video_id in met:
                return 1  # met in both sets
            met[video_id] = str(self.client.hget(self.keys.video(video_id), "summary_id") or "")
        try:
            counts = self.delete_video(video_id, dry_run=report.dry_run, counted=self._counted)
        except VideoInFlight:
            report.in_flight += 1
            return 1
        except NoSuchVideo:
            if report.dry_run:
                return 1
            self.client.zrem(zset, video_id)  # a stray member: not counted
            return 0
        if video_id in files_done:
            counts.pop("files", None)
            counts.pop("file_bytes", None)
        report.counts.update(counts)
        return 1 if report.dry_run else 0
