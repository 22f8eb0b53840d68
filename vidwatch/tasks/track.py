"""A small IoU/centroid tracker: gives each detection a ``track`` id, per label."""

from __future__ import annotations

from dataclasses import dataclass

from vidwatch.detection import Detection

MIN_IOU = 0.2
MAX_CENTRE_JUMP = 1.5  # in box sizes: how far a fast object may move between analysed frames


@dataclass
class _Track:
    id: int
    label: str
    box: tuple[float, float, float, float]
    last_frame: int


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes.

    >>> iou((0, 0, 10, 10), (5, 0, 15, 10))
    0.3333333333333333
    """
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def affinity(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    overlap = iou(a, b)
    if overlap >= MIN_IOU:
        return 1.0 + overlap
    size = max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1], 1.0)
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    distance = (dx * dx + dy * dy) ** 0.5 / size
    return 1.0 - distance / MAX_CENTRE_JUMP if distance < MAX_CENTRE_JUMP else 0.0


class Tracker:
    """Greedy association of each frame's detections with live tracks of the same label.

    A track ends when it has not been matched for ``max_age_frames`` analysed frames.
    """

    def __init__(self, max_age_frames: int, first_id: int = 1) -> None:
        self.max_age_frames = max_age_frames
        self._next_id = first_id
        self._live: list[_Track] = []

    def update(self, frame: int, detections: list[Detection]) -> list[Detection]:
        self._live = [t for t in self._live if frame - t.last_frame <= self.max_age_frames]
        pairs = []
        for di, det in enumerate(detections):
            for ti, track in enumerate(self._live):
                if track.label == det.label:
                    score = affinity(track.box, det.box)
                    if score > 0:
                        pairs.append((score, di, ti))
        pairs.sort(reverse=True)
        assigned: dict[int, int] = {}
        used_tracks: set[int] = set()
        for _, di, ti in pairs:
            if di in assigned or ti in used_tracks:
                continue
            assigned[di] = ti
            used_tracks.add(ti)
        out = []
        for di, det in enumerate(detections):
            if di in assigned:
                track = self._live[assigned[di]]
            else:
                track = _Track(self._next_id, det.label, det.box, frame)
                self._next_id += 1
                self._live.append(track)
            track.box, track.last_frame = det.box, frame
            out.append(det.with_track(track.id))
        return out
