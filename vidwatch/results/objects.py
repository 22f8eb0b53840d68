"""Objects: each track of a thing (person, car, …) in a video, as one entry people search for.

A video's summary counts tracks per label; an *object* is one of those tracks with what a
person wants to see of it: when it was there (recording time), its best crop, its detector
score and box at that crop's frame. Motion is no object (it marks activity and gates the
engine): labels in :data:`NOT_OBJECTS` are left out.

Written once per video and run by :meth:`ObjectWriter.write` (one Lua script: the stream
entries, the indexes and the per-video member list change together, and a second call for
the same run writes nothing), read by :func:`find_objects` (the indexes, newest first, with a
stable cursor) and :func:`objects_of` (one video's).

Keys (see ``docs/streams.md``):

- ``<prefix>:objects`` stream: one entry per object (:meth:`ObjectEntry.to_redis`);
- ``<prefix>:index:objects:time``, ``…:camera:<camera>``, ``…:label:<label>`` sorted sets: the
  object's entry id scored by its recording-time start (epoch s);
- ``<prefix>:video-objects:<video_id>`` hash: entry id → label of the video's objects, and
  ``run``, the run they belong to (the idempotency marker).

>>> entry = ObjectEntry("3f2a", 12, "cam1", "person", 1700000002.0, 1700000004.5, 2.0, 4.5,
...                     crop="/s/crops/3f2a/track-12.jpg", score=0.91, box=(10.0, 20.0, 50.0, 120.0), best_pts=3.1)
>>> ObjectEntry.from_redis(entry.to_redis(), entry_id="1-0") == replace(entry, entry_id="1-0")
True
>>> entry.duration_s
2.5
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import redis

from vidwatch.results.keys import Keys
from vidwatch.results.paging import decode_cursor, page_index
from vidwatch.results.partials import SegmentPartial
from vidwatch.results.summary import Summary

OBJECT_SCHEMA = "1"
NOT_OBJECTS = frozenset({"motion"})  # labels that name no thing: activity and the motion gate only
MAX_LIMIT = 1000
DEFAULT_OBJECTS_MAXLEN = 1_000_000
TRACK_ID_STRIDE = 1_000_000  # a segment k's tracks are numbered from k * stride + 1 (tasks.join)

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class ObjectKeys:
    """The objects' key names, in the layout of ``keys`` (:class:`Keys`: the ``{prefix}`` slot in cluster mode,
    so every objects script touches one slot).

    >>> ObjectKeys.of(Keys("vidwatch")).label("person"), ObjectKeys.of(Keys("vw", cluster=True)).stream
    ('vidwatch:index:objects:label:person', '{vw}:objects')
    """

    keys: Keys = field(default_factory=Keys)

    @classmethod
    def of(cls, keys: Keys) -> ObjectKeys:
        return cls(keys)

    @property
    def stream(self) -> str:
        return self.keys.objects

    @property
    def time(self) -> str:
        return self.keys.index_objects_time

    def camera(self, camera: str) -> str:
        return self.keys.index_objects_camera(camera)

    def label(self, label: str) -> str:
        return self.keys.index_objects_label(label)

    def video(self, video_id: str) -> str:
        """hash: entry id → label of the video's objects, and ``run`` (the run they come from)."""
        return self.keys.video_objects(video_id)


