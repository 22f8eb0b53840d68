"""Classical computer vision that needs no model file: motion (MOG2) and people (HOG)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from vidwatch.config import EngineConfig
from vidwatch.detection import Detection
from vidwatch.engines.base import register
from vidwatch.engines.motion import MotionDetector

HOG_MIN_HEIGHT = 128  # the default people detector's window is 64x128


class OpenCVEngine:
    """Motion (MOG2 gated by frame differencing, see :mod:`vidwatch.engines.motion`) and HOG people."""

    kind = "opencv"
    stateful = True  # motion: background models learn the video

    def __init__(self, config: EngineConfig, fps: float) -> None:
        self.detectors = set(config.detectors)
        self.min_area = config.motion_min_area
        self.person_min_score = config.person_min_score
        self.fps = fps
        self._hog: cv2.HOGDescriptor | None = None
        self._motion = MotionDetector.from_config(config, fps)

    def load(self) -> None:
        if "person" in self.detectors:
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector()))  # stubs: a Sequence
        self.reset()

    def reset(self) -> None:
        self._motion.reset()

    def close(self) -> None:
        self._hog = None

    def infer(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        results = []
        for frame in frames:
            found: list[Detection] = []
            if "motion" in self.detectors:
                found.extend(self._motion.detect(frame))
            if "person" in self.detectors:
                found.extend(self._people(frame))
            results.append(found)
        return results

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
