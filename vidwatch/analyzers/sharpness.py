"""Camera health from each frame's spectrum: out of focus, covered, or frozen.

- *sharpness*: the share of the frame's spectral energy (mean removed) above half the
  Nyquist frequency. Focus and fine texture put energy there; defocus, fog or a smeared
  lens take it away. It does not depend on brightness or contrast.
- *covered*: the view is nearly uniform (grey-level standard deviation under a threshold):
  a lens cap, a bag, a dead sensor, a black or blue frame.
- *frozen*: consecutive frames are identical to within a fraction of a grey level
  (a real sensor always adds some noise): the encoder or the recorder repeats a frame.

Each flag becomes an interval in the summary once it has lasted ``min_duration_s``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np
from pydantic import Field

from vidwatch.analyzers.base import AnalyzerSettings, Context, grey, intervals, register

if TYPE_CHECKING:
    from vidwatch.detection import Detection

ANALYSIS_SIDE = 256  # frames are measured at this long side: cheap, and comparable across resolutions
HIGH_BAND = 0.25  # cycles per pixel: half the Nyquist frequency


class SharpnessSettings(AnalyzerSettings):
    type: Literal["sharpness"] = Field("sharpness", description="Out-of-focus, covered and frozen camera flags.")
    blur_below: float = Field(
        0.005, gt=0, lt=1, description="A frame is out of focus when its high-frequency energy share is below this."
    )
    covered_below_std: float = Field(
        4.0, ge=0, le=128, description="A frame is covered when its grey-level standard deviation is below this."
    )
    frozen_below_diff: float = Field(
        0.05, ge=0, le=255, description="A frame is frozen when it differs from the last by less (mean grey levels)."
    )
    min_duration_s: float = Field(2.0, ge=0, description="Shortest flagged interval reported, in seconds.")


def _small_grey(frame: np.ndarray) -> np.ndarray:
    image: np.ndarray = grey(frame).astype(np.float32)  # before resizing: rounding would erase sensor noise
    scale = ANALYSIS_SIDE / max(image.shape)
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


def high_frequency_share(image: np.ndarray) -> float:
    """Share (0..1) of the spectral energy of a grey image above ``HIGH_BAND`` cycles per pixel."""
    centred = image - image.mean()
    power = np.abs(np.fft.rfft2(centred)) ** 2
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.rfftfreq(image.shape[1])[None, :]
    total = float(power.sum())
    if total <= 0:
        return 0.0
    return float(power[np.hypot(fx, fy) > HIGH_BAND].sum()) / total


class Sharpness:
    name = "sharpness"

    def __init__(self, settings: SharpnessSettings, context: Context) -> None:
        self.settings = settings
        self.frame_s = 1.0 / context.fps
        self.values: list[float] = []
        self.flags: dict[str, list[tuple[float, bool]]] = {"blurred": [], "covered": [], "frozen": []}
        self._previous: np.ndarray | None = None

    def observe(self, frame: np.ndarray, pts_s: float) -> None:
        image = _small_grey(frame)
        covered = float(image.std()) < self.settings.covered_below_std
        share = high_frequency_share(image)
        previous, self._previous = self._previous, image
        frozen = (
            previous is not None
            and previous.shape == image.shape
            and float(np.abs(image - previous).mean()) < self.settings.frozen_below_diff
        )
        self.values.append(share)
        self.flags["covered"].append((pts_s, covered))
        self.flags["blurred"].append((pts_s, not covered and share < self.settings.blur_below))
        self.flags["frozen"].append((pts_s, frozen))

    def annotate(self, detections: list[Detection]) -> list[Detection]:
        return detections

    def summary(self) -> dict[str, object]:
        if not self.values:
            return {"frames": 0}
        values = np.asarray(self.values)
        out: dict[str, object] = {
            "frames": len(values),
            "mean": round(float(values.mean()), 5),
            "min": round(float(values.min()), 5),
        }
        for name, flags in self.flags.items():
            out[name] = intervals(flags, self.frame_s, self.settings.min_duration_s)
        return out


register("sharpness", SharpnessSettings)(Sharpness)
