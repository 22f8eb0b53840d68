"""Motion detection with region masks (the opencv engine and the motion gate share it)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.models import square_frame
from vidwatch.config import EngineConfig
from vidwatch.engines.motion import MotionDetector, _label_type, region_mask
from vidwatch.engines.opencv import OpenCVEngine

LEFT = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
RIGHT = [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]


def _moving_square(frames: int = 12) -> list[np.ndarray]:
    """A 30 px square crossing the left half of a 320x240 frame, 8 px per frame."""
    return [square_frame((240, 320), [(10 + 8 * i, 100, 30)]) for i in range(frames)]


@pytest.mark.parametrize(("regions", "moving"), [([], True), ([LEFT], True), ([RIGHT], False), ([RIGHT, LEFT], True)])
def test_motion_counts_only_inside_the_regions(regions: list, moving: bool) -> None:
    detector = MotionDetector(5.0, min_area=64, regions=regions)
    detector.reset()
    found = [detector.detect(frame) for frame in _moving_square()]
    assert any(found[2:]) is moving
    for detections in found:
        for det in detections:
            assert det.label == "motion" and det.box[2] <= 160


def test_opencv_engine_uses_the_configured_regions() -> None:
    config = EngineConfig(kind="opencv", detectors=["motion"], motion_regions=[RIGHT])
    engine = OpenCVEngine(config, 5.0)
    engine.load()
    assert engine.infer(_moving_square()) == [[]] * 12


def test_region_mask_scales_with_the_frame() -> None:
    mask = region_mask([LEFT], 320, 240)
    assert mask.shape == (240, 320)
    assert mask[:, :150].all() and not mask[:, 170:].any()
    assert region_mask([], 320, 240) is None


def test_shrunk_frames_give_boxes_in_frame_pixels() -> None:
    full = MotionDetector(5.0, min_area=64)
    shrunk = MotionDetector(5.0, min_area=64, max_side=160)
    full.reset()
    shrunk.reset()
    for frame in _moving_square():
        a, b = full.detect(frame), shrunk.detect(frame)
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert y.box == pytest.approx(x.box, abs=4.0)  # 2 px at half size
            assert all(type(v) is float for v in y.box)


def test_a_square_that_stops_is_no_longer_motion() -> None:
    detector = MotionDetector(5.0, min_area=64)
    detector.reset()
    frames = _moving_square()
    found = [detector.detect(frame) for frame in [*frames, frames[-1], frames[-1]]]
    assert found[len(frames) - 1]
    assert found[len(frames) :] == [[], []]  # still foreground to MOG2, but no pixel changed


@pytest.mark.parametrize(
    ("shape", "label_type"), [((180, 320), cv2.CV_16U), ((360, 640), cv2.CV_16U), ((720, 1280), cv2.CV_32S)]
)
def test_16_bit_labels_only_where_the_most_blobs_fit(shape: tuple[int, int], label_type: int) -> None:
    assert _label_type(shape) == label_type
    worst = np.zeros(shape, dtype=np.uint8)
    worst[::2, ::2] = 1  # one blob per 2x2 block: the most 8-connected blobs a frame can hold
    count, _, stats, _ = cv2.connectedComponentsWithStats(worst, connectivity=8, ltype=label_type)
    assert count == (shape[0] // 2) * (shape[1] // 2) + 1
    assert (stats[1:, cv2.CC_STAT_AREA] == 1).all()
