"""Summary arithmetic (per-label track statistics and activity segments, streamed per frame) and
the :class:`Summary` type the summary task writes."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vidwatch.detection import Detection
from vidwatch.results.partials import LabelTracks, SegmentPartial


@dataclass
class LabelStats:
    """One label's statistics, accumulated frame by frame (or segment by segment, in :func:`merge_labels`)."""

    tracks: set[int] = field(default_factory=set)
    max_simultaneous: int = 0
    first_pts: float | None = None
    last_pts: float | None = None

    def summary(self) -> LabelSummary:
        """The summary's statistics for this label (track count, times rounded to ms)."""
        return LabelSummary(len(self.tracks), self.max_simultaneous, _round(self.first_pts), _round(self.last_pts))

    def segment(self) -> LabelTracks:
        """What a segment's partial keeps of this label (the track ids themselves, for the merge)."""
        return LabelTracks(tuple(sorted(self.tracks)), self.max_simultaneous, self.first_pts, self.last_pts)

    def absorb(self, part: LabelTracks, track_map: Mapping[int, int]) -> None:
        """Add one segment's statistics, its track ids mapped to the video's (joined) ids."""
        self.tracks.update(track_map.get(int(t), int(t)) for t in part.tracks)
        self.max_simultaneous = max(self.max_simultaneous, part.max_simultaneous)
        if part.first_pts is not None:
            self.first_pts = part.first_pts if self.first_pts is None else min(self.first_pts, part.first_pts)
            if part.last_pts is not None:
                self.last_pts = part.last_pts if self.last_pts is None else max(self.last_pts, part.last_pts)


def merge_labels(parts: Sequence[SegmentPartial], track_map: Mapping[int, int]) -> dict[str, LabelSummary]:
    """Per label (sorted), the statistics of the whole video from its segments' partials.

    >>> a = SegmentPartial(0.0, 5.0, 10, labels={"car": LabelTracks((1,), 1, 1.0, 4.0)})
    >>> b = SegmentPartial(5.0, 9.0, 8, labels={"car": LabelTracks((1000001, 1000002), 2, 5.0, 8.12345)})
    >>> merge_labels([a, b], {1000001: 1})["car"]
    LabelSummary(tracks=2, max_simultaneous=2, first_pts=1.0, last_pts=8.123)
    """
    stats: dict[str, LabelStats] = {}
    for part in parts:
        for label, tracks in part.labels.items():
            stats.setdefault(label, LabelStats()).absorb(tracks, track_map)
    return {label: label_stats.summary() for label, label_stats in sorted(stats.items())}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def merge_activity(
    active_pts: list[float], frame_s: float, *, min_gap_s: float, min_activity_s: float
) -> list[tuple[float, float]]:
    """Segments ``[start, end)`` covering the active frames (each lasting ``frame_s``).

    Gaps shorter than ``min_gap_s`` are bridged; segments shorter than ``min_activity_s`` dropped.

    >>> merge_activity([2.0, 2.2, 2.4, 5.0], 0.2, min_gap_s=1.0, min_activity_s=0.0)
    [(2.0, 2.6), (5.0, 5.2)]
    >>> merge_activity([2.0, 2.2, 2.8], 0.2, min_gap_s=1.0, min_activity_s=0.0)
    [(2.0, 3.0)]
    """
    segments: list[list[float]] = []
    for pts in sorted(active_pts):
        if segments and pts - segments[-1][1] < min_gap_s - 1e-9:
            segments[-1][1] = max(segments[-1][1], pts + frame_s)
        else:
            segments.append([pts, pts + frame_s])
    return [(round(s, 3), round(e, 3)) for s, e in segments if e - s >= min_activity_s]


class SummaryBuilder:
    """Accumulates one segment's per-frame detections: frames, active times, per-label statistics.

    The merge (:func:`merge_activity`, :func:`merge_labels`) turns the segments' partials into the summary.
    """

    def __init__(self) -> None:
        self.frames = 0
        self.labels: dict[str, LabelStats] = {}
        self._active_pts: list[float] = []

    def add(self, pts: float, detections: list[Detection]) -> None:
        self.frames += 1
        if not detections:
            return
        self._active_pts.append(pts)
        per_label = Counter(d.label for d in detections)
        for det in detections:
            stats = self.labels.setdefault(det.label, LabelStats())
            if det.track is not None:
                stats.tracks.add(det.track)
            if stats.first_pts is None:
                stats.first_pts = pts
            stats.last_pts = pts
        for label, count in per_label.items():
            stats = self.labels[label]
            stats.max_simultaneous = max(stats.max_simultaneous, count)

    @property
    def active_pts(self) -> list[float]:
        """Times of the frames with any detection."""
        return list(self._active_pts)


