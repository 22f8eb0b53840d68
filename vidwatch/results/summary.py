"""Summary arithmetic: per-label track statistics and activity segments, streamed per frame."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from vidwatch.engines.base import Detection


@dataclass
class LabelStats:
    tracks: set[int] = field(default_factory=set)
    max_simultaneous: int = 0
    first_pts: float | None = None
    last_pts: float | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "tracks": len(self.tracks),
            "max_simultaneous": self.max_simultaneous,
            "first_pts": _round(self.first_pts),
            "last_pts": _round(self.last_pts),
        }


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
    """Accumulates one video's (or segment's) per-frame detections into summary fields."""

    def __init__(self, fps: float, *, min_gap_s: float, min_activity_s: float) -> None:
        self.frame_s = 1.0 / fps
        self.min_gap_s = min_gap_s
        self.min_activity_s = min_activity_s
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

    def activity(self) -> list[tuple[float, float]]:
        return merge_activity(
            self._active_pts, self.frame_s, min_gap_s=self.min_gap_s, min_activity_s=self.min_activity_s
        )

    def labels_json(self) -> dict[str, dict[str, object]]:
        return {label: stats.as_json() for label, stats in sorted(self.labels.items())}
