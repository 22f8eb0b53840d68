"""The detection type every engine returns and every stage, tracker and writer reads.

Neutral: it imports nothing from vidwatch, so ``results/``, ``analyzers/`` and ``tasks/``
use it without importing ``engines/``.

>>> d = Detection("person", 0.91234, (10.0, 20.0, 30.0, 60.0))
>>> d.with_track(7).as_json()
{'label': 'person', 'score': 0.9123, 'box': [10.0, 20.0, 30.0, 60.0], 'track': 7}
>>> Detection.from_json(d.as_json()) == replace(d, score=0.9123)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Box", "Detection", "replace"]

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Detection:
    """One object in one frame; ``box`` is ``(x1, y1, x2, y2)`` in pixels of the frame it was found in."""

    label: str
    score: float
    box: Box
    track: int | None = None
    world: tuple[float, float] | None = None  # ground-plane position, where a homography is configured

    def __post_init__(self) -> None:
        x1, y1, x2, y2 = self.box
        if not (x2 >= x1 and y2 >= y1):
            raise ValueError(f"box: expected x1 <= x2 and y1 <= y2, got {self.box}")

    def scaled(self, sx: float, sy: float) -> Detection:
        x1, y1, x2, y2 = self.box
        return replace(self, box=(x1 * sx, y1 * sy, x2 * sx, y2 * sy))

    def with_track(self, track: int) -> Detection:
        return replace(self, track=track)

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "label": self.label,
            "score": round(self.score, 4),
            "box": [round(v, 1) for v in self.box],
            "track": self.track,
        }
        if self.world is not None:
            data["world"] = [round(v, 3) for v in self.world]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Detection:
        """The inverse of :meth:`as_json` (values rounded as stored)."""
        x1, y1, x2, y2 = (float(v) for v in data["box"])
        world = data.get("world")
        return cls(
            label=str(data["label"]),
            score=float(data["score"]),
            box=(x1, y1, x2, y2),
            track=None if data.get("track") is None else int(data["track"]),
            world=None if world is None else (float(world[0]), float(world[1])),
        )
