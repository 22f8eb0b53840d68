"""Where a long video is cut: near every segment_seconds, at keyframes, on the analysis grid."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import moving_square_clip
from vidwatch.errors import SourceError
from vidwatch.tasks.segments import keyframe_times, plan

PLANS = [  # duration, fps, segment_s, keyframes, the (start, duration) of each segment
    (10.0, 5, 30, [0.0], [(0.0, 10.0)]),  # short: one segment
    (45.0, 5, 30, [0.0, 30.0], [(0.0, 45.0)]),  # up to 1.5 segments stays one
    (100.0, 5, 30, [0.0, 29.0, 31.5, 58.0, 91.0], [(0.0, 29.0), (29.0, 29.0), (58.0, 42.0)]),  # nearest keyframe
    (90.0, 5, 30, [0.0], [(0.0, 30.0), (30.0, 30.0), (60.0, 30.0)]),  # no keyframe near: cut at the target
    (70.0, 4, 30, [0.0, 30.1], [(0.0, 30.0), (30.0, 40.0)]),  # 30.1 s is off the 4 fps grid: 30.0
    # 10 s is too close to the previous cut: the one keyframe after the target is taken, however far
    (100.0, 5, 30, [0.0, 10.0, 95.0], [(0.0, 95.0), (95.0, 5.0)]),
]


@pytest.mark.parametrize(("duration", "fps", "segment_s", "keyframes", "expected"), PLANS)
def test_plan(duration: float, fps: float, segment_s: float, keyframes: list[float],
              expected: list[tuple[float, float]]) -> None:
    segments = plan(duration, fps, segment_s, keyframes)
    assert segments == expected
    assert sum(length for _, length in segments) == pytest.approx(duration)
    assert all(round(start * fps, 6) == round(start * fps) for start, _ in segments)  # on the analysis grid


def test_keyframe_times_come_from_the_packets(ffmpeg: str, tmp_path: Path) -> None:
    clip = moving_square_clip(tmp_path / "a.mp4", seconds=4.0, fps=25)  # a keyframe every 25 frames (-g 25)
    assert keyframe_times(clip) == pytest.approx([0.0, 1.0, 2.0, 3.0], abs=0.05)


def test_keyframe_times_of_a_file_that_is_not_a_video(ffmpeg: str, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(SourceError, match=r"segments: .*notes\.mp4: cannot list keyframes"):
        keyframe_times(text)
