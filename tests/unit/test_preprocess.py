"""Letterboxing frames into a model's input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidwatch.engines.preprocess import PAD_VALUE, Letterbox, fit, letterbox_batch


@pytest.mark.parametrize(
    ("frame", "model", "letterbox", "resized"),
    [
        ((1280, 720), (640, 640), Letterbox(0.5, 0.0, 140.0, 1280, 720), (640, 360)),
        ((640, 640), (640, 640), Letterbox(1.0, 0.0, 0.0, 640, 640), (640, 640)),
        ((200, 360), (320, 320), Letterbox(320 / 360, 71.0, 0.0, 200, 360), (178, 320)),
        ((320, 240), (640, 640), Letterbox(2.0, 0.0, 80.0, 320, 240), (640, 480)),
        ((1920, 1080), (640, 384), Letterbox(1 / 3, 0.0, 12.0, 1920, 1080), (640, 360)),
    ],
)
def test_fit(frame: tuple, model: tuple, letterbox: Letterbox, resized: tuple) -> None:
    assert fit(*frame, model) == (letterbox, resized)


def test_pixels_land_rgb_scaled_in_nchw() -> None:
    frame = np.zeros((2, 4, 3), np.uint8)
    frame[..., 0], frame[..., 1], frame[..., 2] = 10, 20, 30  # B, G, R
    batch, (box,) = letterbox_batch([frame], (4, 4))
    assert batch.shape == (1, 3, 4, 4) and batch.dtype == np.float32
    assert box == Letterbox(1.0, 0.0, 1.0, 4, 2)
    np.testing.assert_allclose(batch[0, :, 1:3, :].reshape(3, -1).mean(axis=1), [30 / 255, 20 / 255, 10 / 255])
    np.testing.assert_allclose(batch[0, :, 0, :], PAD_VALUE / 255)
    np.testing.assert_allclose(batch[0, :, 3, :], PAD_VALUE / 255)


def test_matches_a_per_frame_reference() -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, size=(360, 640, 3), dtype=np.uint8) for _ in range(3)]
    batch, boxes = letterbox_batch(frames, (640, 640))
    for frame, image, box in zip(frames, batch, boxes, strict=True):
        expected = np.full((640, 640, 3), PAD_VALUE, np.uint8)
        expected[140:500] = frame
        np.testing.assert_allclose(image, cv2.cvtColor(expected, cv2.COLOR_BGR2RGB).transpose(2, 0, 1) / 255,
                                   atol=1e-6)
        assert box.pad_y == 140


def test_writes_into_a_given_buffer() -> None:
    out = np.zeros((4, 3, 64, 64), np.float16)
    batch, _ = letterbox_batch([np.full((64, 64, 3), 255, np.uint8)] * 2, (64, 64), out=out)
    assert np.shares_memory(batch, out) and batch.shape == (2, 3, 64, 64)
    assert out[:2].min() == 1.0 and out[2:].max() == 0.0
    with pytest.raises(ValueError, match="expected at least"):
        letterbox_batch([np.zeros((64, 64, 3), np.uint8)] * 5, (64, 64), out=out)


@pytest.mark.parametrize(
    ("frames", "message"),
    [([], "at least one frame"), ([np.zeros((10, 10), np.uint8)], "HxWx3 uint8"),
     ([np.zeros((10, 10, 3), np.float32)], "HxWx3 uint8")],
)
def test_refuses_what_is_not_a_bgr_frame(frames: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        letterbox_batch(frames, (32, 32))
