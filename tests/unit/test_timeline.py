"""The timeline PNG: written atomically, active spans drawn where they belong."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vidwatch.results.timeline import Layout, render_timeline, tick_step


def test_timeline_marks_active_spans(tmp_path: Path) -> None:
    presence = {"person": [[2.0, 8.0], [60.0, 70.0]], "car": [[30.0, 45.0]]}
    path = render_timeline(120.0, [[2.0, 10.0], [30.0, 70.0]], presence, tmp_path / "out" / "timeline.png")
    assert path == tmp_path / "out" / "timeline.png" and path.stat().st_size > 2000
    assert [p.name for p in path.parent.iterdir()] == ["timeline.png"]  # no temporary left
    image = cv2.imread(str(path))
    layout = Layout(duration_s=120.0, rows=3)
    assert (image.shape[1], image.shape[0]) == layout.size

    def pixel(row: int, t: float) -> tuple[int, ...]:
        top, bottom = layout.row(row)
        return tuple(int(v) for v in image[(top + bottom) // 2, layout.x(t)])

    idle = pixel(0, 20.0)
    for row, active, quiet in [(0, [5.0, 50.0], [20.0, 100.0]), (1, [5.0, 65.0], [20.0, 100.0]), (2, [40.0], [5.0])]:
        for t in active:
            assert pixel(row, t) != idle, (row, t)
        for t in quiet:
            assert pixel(row, t) == idle, (row, t)
    assert pixel(1, 5.0) != pixel(2, 40.0)  # each label has its own colour
    axis = image[layout.row(2)[1] + layout.gap_px :, layout.label_px :]
    assert np.count_nonzero(axis.min(axis=2) < 128) > 100  # tick labels were drawn


def test_no_activity_is_still_a_readable_image(tmp_path: Path) -> None:
    path = render_timeline(5.0, [], {}, tmp_path / "t.png")
    image = cv2.imread(str(path))
    assert image.shape[:2] == (Layout(5.0, rows=1).size[1], 1200)


@pytest.mark.parametrize(("duration", "step"), [(5, 1), (30, 5), (300, 30), (3600, 300), (86400, 7200)])
def test_tick_steps(duration: float, step: float) -> None:
    assert tick_step(duration) == step


def test_bad_duration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected duration_s > 0"):
        render_timeline(0.0, [], {}, tmp_path / "t.png")