@dataclass(frozen=True)
class ObjectEntry:
    """One object: a track of a label that names a thing, in one video (one run of it).

    Times: ``start_ts``/``end_ts`` are recording time (epoch s: recording start + pts),
    ``start_pts``/``end_pts``/``best_pts`` seconds from the start of the video. ``crop`` is the
    best crop's JPEG path (None: the track had no crop, e.g. a box too small), ``score`` the
    detector's confidence at that frame, ``box`` ``[x1, y1, x2, y2]`` there (source pixels),
    ``quality`` the crop's quality (``docs/summaries.md``), ``segment`` the analysis segment
    the track started in, ``attributes`` what crop stages added (``dominant_colour``, …).
    """

    video_id: str
    track: int
    camera: str
    label: str
    start_ts: float
    end_ts: float
    start_pts: float
    end_pts: float
    crop: str | None = None
    score: float | None = None
    box: Box | None = None
    best_pts: float | None = None
    quality: float | None = None
    segment: int = 0
    run: int = 1
    attributes: Mapping[str, Any] = field(default_factory=dict)
    entry_id: str | None = None  # the stream entry's id, once written
    schema: str = OBJECT_SCHEMA

    @property
    def duration_s(self) -> float:
        return round(self.end_pts - self.start_pts, 3)

    @property
    def object_id(self) -> str:
        """``<video_id>:<track>``: the same object in every run."""
        return f"{self.video_id}:{self.track}"

    def to_redis(self) -> dict[str, str]:
        """The stream entry's fields (strings; JSON for ``box`` and ``attributes``; absent values left out)."""
        out = {
            "schema": self.schema,
            "video_id": self.video_id,
            "run": str(self.run),
            "track": str(self.track),
            "segment": str(self.segment),
            "camera": self.camera,
            "label": self.label,
            "start_ts": f"{self.start_ts:.3f}",
            "end_ts": f"{self.end_ts:.3f}",
            "start_pts": f"{self.start_pts:.3f}",
            "end_pts": f"{self.end_pts:.3f}",
        }
        if self.crop:
            out["crop"] = self.crop
        if self.score is not None:
            out["score"] = f"{self.score:.4f}"
        if self.box is not None:
            out["box"] = json.dumps([round(v, 1) for v in self.box])
        if self.best_pts is not None:
            out["best_pts"] = f"{self.best_pts:.3f}"
        if self.quality is not None:
            out["quality"] = f"{self.quality:.2f}"
        if self.attributes:
            out["attributes"] = json.dumps(dict(self.attributes), sort_keys=True)
        return out

    @classmethod
    def from_redis(cls, fields: Mapping[str, str], *, entry_id: str | None = None) -> ObjectEntry:
        """An entry of the objects stream (fields added by later versions are ignored)."""
        box = json.loads(fields["box"]) if fields.get("box") else None
        return cls(
            video_id=fields["video_id"],
            track=int(fields["track"]),
            camera=fields.get("camera", ""),
            label=fields.get("label", ""),
            start_ts=float(fields["start_ts"]),
            end_ts=float(fields["end_ts"]),
            start_pts=float(fields.get("start_pts") or 0.0),
            end_pts=float(fields.get("end_pts") or 0.0),
            crop=fields.get("crop") or None,
            score=_float(fields.get("score")),
            box=None if box is None else (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            best_pts=_float(fields.get("best_pts")),
            quality=_float(fields.get("quality")),
            segment=int(fields.get("segment") or 0),
            run=int(fields.get("run") or 1),
            attributes=json.loads(fields["attributes"]) if fields.get("attributes") else {},
            entry_id=entry_id,
            schema=fields.get("schema", OBJECT_SCHEMA),
        )

    def as_json(self) -> dict[str, Any]:
        """What the API and ``vidwatch query --objects`` give for an object."""
        return {
            "object_id": self.object_id,
            "entry_id": self.entry_id,
            "video_id": self.video_id,
            "track": self.track,
            "camera": self.camera,
            "label": self.label,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "start_pts": self.start_pts,
            "end_pts": self.end_pts,
            "crop": self.crop,
            "score": self.score,
            "box": None if self.box is None else list(self.box),
            "best_pts": self.best_pts,
            "quality": self.quality,
            "segment": self.segment,
            "run": self.run,
            "attributes": dict(self.attributes),
        }


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


# ---- building objects from what the summary task has --------------------------------------------------


def track_spans(parts: Iterable[SegmentPartial], track_map: Mapping[int, int]) -> dict[int, tuple[str, float, float]]:
    """Per joined track id: its label and first and last pts over every segment.

    >>> from types import SimpleNamespace as S
    >>> a = S(first={1: S(label="car", box=(0, 0, 1, 1), pts=1.0)}, last={1: S(label="car", box=(0, 0, 1, 1), pts=4.8)})
    >>> b = S(first={1000001: S(label="car", box=(0, 0, 1, 1), pts=5.0)},
    ...       last={1000001: S(label="car", box=(0, 0, 1, 1), pts=7.5)})
    >>> track_spans([a, b], {1000001: 1})
    {1: ('car', 1.0, 7.5)}
    """
    spans: dict[int, list[Any]] = {}
    for part in parts:
        for sightings in (part.first, part.last):
            for track, seen in sightings.items():
                joined = track_map.get(int(track), int(track))
                span = spans.setdefault(joined, [seen.label, seen.pts, seen.pts])
                span[1], span[2] = min(span[1], seen.pts), max(span[2], seen.pts)
    return {track: (label, start, end) for track, (label, start, end) in sorted(spans.items())}


_CROP_KEYS = ("path", "label", "pts", "score", "confidence", "box")


def build_objects(
    video_id: str,
    camera: str,
    start_ts: float,
    parts: Sequence[SegmentPartial],
    track_map: Mapping[int, int],
    crops: Mapping[Any, Mapping[str, Any]] | None,
    *,
    run: int = 1,
    not_objects: frozenset[str] = NOT_OBJECTS,
) -> list[ObjectEntry]:
    """The video's objects, by start: every joined track whose label names a thing.

    ``parts``: the segments' partials (their first/last sightings give each track's span);
    ``track_map``: segment-local → joined track id (``tasks.join.join_tracks``); ``crops``:
    joined track id (int or text) → best crop entry (the summary's ``tracks``, after the crop
    stages, whose fields become ``attributes``).

    >>> from types import SimpleNamespace as S
    >>> seen = lambda label, pts: S(label=label, box=(0.0, 0.0, 9.0, 9.0), pts=pts)
    >>> part = S(first={1: seen("person", 1.0), 2: seen("motion", 0.0)}, last={1: seen("person", 3.0)})
    >>> crop = {"path": "/c/track-1.jpg", "label": "person", "pts": 2.0, "score": 50.0, "confidence": 0.8,
    ...         "box": [1, 2, 3, 4], "dominant_colour": {"name": "red"}}
    >>> [(o.label, o.start_ts, o.end_ts, o.crop, o.score, o.attributes)
    ...  for o in build_objects("v", "cam1", 100.0, [part], {}, {"1": crop})]
    [('person', 101.0, 103.0, '/c/track-1.jpg', 0.8, {'dominant_colour': {'name': 'red'}})]
    """
    by_track = {int(track): entry for track, entry in (crops or {}).items()}
    out = []
    for track, (label, start_pts, end_pts) in track_spans(parts, track_map).items():
        if label in not_objects:
            continue
        crop = by_track.get(track) or {}
        box = crop.get("box")
        out.append(
            ObjectEntry(
                video_id=video_id,
                track=track,
                camera=camera,
                label=label,
                start_ts=round(start_ts + start_pts, 3),
                end_ts=round(start_ts + end_pts, 3),
                start_pts=round(start_pts, 3),
                end_pts=round(end_pts, 3),
                crop=str(crop["path"]) if crop.get("path") else None,
                score=_number(crop.get("confidence")),
                box=None if not box else (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                best_pts=_number(crop.get("pts")),
                quality=_number(crop.get("score")),
                segment=track // TRACK_ID_STRIDE,
                run=run,
                attributes={k: v for k, v in crop.items() if k not in _CROP_KEYS},
            )
        )
    return sorted(out, key=lambda o: (o.start_pts, o.track))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


# ---- writing ------------------------------------------------------------------------------------------

# KEYS: per-video objects hash, objects stream, time index, camera index, then the label indexes
#       (every label of the new objects and of the objects the hash lists now)
# ARGV: run, maxlen, n objects, n labels, the labels (in the order of their KEYS), then per object:
#       label, start_ts, n fields, fields...
# The per-video hash's ``run`` is the marker: the same run again writes nothing. A new run removes the
# earlier run's members from every index first (their stream entries stay: streams are append-only).
_WRITE = """
local marker = redis.call('HGET', KEYS[1], 'run')
if marker == ARGV[1] then return 0 end
local label_key = {}
local nl = tonumber(ARGV[4])
for k = 1, nl do label_key[ARGV[4 + k]] = KEYS[4 + k] end
local old = redis.call('HGETALL', KEYS[1])
for i = 1, #old, 2 do
  if old[i] ~= 'run' then
    redis.call('ZREM', KEYS[3], old[i])
    redis.call('ZREM', KEYS[4], old[i])
    local lk = label_key[old[i + 1]]
    if lk then redis.call('ZREM', lk, old[i]) end
  end
end
redis.call('DEL', KEYS[1])
local n = tonumber(ARGV[3])
local at = 5 + nl
for o = 1, n do
  local label, score, nf = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2])
  local fields = {}
  for i = at + 3, at + 2 + nf do fields[#fields + 1] = ARGV[i] end
  at = at + 3 + nf
  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
  redis.call('ZADD', KEYS[3], score, id)
  redis.call('ZADD', KEYS[4], score, id)
  redis.call('ZADD', label_key[label], score, id)
  redis.call('HSET', KEYS[1], id, label)
end
redis.call('HSET', KEYS[1], 'run', ARGV[1])
return 1
"""


class ObjectWriter:
    """Writes a video's objects once per run (see the module's docstring)."""

    def __init__(self, client: redis.Redis, keys: Keys, *, maxlen: int = DEFAULT_OBJECTS_MAXLEN) -> None:
        self.client = client
        self.keys = ObjectKeys.of(keys)
        self.maxlen = maxlen
        self._write = client.register_script(_WRITE)

    def write(self, video_id: str, camera: str, objects: Sequence[ObjectEntry], *, run: int = 1) -> bool:
        """Add the objects and index them; False when this run's objects were written before.

        A later run replaces the earlier run's objects in the indexes (``objects_of`` and
        ``find_objects`` see only the new ones).
        """
        if any(o.video_id != video_id or o.camera != camera for o in objects):
            raise ValueError(f"objects: expected every object of video {video_id} on camera {camera}")
        earlier = cast(dict[str, str], self.client.hgetall(self.keys.video(video_id)))
        if earlier.get("run") == str(run):
            return False
        labels = sorted({o.label for o in objects} | {label for key, label in earlier.items() if key != "run"})
        args: list[Any] = [str(run), self.maxlen, len(objects), len(labels), *labels]
        for entry in objects:
            fields = [item for pair in replace(entry, run=run).to_redis().items() for item in pair]
            args.extend((entry.label, f"{entry.start_ts:.3f}", len(fields), *fields))
        keys = [self.keys.video(video_id), self.keys.stream, self.keys.time, self.keys.camera(camera),
                *(self.keys.label(label) for label in labels)]
        return bool(self._write(keys=keys, args=args))


def write_summary_objects(
    client: redis.Redis,
    keys: Keys,
    summary: Summary,
    parts: Sequence[SegmentPartial],
    track_map: Mapping[int, int],
    start_ts: float,
    *,
    run: int,
    maxlen: int = DEFAULT_OBJECTS_MAXLEN,
) -> list[ObjectEntry]:
    """The summary task's one call: the video's objects from its summary (crops, after the crop stages) and
    its segments' partials, written once for this run. Call it before the summary is written: a summary
    task that dies between the two is redelivered, writes no object twice, and then the summary."""
    objects = build_objects(summary.video_id, summary.camera, start_ts, parts, track_map, summary.tracks, run=run)
    ObjectWriter(client, keys, maxlen=maxlen).write(summary.video_id, summary.camera, objects, run=run)
    return objects


# ---- reading ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectQuery:
    """Newest first by start (ties by entry id): ``since``/``until`` bound the object's start (inclusive).

    ``cursor``: the previous page's ``next_cursor`` (see :mod:`vidwatch.results.paging`).
    """

    camera: str | None = None
    label: str | None = None
    since: float | None = None
    until: float | None = None
    cursor: str | None = None
    limit: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit: expected 1..{MAX_LIMIT}, got {self.limit}")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        if self.cursor is not None:
            decode_cursor(self.cursor)


@dataclass(frozen=True)
class ObjectPage:
    objects: list[ObjectEntry]
    next_cursor: str | None  # None: this was the last page


def find_objects(client: redis.Redis, keys: Keys, query: ObjectQuery) -> ObjectPage:
    """One page of objects from the indexes (never a stream scan).

    Members whose entries were trimmed from the stream are removed from the index met on the way.
    """
    okeys = ObjectKeys.of(keys)
    if query.camera:
        primary, other = okeys.camera(query.camera), okeys.label(query.label) if query.label else None
    elif query.label:
        primary, other = okeys.label(query.label), None
    else:
        primary, other = okeys.time, None
    fetched: dict[str, ObjectEntry] = {}

    def alive(members: Sequence[str]) -> list[bool]:
        fetched.update(_entries(client, okeys.stream, members))
        return [member in fetched for member in members]

    page = page_index(client, primary, also_in=other, since=query.since, until=query.until, cursor=query.cursor,
                      limit=query.limit, alive=alive)
    return ObjectPage([fetched[member] for member, _ in page.items], page.next_cursor)


def _entries(client: redis.Redis, stream: str, ids: Sequence[str]) -> dict[str, ObjectEntry]:
    if not ids:
        return {}
    pipe = client.pipeline(transaction=False)
    for entry_id in ids:
        pipe.xrange(stream, min=entry_id, max=entry_id, count=1)
    out = {}
    for entry_id, result in zip(ids, pipe.execute(), strict=True):
        if result:
            out[entry_id] = ObjectEntry.from_redis(result[0][1], entry_id=str(result[0][0]))
    return out


def objects_of(client: redis.Redis, keys: Keys, video_id: str) -> list[ObjectEntry]:
    """The video's objects of its latest written run, by start (those still in the stream)."""
    okeys = ObjectKeys.of(keys)
    ids = [str(key) for key in client.hkeys(okeys.video(video_id)) if key != "run"]
    entries = _entries(client, okeys.stream, ids)
    return sorted(entries.values(), key=lambda o: (o.start_pts, o.track))


def object_of(client: redis.Redis, keys: Keys, video_id: str, track: int) -> ObjectEntry | None:
    """One object of a video by its track id; None when the video has no such object."""
    return next((o for o in objects_of(client, keys, video_id) if o.track == track), None)


# ---- keeping the indexes in step with the trimmed stream ---------------------------------------------

PRUNE_BATCH = 500


def prune_object_indexes(client: redis.Redis, keys: Keys, *, batch: int = PRUNE_BATCH) -> int:
    """Remove the objects-index members whose entries ``MAXLEN`` trimmed from the stream; returns how many.

    A member is an entry id and the stream is trimmed from its head, so a member is stale exactly when
    its id is below the stream's first entry id (retention removes a video's members with its entries,
    a new run its earlier run's): each index is read in ranges of ``batch`` members and compared,
    never an entry fetched. The camera and label indexes are found with ``SCAN … TYPE zset`` (``COUNT``
    ``batch``). Run it now and then (the daemon's hourly index pruner); queries drop the stale members
    they meet anyway.
    """
    okeys = ObjectKeys.of(keys)
    first = client.xrange(okeys.stream, count=1)
    floor = _id_tuple(str(first[0][0])) if first else None
    indexes = {okeys.time, *(str(k) for k in client.scan_iter(match=keys.index_objects_pattern(), count=batch,
                                                               _type="zset"))}
    removed = 0
    for index in sorted(indexes):
        offset = 0
        while True:
            members = [str(m) for m in client.zrange(index, offset, offset + batch - 1)]
            if not members:
                break
            stale = [m for m in members if floor is None or _id_tuple(m) < floor]
            if stale:
                client.zrem(index, *stale)
                removed += len(stale)
            offset += len(members) - len(stale)
    return removed


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
