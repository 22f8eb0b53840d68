"""Retention: results older than ``[retention]`` allows, by **recording** time, removed in bounded steps.

Stream entry ids are write times; retention is by recording time, and for a backlog of old
recordings the two differ (a file recorded a month ago and analysed today has today's ids).
So every kind is removed through an index scored by recording time, and the streams are also
trimmed by write time as a backstop:

- detections (``detections_days``): through ``index:detections:<camera>``, each segment member
  recorded before the cutoff, its entries (``XDEL`` of ``XRANGE first last``) and the member;
  then ``XTRIM detections:<camera> MINID <cutoff>``;
- records, summaries, index members, objects, events (``summaries_days``): through ``retention:videos``
  (every ended video by recording start; ``index:time`` too, for videos that ended before it
  existed), :meth:`Retention.delete_video`; then ``XTRIM summaries``, ``events`` and ``objects`` ``MINID``;
- files (``files_days``, at most ``summaries_days``): through ``retention:files``, the video's
  thumbnails, crops, timeline, clip and sidecar (:mod:`vidwatch.results.files`).

The write-time trims are safe because an entry written before the cutoff was recorded before
it; they catch what no index points at any more (a replaced run's detections and summary, the
lifecycle events). Each step reads a bounded range (``ZRANGEBYSCORE … LIMIT``, ``XRANGE first
last``), never a whole key. Videos in flight are never removed; a video's record is removed
with its summary entry, its index members, its detections, its bridge keys and its files: one
script per hash slot of the cluster layout (the camera's: detections and segment markers; then the
control slot's: the rest, the record last), the files right after. Each step removes what is
there, so a retry after a failure in between finishes the job.

A video's objects (issue 17: the entries its ``video-objects:<id>`` hash lists, their
``index:objects:*`` members and the hash) go with it in :data:`_DELETE_VIDEO`; their crops are
in its ``crops/<id>/`` folder (:mod:`vidwatch.results.files`). A replaced run's objects, indexed
by nothing, go by write time (``XTRIM objects MINID``).

The ``ledger:paths`` hint of a removed video's source goes with it when the source is gone from
its (present, non-empty) root (:func:`source_gone`): nothing can find that file again. While the
source is there the hint is kept: it keeps the daemon's rescans from analysing the file again.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
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
from vidwatch.results.objects import ObjectKeys
from vidwatch.results.trim import entry_id_tuple

logger = logging.getLogger(__name__)

BATCH = 500
XDEL_CHUNK = 1000
KINDS = ("videos", "summaries", "index_members", "events", "detections", "detection_spans", "objects", "files",
         "file_bytes", "bridge_keys", "path_hints")
DAY_S = 86400.0

# Lua shared by the scripts that remove detections: one index member's span of stream entries
# (``first_id|last_id|…``), deleted in chunks with its member unless ``dry``; returns how many entries.
_DROP_SPAN_LUA = """
local function drop_span(stream, index, member, dry)
  local first, last = string.match(member, '^([^|]+)|([^|]+)|')
  local found = redis.call('XRANGE', stream, first, last)
  if not dry then
    local ids = {}
    for _, entry in ipairs(found) do
      ids[#ids + 1] = entry[1]
      if #ids == XDEL_CHUNK then redis.call('XDEL', stream, unpack(ids)); ids = {} end
    end
    if #ids > 0 then redis.call('XDEL', stream, unpack(ids)) end
    redis.call('ZREM', index, member)
  end
  return #found
end
""".replace("XDEL_CHUNK", str(XDEL_CHUNK))

# Two scripts per video, one per hash slot of the cluster layout (one Redis runs both the same way): the
# camera's first (:data:`_DELETE_VIDEO_CAMERA`: its detections and segment markers), then the control slot's
# (:data:`_DELETE_VIDEO`: the record and the rest). The record goes last, so a removal that stops between the
# two is finished by the next try (the camera step finds what is left, or nothing).
#
# KEYS: detections stream, detections index, segment markers (the rest)
# ARGV: dry ('1': count only), span members of this video...
# Returns {spans, entries, markers}.
_DELETE_VIDEO_CAMERA = _DROP_SPAN_LUA + """
local dry = ARGV[1] == '1'
local spans, entries, markers = 0, 0, 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    spans = spans + 1
    entries = entries + drop_span(KEYS[1], KEYS[2], ARGV[i], dry)
  end
end
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    markers = markers + 1
    if not dry then redis.call('DEL', KEYS[i]) end
  end
end
return {spans, entries, markers}
""".replace("XDEL_CHUNK", str(XDEL_CHUNK))

# KEYS: video, summaries, index time, index camera, retention videos, retention files, inflight, video-objects hash,
#       objects stream, objects time index, objects camera index, ledger paths, label indexes (ARGV[3] of them),
#       objects label indexes (ARGV[4] of them), bridge keys of the control slot (the rest)
# ARGV: video_id, dry ('1': count only), n labels, n objects labels, source path whose hint goes ('': kept)
# Returns {status, records, summaries, index members, bridge keys, objects, path hints}; status 1 removed (or would
# be), 0 in flight (nothing changed), -1 no record (its stray index members and objects removed).
_DELETE_VIDEO = """
local vid = ARGV[1]
local dry = ARGV[2] == '1'
local state = redis.call('HGET', KEYS[1], 'state')
if state and state ~= 'done' and state ~= 'failed' then return {0, 0, 0, 0, 0, 0, 0} end
local status, records, summaries, members, bridge, objects, hints = 1, 0, 0, 0, 0, 0, 0
if state then records = 1 else status = -1 end
local sid = redis.call('HGET', KEYS[1], 'summary_id')
if sid and sid ~= '' and #redis.call('XRANGE', KEYS[2], sid, sid) > 0 then
  summaries = 1
  if not dry then redis.call('XDEL', KEYS[2], sid) end
end
local nl, nol = tonumber(ARGV[3]), tonumber(ARGV[4])
local indexes = {KEYS[3], KEYS[4]}
for i = 13, 12 + nl do indexes[#indexes + 1] = KEYS[i] end
for _, index in ipairs(indexes) do
  if redis.call('ZSCORE', index, vid) then
    members = members + 1
    if not dry then redis.call('ZREM', index, vid) end
  end
end
local object_indexes = {KEYS[10], KEYS[11]}
for i = 13 + nl, 12 + nl + nol do object_indexes[#object_indexes + 1] = KEYS[i] end
local object_ids = {}
for _, id in ipairs(redis.call('HKEYS', KEYS[8])) do
  if id ~= 'run' then object_ids[#object_ids + 1] = id end
end
objects = #object_ids
if not dry then
  for i = 1, #object_ids, XDEL_CHUNK do
    local chunk = {unpack(object_ids, i, math.min(i + XDEL_CHUNK - 1, #object_ids))}
    for _, index in ipairs(object_indexes) do redis.call('ZREM', index, unpack(chunk)) end
    redis.call('XDEL', KEYS[9], unpack(chunk))
  end
  redis.call('DEL', KEYS[8])
end
for i = 13 + nl + nol, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    bridge = bridge + 1
    if not dry then redis.call('DEL', KEYS[i]) end
  end
end
if ARGV[5] ~= '' then
  local hint = redis.call('HGET', KEYS[12], ARGV[5])
  if hint and string.match(hint, '^[^:]*:[^:]*:(.*)$') == vid then
    hints = 1
    if not dry then redis.call('HDEL', KEYS[12], ARGV[5]) end
  end
end
if not dry then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[7], vid)
  redis.call('ZREM', KEYS[5], vid)
  redis.call('ZREM', KEYS[6], vid)
end
return {status, records, summaries, members, bridge, objects, hints}
""".replace("XDEL_CHUNK", str(XDEL_CHUNK))

# KEYS: detections stream, detections index; ARGV: dry, members... Returns the entries removed (or that would be).
_DROP_SPANS = _DROP_SPAN_LUA + """
local dry = ARGV[1] == '1'
local entries = 0
for i = 2, #ARGV do
  entries = entries + drop_span(KEYS[1], KEYS[2], ARGV[i], dry)
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
                 "bridge_keys": "bridge keys", "objects": "object entries", "path_hints":
                 "path hints of sources gone from their root"}
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


def source_gone(path: str, root: str) -> bool:
    """True when the source ``path`` no longer exists while its watched ``root`` is there: the storage's own
    retention deleted it, so nothing will find it again and its ``ledger:paths`` hint can go.

    A root that is missing or empty (a share not mounted) says nothing: the hint is kept.

    >>> source_gone("/nonexistent/cam1/a.mp4", "/nonexistent"), source_gone("", "/")
    (False, False)
    """
    if not path or not root:
        return False
    try:
        with os.scandir(root) as entries:
            if next(entries, None) is None:
                return False
        return not os.path.lexists(path)
    except OSError:
        return False


class Retention:
    """Removes results by recording time (:meth:`run`) and one video on request (:meth:`delete_video`)."""

    def __init__(self, client: redis.Redis, keys: Keys, config: Config, *, batch: int = BATCH) -> None:
        self.client = client
        self.keys = keys
        self.config = config
        self.batch = batch
        self._delete = client.register_script(_DELETE_VIDEO)
        self._delete_camera = client.register_script(_DELETE_VIDEO_CAMERA)
        self._drop_spans = client.register_script(_DROP_SPANS)
        self._counted: set[str] = set()
        self._counted_objects: set[str] = set()

    # ------------------------------------------------------------------ one video
    def delete_video(self, video_id: str, *, dry_run: bool = False, counted: set[str] | None = None) -> Counter[str]:
        """Remove one ended video's record, summary entry, index members, detections, objects, bridge keys, files,
        and the path hint of a source that is gone from its root.

        Raises :class:`VideoInFlight` (nothing changed) when it is not done or failed, :class:`NoSuchVideo`
        when there is no record and nothing was indexed under its id. ``counted``: detections-index members
        a dry run counted already (left out here).

        Two scripts (see :data:`_DELETE_VIDEO_CAMERA`): a video sent back in flight (``submit --force``) between
        the read of its record and the second one keeps its record and the rest, but may have lost its earlier
        runs' detections and segment markers already (the new run writes its own).
        """
        fields: dict[str, str] = self.client.hgetall(self.keys.video(video_id))  # type: ignore[assignment]
        if fields.get("state") not in (None, "done", "failed"):
            raise VideoInFlight(
                f"video {video_id}: still {fields.get('state')}: only a done or failed video is removed")
        camera = fields.get("camera", "")
        labels = [label for label in (fields.get("labels") or "").split(",") if label]
        held = cast(dict[str, str], self.client.hgetall(ObjectKeys.of(self.keys).video(video_id)))
        object_labels = sorted({label for key, label in held.items() if key != "run"})
        segments = segment_count(fields.get("segments"))
        members = [m for m in self._spans_of(video_id, camera, fields) if m not in (counted or ())] if camera else []
        gone = fields.get("path", "") if source_gone(fields.get("path", ""), fields.get("root", "")) else ""
        found = find_files(self.config, video_id, camera, segments) if fields else None
        dry = "1" if dry_run else "0"
        slot_camera = camera or "default"
        spans, entries, markers = (int(v) for v in self._delete_camera(
            keys=[self.keys.detections(slot_camera), self.keys.index_detections(slot_camera),
                  *self.keys.bridge_markers(video_id, segments, slot_camera)],
            args=[dry, *members]))
        status, records, summaries, index_members, bridge, objects, hints = (
            int(v) for v in self._delete(
                keys=self._video_keys(video_id, fields, labels, object_labels, segments),
                args=[video_id, dry, len(labels), len(object_labels), gone])
        )
        if status == 0:  # in flight again since the read (submit --force): its record stays
            raise VideoInFlight(
                f"video {video_id}: in flight again: only a done or failed video is removed")
        if status < 0 and not index_members and not objects:
            raise NoSuchVideo(f"video {video_id}: no such video")
        counts: Counter[str] = Counter(videos=records, summaries=summaries, index_members=index_members,
                                       detection_spans=spans, detections=entries, bridge_keys=bridge + markers,
                                       objects=objects, path_hints=hints)
        if found is not None and found.paths:
            counts.update(files=found.count, file_bytes=found.bytes)
            if not dry_run:
                remove_files(found)
        return counts

    def _video_keys(self, video_id: str, fields: dict[str, str], labels: list[str], object_labels: list[str],
                    segments: int) -> list[str]:
        """The KEYS of :data:`_DELETE_VIDEO` for one video (all in the control slot)."""
        camera = fields.get("camera") or "default"
        objects = ObjectKeys.of(self.keys)
        return [
            self.keys.video(video_id), self.keys.summaries, self.keys.index_time, self.keys.index_camera(camera),
            self.keys.retention_videos, self.keys.retention_files, self.keys.inflight,
            objects.video(video_id), objects.stream, objects.time, objects.camera(camera), self.keys.paths,
            *(self.keys.index_label(label) for label in labels),
            *(objects.label(label) for label in object_labels),
            *self.keys.bridge_control(video_id, fields.get("run") or "1", segments),
        ]

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
        self._counted_objects = set()  # dry run: objects entries counted with their video
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
        skip = {"summaries": set(met.values()), "objects": self._counted_objects}
        for stream, kind in ((self.keys.summaries, "summaries"), (self.keys.events, "events"),
                             (ObjectKeys.of(self.keys).stream, "objects")):
            report.counts[kind] += self._trim(stream, cut, report.dry_run, [], skip_ids=skip.get(kind))

    def _remove(self, zset: str, video_id: str, report: PruneReport, files_done: set[str], met: dict[str, str]) -> int:
        """One old video of a retention pass; returns how far the range's offset moves (members left in place)."""
        if report.dry_run:
            if video_id in met:
                return 1  # met in both sets
            met[video_id] = str(self.client.hget(self.keys.video(video_id), "summary_id") or "")
            self._counted_objects.update(str(k) for k in self.client.hkeys(ObjectKeys.of(self.keys).video(video_id))
                                         if k != "run")
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
