"""Dominant colour of a crop: k-means in CIE Lab, the largest cluster named after its nearest colour.

The crop's centre (``centre`` of its width and height) is shrunk to at most
``SAMPLE_SIDE`` pixels and clustered in CIE Lab, where Euclidean distance follows
perceived difference, so a cluster is a colour a person would call one. The largest
cluster wins; its name is the nearest (CIE76 ΔE) of a small palette of basic colour
names, its ``rgb`` the cluster's mean colour.

>>> patch = np.zeros((40, 40, 3), np.uint8); patch[:] = (30, 30, 200)  # BGR: red
>>> dominant(patch, clusters=3)["name"]
'red'
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from pydantic import Field

from vidwatch.stages.base import Crop, StageError, StageSettings, register

SAMPLE_SIDE = 64
ITERATIONS = 12

# Basic colour terms (Berlin & Kay) with a typical sRGB value each.
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 20),
    "grey": (128, 128, 128),
    "white": (240, 240, 240),
    "red": (200, 30, 30),
    "orange": (240, 140, 20),
    "yellow": (235, 220, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 200),
    "purple": (130, 50, 160),
    "pink": (240, 150, 190),
    "brown": (120, 75, 40),
}


class DominantColourSettings(StageSettings):
    type: Literal["dominant_colour"] = Field("dominant_colour", description="The crop's dominant colour, named.")
    clusters: int = Field(3, ge=1, le=8, description="k of the k-means clustering in CIE Lab.")
    centre: float = Field(
        0.8, gt=0, le=1, description="Fraction of the crop's width and height kept around its centre (less background)."
    )


def _lab(rgb: np.ndarray) -> np.ndarray:
    """``[N, 3]`` sRGB uint8 → ``[N, 3]`` CIE Lab float (L 0..100)."""
    image = (rgb.reshape(-1, 1, 3).astype(np.float32)) / 255.0
    return cv2.cvtColor(image, cv2.COLOR_RGB2Lab).reshape(-1, 3)


_NAMES = list(PALETTE)
_PALETTE_LAB = _lab(np.asarray(list(PALETTE.values()), np.uint8))


def kmeans(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means: ``(centres [k', 3], labels [N])``, seeded along the lightness order."""
    order = np.argsort(points[:, 0], kind="stable")
    seeds = order[np.linspace(0, len(points) - 1, num=min(k, len(points))).astype(int)]
    centres = points[seeds].astype(np.float64)
    labels = np.zeros(len(points), dtype=np.int64)
    for _ in range(ITERATIONS):
        distances = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels = distances.argmin(axis=1)
        moved = np.array([points[labels == i].mean(axis=0) if np.any(labels == i) else centres[i]
                          for i in range(len(centres))])
        if np.allclose(moved, centres):
            break
        centres = moved
    return centres, labels


def dominant(image_bgr: np.ndarray, *, clusters: int = 3, centre: float = 0.8) -> dict[str, object]:
    """``{"name", "rgb": [r, g, b], "share"}`` of the largest colour cluster of a BGR image."""
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.size == 0:
        raise StageError(f"dominant_colour: expected a non-empty BGR image, got shape {image_bgr.shape}")
    height, width = image_bgr.shape[:2]
    mh, mw = int(height * (1 - centre) / 2), int(width * (1 - centre) / 2)
    image = image_bgr[mh : height - mh or height, mw : width - mw or width]
    scale = SAMPLE_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    rgb = image[:, :, ::-1].reshape(-1, 3)
    lab = _lab(rgb)
    _, labels = kmeans(lab, clusters)
    counts = np.bincount(labels)
    biggest = int(counts.argmax())
    members = labels == biggest
    mean_rgb = rgb[members].mean(axis=0)
    mean_lab = _lab(np.round(mean_rgb).astype(np.uint8))[0]
    name = _NAMES[int(((_PALETTE_LAB - mean_lab) ** 2).sum(axis=1).argmin())]
    return {
        "name": name,
        "rgb": [round(float(v)) for v in mean_rgb],
        "share": round(float(counts[biggest]) / len(labels), 3),
    }


class DominantColour:
    name = "dominant_colour"

    def __init__(self, settings: DominantColourSettings) -> None:
        self.settings = settings

    def load(self) -> None:
        """Needs nothing."""

    def run(self, crop: Crop) -> dict[str, object]:
        image = cv2.imread(str(crop.path), cv2.IMREAD_COLOR)
        if image is None:
            raise StageError(f"dominant_colour: {crop.path}: not a readable image")
        return dominant(image, clusters=self.settings.clusters, centre=self.settings.centre)

    def close(self) -> None:
        """Holds nothing."""


register("dominant_colour", DominantColourSettings)(DominantColour)
