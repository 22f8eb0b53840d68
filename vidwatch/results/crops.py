"""The best crop of each track: fed every analysed frame, kept small, written once as JPEGs.

A candidate crop's *quality* is::

    quality = confidence × sqrt(box area in pixels) × sharpness
    sharpness = v / (v + SHARPNESS_HALF)      v: variance of the Laplacian of the grey crop

so a larger box, a sharper image and a more confident detection each raise it;
``sqrt(area)`` makes a box twice as wide worth twice as much, and ``sharpness`` (0..1)
saturates, so a noisy texture does not beat a larger, clean view. The Laplacian is
measured on the crop after it is shrunk to ``max_side_px``, which keeps the cost bounded
and the values comparable between small and large boxes.

Cheap per frame: ``sharpness <= 1``, so ``confidence × sqrt(area)`` bounds the quality of
a candidate before any pixel is touched; only a candidate whose bound beats its track's
current best is cropped and measured. Each track holds one small JPEG in memory (its
best crop, long side at most ``max_side_px``, encoded when it becomes the best), a few
kilobytes, so a segment with thousands of tracks stays small.

>>> import numpy as np
>>> from types import SimpleNamespace as Det
>>> frame = np.zeros((120, 160, 3), np.uint8); frame[40:80, 40:100] = 255
>>> crops = BestCrops(min_side_px=8)
>>> crops.add(frame, 0.4, [Det(label="car", score=0.9, box=(35, 35, 105, 85), track=7)])
>>> crops.add(frame, 0.6, [Det(label="car", score=0.5, box=(35, 35, 105, 85), track=7)])  # bound too low
>>> crops.measured, sorted(crops.tracks())
(1, [7])
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidwatch.detection import Detection
from vidwatch.fileio import atomic_write

SHARPNESS_HALF = 100.0  # Laplacian variance at which the sharpness factor is 0.5
DEFAULT_MAX_SIDE_PX = 256
DEFAULT_PAD = 0.1  # each side of a box grows by this fraction of its size: some context around the object


@dataclass
class _Best:
    label: str
    pts: float
    quality: float
    confidence: float
    box: tuple[float, float, float, float]
    jpeg: bytes


def sharpness(grey: np.ndarray) -> float:
    """``v / (v + SHARPNESS_HALF)`` for the Laplacian variance ``v`` of a grey image (0..1).

    >>> sharpness(np.zeros((16, 16), np.uint8))
    0.0
    """
    variance = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return variance / (variance + SHARPNESS_HALF)


class BestCrops:
    """The best crop per track of one video (or segment).

    Call :meth:`add` once per analysed frame, in any order, with the frame's BGR image and
    its tracked detections (detections without a track are ignored), then :meth:`write`
    once.
    """

    def __init__(
        self,
        *,
        min_side_px: int = 32,
        max_side_px: int = DEFAULT_MAX_SIDE_PX,
        pad: float = DEFAULT_PAD,
        jpeg_quality: int = 90,
    ) -> None:
        if min_side_px < 1 or max_side_px < 8 or not 0 <= pad <= 1 or not 1 <= jpeg_quality <= 100:
            raise ValueError(
                "expected min_side_px >= 1, max_side_px >= 8, 0 <= pad <= 1, 1 <= jpeg_quality <= 100, got "
                f"{min_side_px}, {max_side_px}, {pad}, {jpeg_quality}"
            )
        self.min_side_px = min_side_px
        self.max_side_px = max_side_px
        self.pad = pad
        self.jpeg_quality = jpeg_quality
        self.measured = 0  # candidates cropped and measured (the others were ruled out by their bound)
        self._best: dict[int, _Best] = {}

    def tracks(self) -> list[int]:
        return list(self._best)

    def add(
        self,
        image: np.ndarray,
        pts: float,
        detections: Iterable[Detection],
        *,
        image_scale: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        """Consider each tracked detection of one analysed frame.

        Boxes are in the detections' own pixels (source pixels, in the pipeline);
        ``image_scale`` ``(sx, sy)`` maps them onto ``image`` (``image_x = box_x * sx``),
        e.g. ``(1 / 3, 1 / 3)`` for 1920-wide source boxes on a 640-wide analysed frame.
        Sizes (``min_side_px``, the area in the quality) are measured in box pixels.
        """
        sx, sy = image_scale
        if not (sx > 0 and sy > 0):
            raise ValueError(f"crops: expected a positive image_scale, got {image_scale}")
        height, width = image.shape[:2]
        limit_x, limit_y = width / sx, height / sy  # the image's extent in box pixels
        for det in detections:
            if det.track is None:
                continue
            x1, y1, x2, y2 = (float(v) for v in det.box)
            x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(limit_x, x2), min(limit_y, y2)
            box_w, box_h = x2 - x1, y2 - y1
            if min(box_w, box_h) < self.min_side_px:
                continue
            bound = float(det.score) * math.sqrt(box_w * box_h)
            current = self._best.get(det.track)
            if current is not None and bound <= current.quality:
                continue
            crop = self._crop(image, (x1 * sx, y1 * sy, x2 * sx, y2 * sy))
            if crop.size == 0:
                continue
            self.measured += 1
            grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
            quality = bound * sharpness(grey)
            if current is None or quality > current.quality:
                jpeg = encode_jpeg(crop, self.jpeg_quality)
                self._best[det.track] = _Best(det.label, float(pts), quality, float(det.score), (x1, y1, x2, y2), jpeg)

    def _crop(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        x1, y1, x2, y2 = box
        dx, dy = (x2 - x1) * self.pad, (y2 - y1) * self.pad
        height, width = image.shape[:2]
        left, top = max(0, int(x1 - dx)), max(0, int(y1 - dy))
        right, bottom = min(width, math.ceil(x2 + dx)), min(height, math.ceil(y2 + dy))
        crop = image[top:bottom, left:right]
        if crop.size == 0:
            return crop
        scale = self.max_side_px / max(crop.shape[:2])
        if scale < 1:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return crop

    def write(self, folder: Path, *, prefix: str = "track-") -> dict[int, dict[str, object]]:
        """Write each track's best crop as ``<folder>/<prefix><track>.jpg`` (atomically).

        Returns ``{track: {"path", "label", "pts", "score", "confidence", "box"}}`` where
        ``score`` is the quality above, ``confidence`` the detection's score, and ``box`` the
        detection's box ``[x1, y1, x2, y2]`` in its own pixels (clipped to the frame). Memory
        is released afterwards.
        """
        folder.mkdir(parents=True, exist_ok=True)
        out: dict[int, dict[str, object]] = {}
        for track, best in sorted(self._best.items()):
            path = folder / f"{prefix}{track}.jpg"
            atomic_write(path, best.jpeg)
            out[track] = {
                "path": str(path),
                "label": best.label,
                "pts": round(best.pts, 3),
                "score": round(best.quality, 4),
                "confidence": round(best.confidence, 4),
                "box": [round(v, 1) for v in best.box],
            }
        self._best.clear()
        return out


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"crops: JPEG encoding failed for an image of shape {image.shape}")
    return data.tobytes()
