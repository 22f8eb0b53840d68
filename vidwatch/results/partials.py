"""A segment's *partial*: what one segment task found, merged by the summary task.

Stored as JSON in the run's join hash (``join:<video_id>:<run>``, one field per segment) by
:meth:`vidwatch.results.writer.ResultWriter.write_segment`; read back with
:meth:`~vidwatch.results.writer.ResultWriter.segment_partials`. ``to_dict()`` is exactly the
JSON shape stored, so partials written before this type existed read the same.

>>> part = SegmentPartial(start=0.0, end=10.0, frames=50, active_pts=(1.0, 1.2),
...                       labels={"person": LabelTracks((1,), 1, 1.0, 1.2)},
...                       first={1: Sighting("person", (0.0, 0.0, 5.0, 9.0), 1.0)},
...                       last={1: Sighting("person", (1.0, 0.0, 6.0, 9.0), 1.2)}, worker="w1:7")
>>> part.to_dict()["first"]
{'1': ['person', [0.0, 0.0, 5.0, 9.0], 1.0]}
>>> SegmentPartial.from_dict(part.to_dict()) == part
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vidwatch.detection import Box


@dataclass(frozen=True)
class LabelTracks:
    """One label in one segment: its track ids and when it was seen (pts, s)."""

    tracks: tuple[int, ...]
    max_simultaneous: int
    first_pts: float | None
    last_pts: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"tracks": sorted(self.tracks), "max_simultaneous": self.max_simultaneous,
                "first_pts": self.first_pts, "last_pts": self.last_pts}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelTracks:
        return cls(tuple(int(t) for t in data["tracks"]), int(data["max_simultaneous"]),
                   data.get("first_pts"), data.get("last_pts"))


@dataclass(frozen=True)
class Sighting:
    """A track's first or last appearance in a segment: label, box (pixels), pts (s)."""

    label: str
    box: Box
    pts: float

    def to_list(self) -> list[Any]:
        return [self.label, list(self.box), self.pts]

    @classmethod
    def from_list(cls, item: Sequence[Any]) -> Sighting:
        label, box, pts = item
        x1, y1, x2, y2 = box
        return cls(str(label), (x1, y1, x2, y2), pts)


@dataclass(frozen=True)
class SegmentPartial:
    """One segment's analysis reduced to what the merge needs (times in pts seconds)."""

    start: float
    end: float
    frames: int
    active_pts: tuple[float, ...] = ()
    labels: Mapping[str, LabelTracks] = field(default_factory=dict)
    first: Mapping[int, Sighting] = field(default_factory=dict)  # track id -> first sighting
    last: Mapping[int, Sighting] = field(default_factory=dict)  # track id -> last sighting
    thumbnail: str | None = None
    thumbnail_area: float = 0.0
    wall_s: float = 0.0
    worker: str = ""
    analyzers: Mapping[str, Any] = field(default_factory=dict)
    crops: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)  # track id -> best crop entry
    engine_calls: float = 0.0  # a share of batches shared with other segments: fractional
    engine_frames: int = 0
    # epoch s (worker clock) when analyze() started and returned: the latency breakdown's analysis span
    started_at: float | None = None
    analyzed_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape stored in the join hash (the analysis stamps only when measured)."""
        stamps = {"started_at": self.started_at, "analyzed_at": self.analyzed_at}
        return {
            "start": self.start,
            "end": self.end,
            "frames": self.frames,
            "active_pts": list(self.active_pts),
            "labels": {label: stats.to_dict() for label, stats in self.labels.items()},
            "first": {str(t): s.to_list() for t, s in self.first.items()},
            "last": {str(t): s.to_list() for t, s in self.last.items()},
            "thumbnail": self.thumbnail,
            "thumbnail_area": self.thumbnail_area,
            "wall_s": self.wall_s,
            "worker": self.worker,
            "analyzers": dict(self.analyzers),
            "crops": {str(t): dict(entry) for t, entry in self.crops.items()},
            "engine_calls": self.engine_calls,
            "engine_frames": self.engine_frames,
            **{key: value for key, value in stamps.items() if value is not None},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentPartial:
        """From the stored JSON shape (keys added later are optional)."""
        return cls(
            start=data["start"],
            end=data["end"],
            frames=int(data["frames"]),
            active_pts=tuple(data.get("active_pts") or ()),
            labels={label: LabelTracks.from_dict(stats) for label, stats in (data.get("labels") or {}).items()},
            first={int(t): Sighting.from_list(s) for t, s in (data.get("first") or {}).items()},
            last={int(t): Sighting.from_list(s) for t, s in (data.get("last") or {}).items()},
            thumbnail=data.get("thumbnail"),
            thumbnail_area=data.get("thumbnail_area") or 0.0,
            wall_s=data.get("wall_s") or 0.0,
            worker=str(data.get("worker") or ""),
            analyzers=dict(data.get("analyzers") or {}),
            crops={int(t): dict(entry) for t, entry in (data.get("crops") or {}).items()},
            engine_calls=float(data.get("engine_calls") or 0),
            engine_frames=int(data.get("engine_frames") or 0),
            started_at=_stamp(data.get("started_at")),
            analyzed_at=_stamp(data.get("analyzed_at")),
        )


def _stamp(value: Any) -> float | None:
    return None if value is None else float(value)
