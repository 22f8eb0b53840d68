"""Edge density (Canny): the share of edge pixels per frame — scene texture, clutter, a lost view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np
from pydantic import Field, model_validator

from vidwatch.analyzers.base import AnalyzerSettings, Context, grey, register

if TYPE_CHECKING:
    from vidwatch.detection import Detection


class EdgesSettings(AnalyzerSettings):
    type: Literal["edges"] = Field("edges", description="Canny edge density per frame.")
    low: int = Field(50, ge=0, le=1000, description="Canny lower hysteresis threshold (gradient magnitude).")
    high: int = Field(150, ge=1, le=2000, description="Canny upper hysteresis threshold (gradient magnitude).")

    @model_validator(mode="after")
    def _ordered(self) -> EdgesSettings:
        if self.low >= self.high:
            raise ValueError(f"expected low < high, got low={self.low}, high={self.high}")
        return self


def edge_density(image: np.ndarray, low: int, high: int) -> float:
    """Share of pixels on a Canny edge (0..1)."""
    edges = cv2.Canny(grey(image), low, high)
    return float(np.count_nonzero(edges)) / edges.size


class EdgeDensity:
    name = "edges"

    def __init__(self, settings: EdgesSettings, context: Context) -> None:
        self.settings = settings
        self.values: list[float] = []

    def observe(self, frame: np.ndarray, pts_s: float) -> None:
        self.values.append(edge_density(frame, self.settings.low, self.settings.high))

    def annotate(self, detections: list[Detection]) -> list[Detection]:
        return detections

    def summary(self) -> dict[str, object]:
        if not self.values:
            return {"frames": 0}
        values = np.asarray(self.values)
        return {
            "frames": len(values),
            "mean_density": round(float(values.mean()), 4),
            "min_density": round(float(values.min()), 4),
            "max_density": round(float(values.max()), 4),
        }


register("edges", EdgesSettings)(EdgeDensity)
