"""A timeline image of one video: activity and per-label presence over time, as a PNG.

One row for activity, then one row per label (in the order given), each a light track
with the spans drawn over it in a solid colour; below them a time axis with ticks at a
round interval (1 s … 1 h) labelled ``m:ss`` or ``h:mm:ss``. Drawn with OpenCV, written
atomically (temporary name, then rename).

>>> layout = Layout(duration_s=60.0, rows=2)
>>> layout.x(0.0), layout.x(60.0), layout.size
(130, 1190, (1200, 114))
>>> tick_step(60.0), tick_step(3600.0), timecode(75.0), timecode(3725.0)
(5.0, 300.0, '1:15', '1:02:05')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidwatch.fileio import atomic_write

BACKGROUND = (255, 255, 255)
TRACK = (236, 236, 236)
INK = (40, 40, 40)
GRID = (210, 210, 210)
ACTIVITY = (40, 40, 200)  # BGR: red
PALETTE = [  # BGR, distinct on white
    (180, 119, 31), (14, 127, 255), (44, 160, 44), (189, 103, 148), (75, 86, 140),
    (194, 119, 227), (34, 189, 188), (207, 190, 23), (127, 127, 127),
]
FONT = cv2.FONT_HERSHEY_SIMPLEX
STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600]
TARGET_TICKS = 12


@dataclass(frozen=True)
class Layout:
    """Where things go: the pixel geometry shared by the renderer and its tests."""

    duration_s: float
    rows: int
    width_px: int = 1200
    label_px: int = 130  # the left column with the row names
    right_px: int = 10
    top_px: int = 10
    row_px: int = 28
    gap_px: int = 6
    axis_px: int = 36

    @property
    def plot_px(self) -> int:
        return self.width_px - self.label_px - self.right_px

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image."""
        return self.width_px, self.top_px + self.rows * (self.row_px + self.gap_px) + self.axis_px

    def x(self, t_s: float) -> int:
        """Pixel column of time ``t_s`` (clipped to the video)."""
        t = min(max(t_s, 0.0), self.duration_s)
        return self.label_px + round(t / self.duration_s * self.plot_px)

    def row(self, index: int) -> tuple[int, int]:
        """(top, bottom) pixel rows of row ``index`` (0: activity)."""
        top = self.top_px + index * (self.row_px + self.gap_px)
        return top, top + self.row_px - 1


def tick_step(duration_s: float) -> float:
    """A round tick interval giving at most about ``TARGET_TICKS`` ticks."""
    for step in STEPS_S:
        if duration_s / step <= TARGET_TICKS:
            return float(step)
    return float(math.ceil(duration_s / TARGET_TICKS / 3600) * 3600)


def timecode(t_s: float) -> str:
    total = round(t_s)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.45) -> None:
    cv2.putText(image, text, origin, FONT, scale, INK, 1, cv2.LINE_AA)


def _fit(text: str, width_px: int, scale: float = 0.45) -> str:
    """``text``, shortened and ended with ``..`` when it is wider than ``width_px``."""

    def fits(candidate: str) -> bool:
        return cv2.getTextSize(candidate, FONT, scale, 1)[0][0] <= width_px

    if fits(text):
        return text
    while text and not fits(text + ".."):
        text = text[:-1]
    return text + ".."


def _spans(image: np.ndarray, layout: Layout, index: int, spans: Sequence[Sequence[float]], colour: tuple) -> None:
    top, bottom = layout.row(index)
    cv2.rectangle(image, (layout.x(0), top), (layout.x(layout.duration_s), bottom), TRACK, cv2.FILLED)
    for start, end in spans:
        x1 = layout.x(start)
        cv2.rectangle(image, (x1, top), (max(x1, layout.x(end) - 1), bottom), colour, cv2.FILLED)


def render_timeline(
    duration_s: float,
    activity: Sequence[Sequence[float]],
    presence: Mapping[str, Sequence[Sequence[float]]],
    path: Path,
    *,
    width_px: int = 1200,
) -> Path:
    """Draw the timeline PNG at ``path`` and return it.

    ``activity`` and each ``presence[label]`` are ``[start_s, end_s]`` spans of media time;
    a span of zero length still shows as a one-pixel line.
    """
    if not duration_s > 0:
        raise ValueError(f"timeline: expected duration_s > 0, got {duration_s}")
    if width_px < 300:
        raise ValueError(f"timeline: expected width_px >= 300, got {width_px}")
    layout = Layout(duration_s=float(duration_s), rows=1 + len(presence), width_px=width_px)
    width, height = layout.size
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    step = tick_step(duration_s)
    axis_top = layout.row(layout.rows - 1)[1] + layout.gap_px
    ticks = np.arange(0.0, duration_s + 1e-9, step)
    for t in ticks:
        x = layout.x(float(t))
        cv2.line(image, (x, layout.top_px), (x, axis_top), GRID, 1)
    rows = [("activity", activity, ACTIVITY)]
    rows += [(label, spans, PALETTE[i % len(PALETTE)]) for i, (label, spans) in enumerate(presence.items())]
    for index, (name, spans, colour) in enumerate(rows):
        _spans(image, layout, index, spans, colour)
        top, bottom = layout.row(index)
        _text(image, _fit(name, layout.label_px - 12), (6, (top + bottom) // 2 + 5))
    cv2.line(image, (layout.x(0), axis_top), (layout.x(duration_s), axis_top), INK, 1)
    last_right = -1
    for t in ticks:
        x = layout.x(float(t))
        cv2.line(image, (x, axis_top), (x, axis_top + 5), INK, 1)
        label = timecode(float(t))
        (text_w, _), _ = cv2.getTextSize(label, FONT, 0.4, 1)
        left = min(max(0, x - text_w // 2), width - text_w - 1)
        if left > last_right + 4:  # never overlap two tick labels
            cv2.putText(image, label, (left, axis_top + 20), FONT, 0.4, INK, 1, cv2.LINE_AA)
            last_right = left + text_w
    _text(image, f"total {timecode(duration_s)}", (6, axis_top + 20), 0.4)
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"timeline: {path}: PNG encoding failed")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data.tobytes())
    return path
