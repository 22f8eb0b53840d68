"""Straight lines (probabilistic Hough on Canny edges): pitch lines, lane markings, shelf edges."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np
from pydantic import Field

from vidwatch.analyzers.base import AnalyzerSettings, Context, grey, register

if TYPE_CHECKING:
    from vidwatch.detection import Detection

CANNY_LOW, CANNY_HIGH = 50, 150
ORIENTATION_TOLERANCE_DEG = 15.0


class LinesSettings(AnalyzerSettings):
    type: Literal["lines"] = Field("lines", description="Hough line segments per frame.")
    min_length: float = Field(
        0.2, gt=0, le=1, description="Shortest segment kept, as a fraction of the frame's long side."
    )
    max_gap_px: int = Field(10, ge=0, le=500, description="Largest gap bridged within one segment, in pixels.")
    votes: int = Field(50, ge=1, description="Hough accumulator threshold: edge pixels a line needs.")


def find_lines(image: np.ndarray, settings: LinesSettings) -> np.ndarray:
    """Segments ``[[x1, y1, x2, y2], ...]`` in pixels of ``image``."""
    edges = cv2.Canny(grey(image), CANNY_LOW, CANNY_HIGH)
    min_length = settings.min_length * max(edges.shape)
    found = cv2.HoughLinesP(
        edges, 1, np.pi / 180, settings.votes, minLineLength=min_length, maxLineGap=settings.max_gap_px
    )
    return np.zeros((0, 4), np.int32) if found is None else found.reshape(-1, 4)


def orientation(segments: np.ndarray) -> dict[str, int]:
    """How many segments are horizontal, vertical or oblique (±15°).

    >>> orientation(np.array([[0, 0, 10, 0], [0, 0, 0, 10], [0, 0, 10, 10]]))
    {'horizontal': 1, 'vertical': 1, 'oblique': 1}
    """
    dx = (segments[:, 2] - segments[:, 0]).astype(np.float64)
    dy = (segments[:, 3] - segments[:, 1]).astype(np.float64)
    angle = np.degrees(np.arctan2(np.abs(dy), np.abs(dx)))  # 0..90
    horizontal = int(np.count_nonzero(angle <= ORIENTATION_TOLERANCE_DEG))
    vertical = int(np.count_nonzero(angle >= 90 - ORIENTATION_TOLERANCE_DEG))
    return {"horizontal": horizontal, "vertical": vertical, "oblique": len(segments) - horizontal - vertical}


class HoughLines:
    name = "lines"

    def __init__(self, settings: LinesSettings, context: Context) -> None:
        self.settings = settings
        self.counts: list[int] = []
        self.totals = {"horizontal": 0, "vertical": 0, "oblique": 0}

    def observe(self, frame: np.ndarray, pts_s: float) -> None:
        segments = find_lines(frame, self.settings)
        self.counts.append(len(segments))
        for key, value in orientation(segments).items():
            self.totals[key] += value

    def annotate(self, detections: list[Detection]) -> list[Detection]:
        return detections

    def summary(self) -> dict[str, object]:
        if not self.counts:
            return {"frames": 0}
        return {
            "frames": len(self.counts),
            "mean_count": round(float(np.mean(self.counts)), 2),
            "max_count": int(max(self.counts)),
            "orientation": dict(self.totals),
        }


register("lines", LinesSettings)(HoughLines)
