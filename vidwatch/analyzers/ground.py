"""Ground-plane positions: each detection's foot point through the camera's homography.

A homography ``H`` (3×3, from source-frame pixels to world units such as metres on the
ground plane, e.g. computed once with ``cv2.findHomography`` from four marked points)
is configured per camera. A detection's ``world`` is ``H · (x, y, 1)`` normalised, where
``(x, y)`` is the middle of the box's bottom edge (where a person or a car touches the
ground) or its centre. Cameras without a homography are left alone.

>>> settings = GroundSettings(cameras={"cam1": [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]]})
>>> project(np.asarray(settings.cameras["cam1"]), np.array([[320.0, 480.0]])).tolist()
[[3.2, 4.8]]
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field, field_validator

from vidwatch.analyzers.base import AnalyzerSettings, Context, register

if TYPE_CHECKING:
    from vidwatch.detection import Detection

MIN_W = 1e-9  # a point this close to the horizon line has no ground position


class GroundSettings(AnalyzerSettings):
    type: Literal["ground"] = Field("ground", description="Project detections to world coordinates.")
    cameras: dict[str, list[list[float]]] = Field(
        min_length=1, description="Per camera: a 3x3 homography from source pixels to ground-plane units."
    )
    point: Literal["bottom", "center"] = Field(
        "bottom", description="Which point of a box is projected: the middle of its bottom edge, or its centre."
    )

    @field_validator("cameras")
    @classmethod
    def _homographies(cls, value: dict[str, list[list[float]]]) -> dict[str, list[list[float]]]:
        for camera, rows in value.items():
            if len(rows) != 3 or any(len(row) != 3 for row in rows):
                lengths = [len(r) for r in rows]
                raise ValueError(f"camera {camera!r}: expected a 3x3 matrix, got rows of lengths {lengths}")
            if not all(math.isfinite(v) for row in rows for v in row):
                raise ValueError(f"camera {camera!r}: expected finite numbers")
            if abs(float(np.linalg.det(np.asarray(rows, dtype=np.float64)))) < 1e-12:
                raise ValueError(f"camera {camera!r}: the homography is singular (determinant 0)")
        return value


def project(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` ``[N, 2]`` through ``matrix``; rows at the horizon come back as NaN."""
    homogeneous = np.hstack([points, np.ones((len(points), 1))]) @ matrix.T
    w = homogeneous[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = homogeneous[:, :2] / w
    out[np.abs(w[:, 0]) < MIN_W] = np.nan
    return out


class GroundProjection:
    name = "ground"

    def __init__(self, settings: GroundSettings, context: Context) -> None:
        self.settings = settings
        rows = settings.cameras.get(context.camera)
        self.matrix = None if rows is None else np.asarray(rows, dtype=np.float64)
        self.projected = 0

    def observe(self, frame: np.ndarray, pts_s: float) -> None:
        """Needs no pixels."""

    def annotate(self, detections: list[Detection]) -> list[Detection]:
        if self.matrix is None or not detections:
            return detections
        boxes = np.asarray([d.box for d in detections], dtype=np.float64)
        x = (boxes[:, 0] + boxes[:, 2]) / 2
        y = boxes[:, 3] if self.settings.point == "bottom" else (boxes[:, 1] + boxes[:, 3]) / 2
        world = project(self.matrix, np.stack([x, y], axis=1))
        out = []
        for det, (wx, wy) in zip(detections, world.tolist(), strict=True):
            if math.isfinite(wx) and math.isfinite(wy):
                self.projected += 1
                out.append(replace(det, world=(wx, wy)))
            else:
                out.append(det)
        return out

    def summary(self) -> dict[str, object]:
        return {"homography": self.matrix is not None, "projected": self.projected}


register("ground", GroundSettings)(GroundProjection)
