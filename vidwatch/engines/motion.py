"""Motion: MOG2 background subtraction gated by frame differencing, optionally inside region polygons.

Used by the opencv engine (``motion`` detections) and by the pipeline's motion gate
(``[analysis] motion_gate``), which runs the detector only on frames where this finds motion.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vidwatch.config import EngineConfig
from vidwatch.detection import Detection

MOTION_HISTORY_S = 30.0  # how long a scene change takes to become background
FRAME_DELTA_THRESHOLD = 12  # grey levels: a blob counts as moving only where the last frame differs
MIN_MOVING_FRACTION = 0.02  # of a blob's pixels that must have changed since the previous frame

Polygon = Sequence[tuple[float, float]]
_MAX_16_BIT_LABEL = 0xFFFF


def _label_type(shape: tuple[int, ...]) -> int:
    """16-bit labels where they cannot overflow: labelling runs ~2x faster than with 32-bit ones.

    Connected-component labelling hands out at most one provisional label per 2x2 block.

    >>> _label_type((180, 320)) == cv2.CV_16U, _label_type((720, 1280)) == cv2.CV_32S
    (True, True)
    """
    height, width = shape[:2]
    return cv2.CV_16U if ((height + 1) // 2) * ((width + 1) // 2) + 1 <= _MAX_16_BIT_LABEL else cv2.CV_32S


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
        # 1 where a pixel differs from the last frame; none at all: no blob can be moving
        _, changed = cv2.threshold(cv2.absdiff(grey, previous), FRAME_DELTA_THRESHOLD, 1, cv2.THRESH_BINARY)
        if not cv2.countNonZero(changed):
            return []
        _, foreground = cv2.threshold(mask, 254, 1, cv2.THRESH_BINARY)  # 255: foreground (127: shadow)
        foreground = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, self._kernel)
        regions = self._region_mask(frame.shape[1], frame.shape[0])
        if regions is not None:
            np.bitwise_and(foreground, regions, out=foreground)  # in place, typed (mypy rejects &= here)
        count, _, stats, _ = cv2.connectedComponentsWithStats(
            foreground, connectivity=8, ltype=_label_type(foreground.shape)
        )
        min_area = self.min_area * scale * scale
        blobs = stats[1:count]
        found = []
        for x, y, w, h, _area in blobs[blobs[:, cv2.CC_STAT_AREA] >= min_area].tolist():
            moving = cv2.countNonZero(changed[y : y + h, x : x + w]) / (w * h)
            if moving < MIN_MOVING_FRACTION:
                continue
            score = min(1.0, moving * 4)
            box = (x / scale, y / scale, (x + w) / scale, (y + h) / scale)
            found.append(Detection("motion", score, box))
        return found

    def _region_mask(self, width: int, height: int) -> np.ndarray | None:
        if self._mask_size != (width, height):
            self._mask = region_mask(self.regions, width, height)
            self._mask_size = (width, height)
        return self._mask
