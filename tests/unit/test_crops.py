"""Best crop per track: chosen by size, sharpness and confidence; cheap per frame; written atomically."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vidwatch.engines import Detection
from vidwatch.results.crops import BestCrops, sharpness


def textured(seed: int, shape: tuple[int, int] = (360, 640)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = np.full((*shape, 3), 90, np.uint8)
    for _ in range(80):
        x, y = rng.integers(0, shape[1] - 40), rng.integers(0, shape[0] - 40)
        w, h = rng.integers(4, 40, size=2)
        frame[y : y + h, x : x + w] = rng.integers(0, 255, 3)
    return frame


def det(track: int | None, box: tuple[float, float, float, float], score: float = 0.9, label: str = "car") -> Detection:
    return Detection(label, score, box, track)


def test_sharpness_ranks_sharp_over_blurred() -> None:
    grey = cv2.cvtColor(textured(1), cv2.COLOR_BGR2GRAY)
    assert sharpness(grey) > sharpness(cv2.GaussianBlur(grey, (0, 0), 4)) >= 0.0
    assert sharpness(grey) < 1.0


@pytest.mark.parametrize(
    ("first", "second", "winner"),
    [
        # (box, score, blurred) of two frames of one track; which one is kept
        (((100, 100, 200, 180), 0.9, False), ((100, 100, 300, 260), 0.9, False), 1),  # larger wins
        (((100, 100, 300, 260), 0.9, True), ((100, 100, 300, 260), 0.9, False), 1),  # sharper wins
        (((100, 100, 300, 260), 0.4, False), ((100, 100, 300, 260), 0.9, False), 1),  # more confident wins
        (((100, 100, 300, 260), 0.9, False), ((100, 100, 200, 180), 0.9, False), 0),  # smaller loses
    ],
)
def test_the_best_candidate_is_kept(first: tuple, second: tuple, winner: int, tmp_path: Path) -> None:
    crops = BestCrops(min_side_px=8)
    for i, (box, score, blurred) in enumerate([first, second]):
        frame = textured(0)
        if blurred:
            frame = cv2.GaussianBlur(frame, (0, 0), 6)
        crops.add(frame, i * 0.5, [det(4, box, score)])
    (entry,) = crops.write(tmp_path).values()
    assert entry["pts"] == winner * 0.5


def test_write_returns_one_jpeg_per_track(tmp_path: Path) -> None:
    crops = BestCrops(min_side_px=16, max_side_px=64)
    frame = textured(2)
    found = [det(1, (10, 10, 210, 110)), det(2, (300, 50, 400, 300), 0.7, "person"), det(None, (0, 0, 50, 50))]
    crops.add(frame, 1.25, found)
    out = crops.write(tmp_path / "crops", prefix="seg0-")
    assert sorted(out) == [1, 2]
    assert out[2]["label"] == "person" and out[2]["pts"] == 1.25 and out[2]["box"] == [300.0, 50.0, 400.0, 300.0]
    assert out[2]["confidence"] == 0.7 and out[2]["score"] > 0
    for entry in out.values():
        path = Path(entry["path"])
        assert path.parent == tmp_path / "crops" and path.name.startswith("seg0-")
        image = cv2.imread(str(path))
        assert image is not None and max(image.shape[:2]) <= 64  # kept small
    assert sorted(p.name for p in (tmp_path / "crops").iterdir()) == ["seg0-1.jpg", "seg0-2.jpg"]  # no temp left
    assert crops.tracks() == []  # memory released


def test_small_boxes_and_boxes_outside_the_frame_are_skipped(tmp_path: Path) -> None:
    crops = BestCrops(min_side_px=32)
    crops.add(textured(3), 0.0, [det(1, (10, 10, 30, 200)), det(2, (630, 10, 700, 100)), det(3, (-20, -20, 100, 90))])
    out = crops.write(tmp_path)
    assert sorted(out) == [3]
    assert out[3]["box"] == [0.0, 0.0, 100.0, 90.0]  # clipped to the frame


def test_candidates_that_cannot_win_are_not_measured() -> None:
    crops = BestCrops(min_side_px=8)
    frame = textured(4)
    crops.add(frame, 0.0, [det(1, (100, 100, 300, 300), 0.95)])
    for i in range(50):  # smaller or less confident: their bound is below the best's quality
        crops.add(frame, 0.2 * (i + 1), [det(1, (100, 100, 150, 150), 0.95), det(1, (100, 100, 300, 300), 0.05)])
    assert crops.measured == 1


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="expected min_side_px >= 1"):
        BestCrops(min_side_px=0)


def test_source_pixel_boxes_on_a_smaller_analysed_frame(tmp_path: Path) -> None:
    analysed = textured(5, shape=(240, 320))  # a 1280x960 source analysed at 320x240
    marker = analysed.copy()
    marker[60:120, 80:160] = (0, 0, 255)  # the object, in analysed pixels
    crops = BestCrops(min_side_px=100, pad=0.0)
    source_box = (320.0, 240.0, 640.0, 480.0)  # the same object in source pixels
    crops.add(marker, 2.0, [det(3, source_box), det(4, (0, 0, 80, 80))], image_scale=(0.25, 0.25))
    out = crops.write(tmp_path)
    assert sorted(out) == [3]  # track 4 is 80 source pixels: below min_side_px
    assert out[3]["box"] == [320.0, 240.0, 640.0, 480.0]
    image = cv2.imread(out[3]["path"])
    assert image.shape[:2] == (60, 80)
    assert tuple(int(v) for v in image[30, 40]) == pytest.approx((0, 0, 255), abs=3)
