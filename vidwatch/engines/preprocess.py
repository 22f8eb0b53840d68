"""Frames to a model's input: letterbox, BGR→RGB, scale to 0..1, NCHW, one batch array.

Shared by the onnx and tensorrt engines. The only per-frame work is one ``cv2.resize``
into a slice of a preallocated batch; the channel swap, the layout change and the
scaling are one vectorised numpy operation over the whole batch.

>>> import numpy as np
>>> frames = [np.zeros((360, 640, 3), np.uint8)] * 2
>>> batch, boxes = letterbox_batch(frames, (640, 640))
>>> batch.shape, batch.dtype, boxes[0]
((2, 3, 640, 640), dtype('float32'), Letterbox(scale=1.0, pad_x=0.0, pad_y=140.0, width=640, height=360))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114  # grey, as the Ultralytics exports are trained with


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How one frame was placed in the model input: ``model = frame * scale + pad``."""

    scale: float
    pad_x: float
    pad_y: float
    width: int  # of the frame given to infer
    height: int


def fit(width: int, height: int, input_size: tuple[int, int]) -> tuple[Letterbox, tuple[int, int]]:
    """Letterbox of a ``width``×``height`` frame in an input of ``(input_w, input_h)``, and the resized size.

    >>> fit(1280, 720, (640, 640))
    (Letterbox(scale=0.5, pad_x=0.0, pad_y=140.0, width=1280, height=720), (640, 360))
    """
    input_w, input_h = input_size
    scale = min(input_w / width, input_h / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    pad_x, pad_y = (input_w - new_w) // 2, (input_h - new_h) // 2
    return Letterbox(scale, float(pad_x), float(pad_y), width, height), (new_w, new_h)


def letterbox_batch(
    frames: Sequence[np.ndarray],
    input_size: tuple[int, int],
    *,
    out: np.ndarray | None = None,
    dtype: np.dtype | type = np.float32,
) -> tuple[np.ndarray, list[Letterbox]]:
    """``frames`` (HxWx3 uint8 BGR, any sizes) as one ``(N, 3, input_h, input_w)`` RGB batch in 0..1.

    ``out`` (at least N frames long, of ``dtype``) receives the result in place, e.g. a
    page-locked host buffer; the batch returned is then a view of it.
    """
    if not frames:
        raise ValueError("letterbox_batch: expected at least one frame, got none")
    input_w, input_h = input_size
    count = len(frames)
    canvas = np.full((count, input_h, input_w, 3), PAD_VALUE, dtype=np.uint8)
    boxes = []
    for i, frame in enumerate(frames):
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame {i}: expected HxWx3 uint8 BGR, got {frame.shape} {frame.dtype}")
        height, width = frame.shape[:2]
        box, (new_w, new_h) = fit(width, height, input_size)
        x, y = int(box.pad_x), int(box.pad_y)
        target = canvas[i, y : y + new_h, x : x + new_w]
        if (new_w, new_h) == (width, height):
            target[...] = frame
        else:
            cv2.resize(frame, (new_w, new_h), dst=target, interpolation=cv2.INTER_LINEAR)
        boxes.append(box)
    if out is None:
        out = np.empty((count, 3, input_h, input_w), dtype=dtype)
    elif out.shape[0] < count or out.shape[1:] != (3, input_h, input_w):
        raise ValueError(f"out: expected at least ({count}, 3, {input_h}, {input_w}), got {out.shape}")
    batch = out[:count]
    # BGR→RGB, NHWC→NCHW and 0..255→0..1 in one pass over the batch
    np.multiply(canvas[..., ::-1].transpose(0, 3, 1, 2), np.float32(1 / 255), out=batch, casting="unsafe")
    return batch, boxes
