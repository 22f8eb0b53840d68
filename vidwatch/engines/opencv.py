"""Classical computer vision that needs no model file: motion (MOG2) and people (HOG)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np

from vidwatch.config import EngineConfig
from vidwatch.engines.base import Detection, register

logger = logging.getLogger(__name__)

MOTION_HISTORY_S = 30.0  # how long a scene change takes to become background
FRAME_DELTA_THRESHOLD = 12  # grey levels: a blob counts as moving only where the last frame differs
MIN_MOVING_FRACTION = 0.02  # of a blob's pixels that must have changed since the previous frame
HOG_MIN_HEIGHT = 128  # the default people detector's window is 64x128


class OpenCVEngine:
    """MOG2 background subtraction gated by frame differencing, and the HOG people detector.

    A blob is motion only while it is moving: MOG2 alone keeps reporting an object that
    stopped until it fades into the background, which would stretch activity segments.
    """

    kind = "opencv"

    def __init__(self, config: EngineConfig, fps: float) -> None:
        self.detectors = set(config.detectors)
        self.min_area = config.motion_min_area
        self.person_min_score = config.person_min_score
        self.fps = fps
        self._hog: cv2.HOGDescriptor | None = None
        self._mog: cv2.BackgroundSubtractorMOG2 | None = None
        self._previous: np.ndarray | None = None
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    def load(self) -> None:
        if "person" in self.detectors:
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.reset()

    def reset(self) -> None:
        history = max(10, int(MOTION_HISTORY_S * self.fps))
        self._mog = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=16, detectShadows=True)
        self._previous = None

    def close(self) -> None:
        self._hog = None
        self._mog = None

    def infer(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        results = []
        for frame in frames:
            found: list[Detection] = []
            if "motion" in self.detectors:
                found.extend(self._motion(frame))
            if "person" in self.detectors:
                found.extend(self._people(frame))
            results.append(found)
        return results

    def _motion(self, frame: np.ndarray) -> list[Detection]:
        if self._mog is None:
            self.reset()
        mask = self._mog.apply(frame)  # type: ignore[union-attr]
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        previous, self._previous = self._previous, grey
        if previous is None:
            return []  # the first frame only seeds the background model
        foreground = cv2.morphologyEx((mask == 255).astype(np.uint8), cv2.MORPH_OPEN, self._kernel)
        changed = cv2.absdiff(grey, previous) > FRAME_DELTA_THRESHOLD
        count, _, stats, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
        found = []
        for x, y, w, h, area in stats[1:count]:
            if area < self.min_area:
                continue
            moving = changed[y : y + h, x : x + w].mean()
            if moving < MIN_MOVING_FRACTION:
                continue
            score = float(min(1.0, moving * 4))
            found.append(Detection("motion", score, (float(x), float(y), float(x + w), float(y + h))))
        return found

    def _people(self, frame: np.ndarray) -> list[Detection]:
        if self._hog is None or frame.shape[0] < HOG_MIN_HEIGHT:
            return []
        rects, weights = self._hog.detectMultiScale(frame, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return []
        boxes = [[int(x), int(y), int(w), int(h)] for x, y, w, h in rects]
        scores = [float(w) for w in np.asarray(weights).reshape(-1)]
        keep = cv2.dnn.NMSBoxes(boxes, scores, self.person_min_score, 0.45)
        found = []
        for i in np.asarray(keep).reshape(-1):
            x, y, w, h = boxes[i]
            score = float(min(1.0, scores[i] / 2.0))
            found.append(Detection("person", score, (float(x), float(y), float(x + w), float(y + h))))
        return found


register("opencv")(OpenCVEngine)
