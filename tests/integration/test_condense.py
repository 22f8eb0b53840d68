"""Condensed clips with the real ffmpeg: only the padded active spans, the source untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.helpers import moving_square_clip
from vidwatch.errors import MediaTimeout
from vidwatch.media import probe
from vidwatch.media.condense import CondenseError, condense, keyframes, padded_spans, snap_to_keyframes

ACTIVITY = [[5.3, 8.2], [9.0, 10.0], [20.5, 22.0]]  # padded by 1 s: [4.3, 11.0] and [19.5, 23.0]
PADDED_S = (11.0 - 4.3) + (23.0 - 19.5)
GOP_S = 1.0  # the clip has a keyframe every second (-g 25 at 25 fps)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return moving_square_clip(tmp_path_factory.mktemp("condense") / "cam1" / "long.mp4", seconds=30.0,
                              move_from_s=5.0, move_to_s=10.0)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("activity", "pad_s", "duration_s", "expected"),
    [
        ([], 1.0, 10.0, []),
        ([[0.2, 0.5]], 1.0, 10.0, [(0.0, 1.5)]),  # clipped at the start
        ([[9.5, 9.9]], 1.0, 10.0, [(8.5, 10.0)]),  # clipped at the end
        ([[1.0, 2.0], [3.9, 5.0]], 1.0, 10.0, [(0.0, 6.0)]),  # overlapping once padded
        ([[1.0, 2.0], [4.0, 5.0]], 1.0, 10.0, [(0.0, 6.0)]),  # touching once padded
        ([[4.0, 2.0]], 0.0, 10.0, []),  # an empty span is dropped
        ([[3.0, 3.0]], 0.5, 10.0, [(2.5, 3.5)]),
    ],
)
def test_padded_spans(activity: list, pad_s: float, duration_s: float, expected: list) -> None:
    assert padded_spans(activity, pad_s=pad_s, duration_s=duration_s) == expected


def test_snap_merges_spans_that_share_a_keyframe() -> None:
    assert snap_to_keyframes([(1.5, 2.2), (2.5, 3.0)], [0.0, 2.0, 4.0]) == [(0.0, 3.0)]
    assert snap_to_keyframes([(4.0, 5.0)], [0.0, 4.0]) == [(4.0, 5.0)]  # a start on a keyframe stays


def test_keyframes_of_the_clip(ffmpeg: str, clip: Path) -> None:
    found = keyframes(clip, timeout_s=30)
    assert found[:3] == [0.0, 1.0, 2.0] and len(found) == 30


def test_stream_copy_keeps_the_padded_spans(ffmpeg: str, clip: Path, tmp_path: Path) -> None:
    before = digest(clip)
    target = tmp_path / "out" / "condensed.mp4"
    duration = condense(clip, ACTIVITY, target, pad_s=1.0, timeout_s=120, mode="copy")
    assert PADDED_S - 0.1 <= duration <= PADDED_S + 2 * GOP_S + 0.6  # starts move back to a keyframe
    assert probe(target).duration_s == duration
    assert digest(clip) == before
    assert [p.name for p in target.parent.iterdir()] == ["condensed.mp4"]  # no list, parts or partial left


def test_re_encoding_is_exact_to_a_frame(ffmpeg: str, clip: Path, tmp_path: Path) -> None:
    before = digest(clip)
    duration = condense(clip, ACTIVITY, tmp_path / "c.mp4", pad_s=1.0, timeout_s=120, mode="encode")
    assert duration == pytest.approx(PADDED_S, abs=0.1)
    assert probe(tmp_path / "c.mp4").codec == "h264"
    assert digest(clip) == before


def test_auto_falls_back_to_re_encoding(ffmpeg: str, tmp_path: Path) -> None:
    source = moving_square_clip(tmp_path / "ffv1.mkv", seconds=8.0, codec="ffv1", fmt="matroska")
    with pytest.raises(CondenseError, match="stream copy failed"):  # MP4 cannot hold FFV1
        condense(source, [[3.0, 4.0]], tmp_path / "out" / "copy.mp4", pad_s=0.5, timeout_s=120, mode="copy")
    duration = condense(source, [[3.0, 4.0]], tmp_path / "out" / "auto.mp4", pad_s=0.5, timeout_s=120)
    assert duration == pytest.approx(2.0, abs=0.1)
    assert probe(tmp_path / "out" / "auto.mp4").codec == "h264"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["auto.mp4"]


def test_no_activity_writes_nothing(ffmpeg: str, clip: Path, tmp_path: Path) -> None:
    assert condense(clip, [], tmp_path / "c.mp4", timeout_s=60) == 0.0
    assert not (tmp_path / "c.mp4").exists()


def test_refusals(ffmpeg: str, clip: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must not be the source"):
        condense(clip, ACTIVITY, clip, timeout_s=60)
    with pytest.raises(MediaTimeout):
        condense(clip, ACTIVITY, tmp_path / "c.mp4", timeout_s=1e-6)
    assert not (tmp_path / "c.mp4").exists()
