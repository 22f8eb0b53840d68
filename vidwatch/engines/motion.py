"""Motion: MOG2 background subtraction gated by frame differencing, optionally inside region polygons.

Used by the opencv engine (``motion`` detections) and by the pipeline's motion gate
(``[analysis] motion_gate``), which runs the detector only on frames where this finds motion.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

from vidwatch.config import EngineConfig
from vidwatch.engines.base import Detection

logger = logging.getLogger(__name__)

MOTION_HISTORY_S = 30.0  # how long a scene change takes to become background
FRAME_DELTA_THRESHOLD = 12  # grey levels: a blob counts as moving only where the last frame differs
MIN_MOVING_FRACTION = 0.02  # of a blob's pixels that must have changed since the previous frame

Polygon = Sequence[tuple[float, float]]


def region_mask(regions: Sequence[Polygon], width: int, height: int) -> np.ndarray | None:
    """A 0/1 mask of ``regions`` (points as fractions of the frame) at ``width``×``height``; None: everywhere.

    >>> region_mask([[(0, 0), (0.5, 0), (0.5, 1), (0, 1)]], 4, 2).tolist()
    [[1, 1, 1, 0], [1, 1, 1, 0]]
    """
    if not regions:
        return None
    mask = np.zeros((height, width), dtype=np.uint8)
    polygons = [np.round(np.asarray(p, dtype=np.float64) * (width, height)).astype(np.int32) for p in regions]
    cv2.fillPoly(mask, polygons, 1)
    return mask


class MotionDetector:
    """A blob is motion only while it is moving: MOG2 alone keeps reporting an object that
    stopped until it fades into the background, which would stretch activity segments."""

    def __init__(
        self, fps: float, *, min_area: int, regions: Sequence[Polygon] = (), max_side: int | None = None
    ) -> None:
        """``max_side``: look at frames shrunk to this long side (cheaper; boxes still in frame pixels)."""
        self.fps = fps
        self.min_area = min_area
        self.regions = [list(p) for p in regions]
        self.max_side = max_side
        self._mog: cv2.BackgroundSubtractorMOG2 | None = None
        self._previous: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._mask_size: tuple[int, int] | None = None
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    @classmethod
    def from_config(cls, config: EngineConfig, fps: float, *, max_side: int | None = None) -> MotionDetector:
        return cls(fps, min_area=config.motion_min_area, regions=config.motion_regions, max_side=max_side)

    def reset(self) -> None:
        history = max(10, int(MOTION_HISTORY_S * self.fps))
        self._mog = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=16, detectShadows=True)
        self._previous = None

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Moving blobs in ``frame`` (the first frame after a reset only seeds the background)."""
        if self._mog is None:
            self.reset()
        scale = 1.0
        if self.max_side is not None and max(frame.shape[:2]) > self.max_side:
            scale = self.max_side / max(frame.shape[:2])
            frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        mask = self._mog.apply(frame)  # type: ignore[union-attr]
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        previous, self._previous = self._previous, grey
        if previous is None:
            return []
        foreground = cv2.morphologyEx((mask == 255).astype(np.uint8), cv2.MORPH_OPEN, self._kernel)
        regions = self._region_mask(frame.shape[1], frame.shape[0])
        if regions is not None:
            foreground &= regions
        changed = cv2.absdiff(grey, previous) > FRAME_DELTA_THRESHOLD
        count, _, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
        found = []
        min_area = self.min_area * scale * scale
        for x, y, w, h, area in stats[1:count]:
            if area < min_area:
                continue
            moving = changed[y : y + h, x : x + w].mean()
            if moving < MIN_MOVING_FRACTION:
                continue
            score = float(min(1.0, moving * 4))
            box = (float(x / scale), float(y / scale), float((x + w) / scale), float((y + h) / scale))
            found.append(Detection("motion", score, box))
        return found

    def _region_mask(self, width: int, height: int) -> np.ndarray | None:
        if self._mask_size != (width, height):
            self._mask = region_mask(self.regions, width, height)
            self._mask_size = (width, height)
        return self._mask
