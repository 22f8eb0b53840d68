"""Classical analyzers on synthetic frames with known answers, and their configuration."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vidwatch.analyzers import Context, GroundSettings, LinesSettings, SharpnessSettings, build, summaries
from vidwatch.analyzers.base import intervals
from vidwatch.analyzers.edges import EdgesSettings, edge_density
from vidwatch.analyzers.lines import find_lines
from vidwatch.analyzers.sharpness import Sharpness
from vidwatch.config import load_config
from vidwatch.engines import Detection
from vidwatch.errors import ConfigError

CONTEXT = Context(camera="cam1", fps=5.0)


def scene(seed: int = 0) -> np.ndarray:
    """A cluttered, in-focus 640x360 frame: random rectangles plus sensor noise."""
    rng = np.random.default_rng(seed)
    frame = np.full((360, 640, 3), 90, np.uint8)
    for _ in range(60):
        x, y = rng.integers(0, 600), rng.integers(0, 330)
        w, h = rng.integers(5, 80, size=2)
        frame[y : y + h, x : x + w] = rng.integers(0, 255)
    return cv2.add(frame, rng.integers(0, 6, frame.shape, dtype=np.uint8))


def test_edge_density() -> None:
    flat = np.full((240, 320, 3), 80, np.uint8)
    board = (np.indices((240, 320)).sum(axis=0) // 8 % 2 * 255).astype(np.uint8)
    assert edge_density(flat, 50, 150) == 0.0
    assert edge_density(cv2.cvtColor(board, cv2.COLOR_GRAY2BGR), 50, 150) > 0.15
    (analyzer,) = build([EdgesSettings()], CONTEXT)
    analyzer.observe(flat, 0.0)
    analyzer.observe(scene(), 0.2)
    summary = analyzer.summary()
    assert summary["min_density"] == 0.0 and summary["max_density"] > 0.02


def test_lines_found_with_their_orientation() -> None:
    frame = np.zeros((360, 640, 3), np.uint8)
    cv2.line(frame, (50, 300), (600, 300), (255, 255, 255), 3)  # a touch line
    cv2.line(frame, (320, 20), (320, 340), (255, 255, 255), 3)  # the halfway line
    cv2.line(frame, (0, 0), (100, 8), (255, 255, 255), 1)  # too short to count
    segments = find_lines(frame, LinesSettings())
    assert len(segments) >= 2
    (analyzer,) = build([LinesSettings()], CONTEXT)
    analyzer.observe(frame, 0.0)
    summary = analyzer.summary()
    assert summary["orientation"]["horizontal"] >= 1
    assert summary["orientation"]["vertical"] >= 1
    assert summary["orientation"]["oblique"] == 0


def _sharpness_over(frames: list[np.ndarray], **settings: object) -> dict:
    analyzer = Sharpness(SharpnessSettings(**settings), Context("cam1", fps=5.0))
    for i, frame in enumerate(frames):
        analyzer.observe(frame, i * 0.2)
    return analyzer.summary()


def test_sharp_scene_is_not_flagged() -> None:
    summary = _sharpness_over([scene(i) for i in range(20)])
    assert (summary["blurred"], summary["covered"], summary["frozen"]) == ([], [], [])
    assert summary["min"] > 0.005


@pytest.mark.parametrize("sigma", [2.5, 4, 8])
def test_out_of_focus_is_flagged(sigma: float) -> None:
    frames = [scene(i) for i in range(10)]
    frames += [cv2.add(cv2.GaussianBlur(scene(i), (0, 0), sigma), np.random.default_rng(i).integers(
        0, 3, (360, 640, 3), dtype=np.uint8)) for i in range(10, 25)]
    frames += [scene(i) for i in range(25, 30)]
    summary = _sharpness_over(frames)
    assert summary["blurred"] == [[2.0, 5.0]]
    assert summary["covered"] == []


def test_covered_and_frozen_are_flagged() -> None:
    rng = np.random.default_rng(0)
    live = [scene(i) for i in range(10)]
    covered = [np.clip(np.full((360, 640, 3), 12) + rng.integers(0, 3, (360, 640, 3)), 0, 255).astype(np.uint8)
               for _ in range(15)]
    frozen = [scene(99)] * 15
    summary = _sharpness_over([*live, *covered, *live, *frozen])
    assert summary["covered"] == [[2.0, 5.0]]
    assert summary["blurred"] == []  # a covered lens is reported as covered, not as out of focus
    assert summary["frozen"] == [[7.2, 10.0]]  # the first repeat of frame 35 is frame 36


@pytest.mark.parametrize(
    ("flags", "min_s", "expected"),
    [
        ([(0.0, True), (0.2, True), (0.4, False)], 0.4, [[0.0, 0.4]]),
        ([(0.0, True), (0.2, False), (0.4, True)], 0.4, []),
        ([(0.0, False), (0.2, True), (0.4, True)], 0.0, [[0.2, 0.6]]),
        ([], 0.0, []),
    ],
)
def test_intervals(flags: list, min_s: float, expected: list) -> None:
    assert intervals(flags, 0.2, min_s) == expected


def test_ground_projection_of_the_foot_point() -> None:
    # pixels to metres: 1 px = 1 cm, origin moved to (100, 200) px
    settings = GroundSettings(cameras={"cam1": [[0.01, 0, -1], [0, 0.01, -2], [0, 0, 1]]})
    (ground,) = build([settings], CONTEXT)
    person = Detection("person", 0.9, (150.0, 100.0, 250.0, 400.0), track=3)
    (found,) = ground.annotate([person])
    assert found.world == pytest.approx((1.0, 2.0))
    assert found.track == 3 and found.box == person.box
    assert found.as_json()["world"] == [1.0, 2.0]
    assert "world" not in person.as_json()
    center = GroundSettings(cameras=settings.cameras, point="center")
    (found,) = build([center], CONTEXT)[0].annotate([person])
    assert found.world == pytest.approx((1.0, 0.5))
    assert ground.summary() == {"homography": True, "projected": 1}


def test_ground_projection_on_a_tilted_plane_and_other_cameras() -> None:
    # a perspective homography: points on the horizon (w = 0) have no ground position
    tilted = [[1, 0, 0], [0, 1, 0], [0, 0.01, -1]]
    (ground,) = build([GroundSettings(cameras={"cam1": tilted})], CONTEXT)
    on_horizon = Detection("car", 0.8, (0.0, 50.0, 10.0, 100.0))  # foot at y = 100: w = 0
    below = Detection("car", 0.8, (0.0, 150.0, 10.0, 200.0))  # w = 1
    first, second = ground.annotate([on_horizon, below])
    assert first.world is None
    assert second.world == pytest.approx((5.0, 200.0))
    (other,) = build([GroundSettings(cameras={"cam2": tilted})], CONTEXT)
    assert other.annotate([below]) == [below]
    assert other.summary() == {"homography": False, "projected": 0}


def test_summaries_keep_repeated_analyzers_apart() -> None:
    analyzers = build([EdgesSettings(), EdgesSettings(low=10, high=40)], CONTEXT)
    assert list(summaries(analyzers)) == ["edges", "edges.2"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vidwatch.toml"
    path.write_text(text)
    return path


def test_config_tables(tmp_path: Path) -> None:
    config = load_config(
        _write(
            tmp_path,
            """
[[analyzers]]
type = "sharpness"
blur_below = 0.004

[[analyzers]]
type = "ground"
cameras = { cam1 = [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]] }

[[analyzers]]
type = "lines"
""",
        )
    )
    assert [a.type for a in config.analyzers] == ["sharpness", "ground", "lines"]
    assert config.analyzers[0].blur_below == 0.004


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('type = "blur"', "does not match any of the expected tags"),
        ('type = "edges"\nlo = 3', "analyzers.0.edges.lo: unknown key"),
        ('type = "edges"\nlow = 200\nhigh = 100', "expected low < high"),
        ('type = "ground"\ncameras = { cam1 = [[1, 0], [0, 1]] }', "expected a 3x3 matrix"),
        ('type = "ground"\ncameras = { cam1 = [[1, 2, 3], [2, 4, 6], [0, 0, 1]] }', "singular"),
        ('type = "ground"\ncameras = {}', "at least 1 item"),
        ('type = "sharpness"\nblur_below = 2', "blur_below"),
    ],
)
def test_config_refuses_bad_tables(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, f"[[analyzers]]\n{table}\n"))
