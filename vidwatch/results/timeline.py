"""A timeline of one video: activity and per-label presence over time, as a PNG or an SVG.

One row for activity, then one row per label (in the order given), each a light track
with the spans drawn over it in a solid colour. Both pictures place rows and times with
one :class:`Layout`:

- :func:`render_timeline`: the PNG the summary task writes (presence from the joined
  tracks), with a time axis at a round interval (1 s … 1 h) labelled ``m:ss`` or
  ``h:mm:ss``. Drawn with OpenCV (imported when drawing), written atomically.
- :func:`timeline_svg`: the small SVG ``GET /videos/{id}/timeline.svg`` draws from a
  stored summary (a label's presence: its first to its last sighting).

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
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidwatch.fileio import atomic_write

if TYPE_CHECKING:
    import numpy as np

BACKGROUND = (255, 255, 255)
TRACK = (236, 236, 236)
INK = (40, 40, 40)
GRID = (210, 210, 210)
ACTIVITY = (40, 40, 200)  # BGR: red
PALETTE = [  # BGR, distinct on white
    (180, 119, 31), (14, 127, 255), (44, 160, 44), (189, 103, 148), (75, 86, 140),
    (194, 119, 227), (34, 189, 188), (207, 190, 23), (127, 127, 127),
]
FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
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
    import cv2

    cv2.putText(image, text, origin, FONT, scale, INK, 1, cv2.LINE_AA)


def _fit(text: str, width_px: int, scale: float = 0.45) -> str:
    """``text``, shortened and ended with ``..`` when it is wider than ``width_px``."""
    import cv2

    def fits(candidate: str) -> bool:
        return cv2.getTextSize(candidate, FONT, scale, 1)[0][0] <= width_px

    if fits(text):
        return text
    while text and not fits(text + ".."):
        text = text[:-1]
    return text + ".."


def _spans(image: np.ndarray, layout: Layout, index: int, spans: Sequence[Sequence[float]], colour: tuple) -> None:
    import cv2

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
    import cv2
    import numpy as np

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


# the SVG's geometry: small, for a page
SVG_LAYOUT = {"width_px": 400, "label_px": 70, "right_px": 0, "top_px": 2, "row_px": 14, "gap_px": 0, "axis_px": 2}
SVG_ACTIVITY, SVG_LABEL, SVG_TRACK, SVG_INK = "#2563eb", "#16a34a", "#e5e7eb", "#333"
LAST_SIGHTING_S = 0.2  # a label's presence in the SVG ends this long after its last sighting


Spans = list[tuple[float, float]]


def summary_rows(summary: Mapping[str, Any]) -> tuple[float, Spans, dict[str, Spans]]:
    """(duration_s, activity, presence) of a stored summary, ignoring values of the wrong shape.

    A label's presence is one span from its first to its last sighting.

    >>> car = {"first_pts": 1.0, "last_pts": 4.0}
    >>> summary_rows({"duration": 6.0, "activity": [[1, 2], [3]], "labels": {"car": car}})
    (6.0, [(1.0, 2.0)], {'car': [(1.0, 4.2)]})
    """
    try:
        duration = float(summary.get("duration") or 0.0)
    except (TypeError, ValueError):
        duration = 0.0
    raw_activity = summary.get("activity")
    activity = _pairs(raw_activity if isinstance(raw_activity, list) else [])
    labels = summary.get("labels")
    presence: dict[str, Spans] = {}
    for name, stats in sorted(labels.items() if isinstance(labels, dict) else []):
        facts = stats if isinstance(stats, dict) else {}
        first, last = facts.get("first_pts"), facts.get("last_pts")
        if isinstance(first, int | float) and isinstance(last, int | float):
            presence[str(name)] = [(float(first), float(last) + LAST_SIGHTING_S)]
    return duration, activity, presence


def _pairs(raw: list[Any]) -> Spans:
    return [
        (float(item[0]), float(item[1])) for item in raw
        if isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(v, int | float) for v in item)
    ]


def timeline_svg(summary: Mapping[str, Any]) -> str:
    """The stored summary's timeline as an SVG: one bar for activity, one per label."""
    duration, activity, presence = summary_rows(summary)
    rows = [("activity", activity, SVG_ACTIVITY)] + [(name, spans, SVG_LABEL) for name, spans in presence.items()]
    layout = Layout(duration_s=duration or 1.0, rows=len(rows), **SVG_LAYOUT)
    width, height = layout.size
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10">'
    ]
    for index, (name, spans, colour) in enumerate(rows):
        top = layout.row(index)[0]
        parts.append(f'<text x="0" y="{top + 10}" fill="{SVG_INK}">{escape(name[:12])}</text>')
        parts.append(f'<rect x="{layout.x(0)}" y="{top + 2}" width="{layout.plot_px}" height="9" fill="{SVG_TRACK}"/>')
        for start, end in spans:
            x1 = layout.x(start)
            w = max(1, layout.x(end) - x1)
            parts.append(f'<rect x="{x1}" y="{top + 2}" width="{w}" height="9" fill="{colour}"/>')
    parts.append("</svg>")
    return "".join(parts)
