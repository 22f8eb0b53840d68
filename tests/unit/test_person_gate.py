"""The opencv engine's person gate: HOG searches where people can be, and once a second otherwise (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from vidwatch.config import EngineConfig
from vidwatch.engines.base import Detection
from vidwatch.engines.opencv import OpenCVEngine

FPS = 5.0
PERSON = Detection("person", 0.9, (10.0, 10.0, 50.0, 130.0))


def _engine(people_in: set[int], **settings: object) -> tuple[OpenCVEngine, list[int]]:
    """An engine whose HOG is replaced by a script: a person in the frames ``people_in``; the frames searched."""
    engine = OpenCVEngine(EngineConfig(**settings), FPS)
    engine.load()
    searched: list[int] = []

    def people(_frame: np.ndarray) -> list[Detection]:
        searched.append(engine.frames_seen)
        return [PERSON] if engine.frames_seen in people_in else []

    engine._people = people  # type: ignore[method-assign]
    return engine, searched


def _static(count: int) -> list[np.ndarray]:
    return [np.full((180, 320, 3), 90, np.uint8)] * count


@pytest.mark.parametrize(
    ("settings", "people_in", "expected"),
    [
        ({}, set(), [4, 9, 14, 19]),  # a static scene: once a second
        ({}, {4, 5, 6}, [4, 5, 6, 7, 12, 17]),  # a person found by the probe: searched until gone
        ({"person_gate": False}, set(), list(range(20))),  # off: every frame
        ({"detectors": ["person"]}, set(), list(range(20))),  # no motion detector to gate on
    ],
)
def test_static_frames_are_searched_once_a_second_and_a_person_keeps_being_searched(
    settings: dict, people_in: set[int], expected: list[int]
) -> None:
    engine, searched = _engine(people_in, **settings)
    found = engine.infer(_static(20))
    assert searched == expected
    assert [i for i, dets in enumerate(found) if PERSON in dets] == sorted(people_in)


def test_a_frame_with_a_moving_blob_is_searched() -> None:
    engine, searched = _engine(set())
    rng = np.random.default_rng(12)
    scene = rng.integers(60, 120, (180, 320, 3), dtype=np.int16)
    frames = [np.clip(scene + rng.integers(-3, 4, scene.shape), 0, 255).astype(np.uint8) for _ in range(12)]
    frames[7][40:120, 100:140] = 250  # a bright blob in frame 7, after the background was learnt
    engine.infer(frames)
    assert searched == [4, 7]  # the probe, then the moving blob (which restarts the once-a-second count)