@dataclass(frozen=True)
class LabelSummary:
    """One label over a whole video: tracks counted, most at once, first and last pts (s)."""

    tracks: int
    max_simultaneous: int
    first_pts: float | None
    last_pts: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"tracks": self.tracks, "max_simultaneous": self.max_simultaneous, "first_pts": self.first_pts,
                "last_pts": self.last_pts}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSummary:
        return cls(int(data.get("tracks") or 0), int(data.get("max_simultaneous") or 0), data.get("first_pts"),
                   data.get("last_pts"))


# the summary fields stored as JSON text in the stream entry
SUMMARY_JSON_FIELDS = ("labels", "activity", "thumbnails", "processing", "analysis", "analyzers", "tracks")


@dataclass(frozen=True)
class Summary:
    """One video's summary: what the summary task writes to ``<prefix>:summaries``.

    ``to_fields()`` is the mapping handed to :meth:`ResultWriter.write_summary` (in the
    stream's field order); :meth:`from_fields` reads a stream entry back, raw (JSON text)
    or decoded (as :func:`vidwatch.results.query.summary_of` returns it). ``extra`` holds the
    fields the writer stamps (``schema``, ``run``, ``analysis_version``, ``analysis``, ...).

    >>> s = Summary("abc", "/nvr/a.mp4", "cam1", 6.0, 30, {"person": LabelSummary(1, 1, 0.5, 2.0)},
    ...             ((0.5, 2.2),), ("/t/abc.jpg",), {"wall_s": 1.0, "fps": 30.0})
    >>> s.to_fields()["duration"], s.to_fields()["activity"]
    ('6.000', [[0.5, 2.2]])
    >>> Summary.from_fields({k: v if isinstance(v, str) else json.dumps(v) for k, v in s.to_fields().items()}) == s
    True
    """

    video_id: str
    path: str
    camera: str
    duration_s: float
    frames_analyzed: int
    labels: Mapping[str, LabelSummary] = field(default_factory=dict)
    activity: tuple[tuple[float, float], ...] = ()
    thumbnails: tuple[str, ...] = ()
    processing: Mapping[str, Any] = field(default_factory=dict)
    analyzers: Mapping[str, Any] | None = None
    tracks: Mapping[str, Mapping[str, Any]] | None = None  # joined track id -> its best crop entry
    timeline: str | None = None  # path of the timeline image
    condensed_clip: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def label_first_pts(self) -> dict[str, float]:
        """Each label's first pts (labels never seen left out): what the label index is scored by."""
        return {label: s.first_pts for label, s in self.labels.items() if s.first_pts is not None}

    def to_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "video_id": self.video_id,
            "path": self.path,
            "camera": self.camera,
            "duration": f"{self.duration_s:.3f}",
            "frames_analyzed": str(self.frames_analyzed),
            "labels": {label: stats.to_dict() for label, stats in self.labels.items()},
            "activity": [list(seg) for seg in self.activity],
            "thumbnails": list(self.thumbnails),
            "processing": dict(self.processing),
        }
        if self.analyzers:
            out["analyzers"] = dict(self.analyzers)
        if self.tracks is not None:
            out["tracks"] = {t: dict(entry) for t, entry in self.tracks.items()}
        if self.timeline is not None:
            out["timeline"] = self.timeline
        if self.condensed_clip is not None:
            out["condensed_clip"] = self.condensed_clip
        out.update(self.extra)
        return out

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> Summary:
        data = {key: _decoded(key, value) for key, value in fields.items()}
        known = {"video_id", "path", "camera", "duration", "frames_analyzed", "labels", "activity", "thumbnails",
                 "processing", "analyzers", "tracks", "timeline", "condensed_clip"}
        return cls(
            video_id=str(data.get("video_id", "")),
            path=str(data.get("path", "")),
            camera=str(data.get("camera", "")),
            duration_s=float(data.get("duration") or 0.0),
            frames_analyzed=int(data.get("frames_analyzed") or 0),
            labels={label: LabelSummary.from_dict(s) for label, s in (data.get("labels") or {}).items()},
            activity=tuple((float(a), float(b)) for a, b in (data.get("activity") or ())),
            thumbnails=tuple(str(t) for t in data.get("thumbnails") or ()),
            processing=dict(data.get("processing") or {}),
            analyzers=data.get("analyzers"),
            tracks=data.get("tracks"),
            timeline=data.get("timeline"),
            condensed_clip=data.get("condensed_clip"),
            extra={key: value for key, value in data.items() if key not in known},
        )


def _decoded(key: str, value: Any) -> Any:
    if key in SUMMARY_JSON_FIELDS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
