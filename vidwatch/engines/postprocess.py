"""Model outputs to detections: YOLO-format decode, confidence filter, class-aware NMS, boxes mapped back.

Two families of output are understood, for a batch of ``B`` images:

- ``yolo``: ``[B, 4 + C, N]`` as Ultralytics YOLOv8/YOLO11 export them — per anchor a
  box ``(cx, cy, w, h)`` in input pixels and ``C`` class scores (no objectness). The
  transposed ``[B, N, 4 + C]`` is accepted too.
- ``nms``: ``[B, N, 6]`` rows ``(x1, y1, x2, y2, score, class)`` from a model with NMS in
  its graph (Ultralytics ``nms=True``, YOLOv10/end-to-end exports); ``[N, 6]`` for one
  image. Rows with a score under the threshold are padding and dropped; no NMS is run.

Detections come out per image sorted by score (highest first, ties by anchor order),
boxes in pixels of the frame given to infer, clipped to it.

>>> import numpy as np
>>> out = np.zeros((1, 5, 3), np.float32)  # one class, three anchors
>>> out[0, :, 0] = [50, 50, 20, 20, 0.9]; out[0, :, 1] = [52, 50, 20, 20, 0.8]; out[0, :, 2] = [10, 10, 4, 4, 0.1]
>>> [(d.label, d.box) for d in decode(out, [Letterbox(1.0, 0.0, 0.0, 100, 100)], ["square"])[0]]
[('square', (40.0, 40.0, 60.0, 60.0))]
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from vidwatch.detection import Detection
from vidwatch.engines.preprocess import Letterbox
from vidwatch.errors import EngineError

OutputFormat = Literal["yolo", "nms"]

CONFIDENCE = 0.25
IOU = 0.45
MAX_CANDIDATES = 10_000  # best-scored boxes that enter NMS per image
MAX_DETECTIONS = 300  # kept per image after NMS


def output_format(shape: Sequence[int | str | None], classes: int | None = None) -> tuple[OutputFormat, bool]:
    """The family of an output of ``shape``, and whether it is anchors-last (``[B, 4 + C, N]``).

    >>> output_format((1, 84, 8400))
    ('yolo', True)
    >>> output_format((1, 300, 6))
    ('nms', False)
    >>> output_format((1, 6, 8400), classes=2)
    ('yolo', True)
    """
    dims = [d if isinstance(d, int) and d > 0 else None for d in shape]
    if len(dims) == 2 and dims[1] == 6:
        return "nms", False
    if len(dims) != 3:
        raise EngineError(f"model output: expected [B, 4+classes, N] or [B, N, 6], got {list(shape)}")
    _, a, b = dims
    if classes is not None:
        if a == 4 + classes and b != 4 + classes:
            return "yolo", True
        if b == 4 + classes and a != 4 + classes:
            return "yolo", False
    if b == 6 and (a is None or a > 6):
        return "nms", False
    if a is not None and (b is None or a < b):
        return "yolo", True
    if b is not None and b > 4:
        return "yolo", False
    raise EngineError(f"model output: cannot tell the layout of {list(shape)}; expected [B, 4+classes, N] or [B, N, 6]")


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, limit: int | None = None) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, in order of decreasing score (stable).

    Stops once ``limit`` boxes are kept: later ones could only come after them.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    while order.size and (limit is None or len(keep) < limit):
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def _unletterbox(boxes: np.ndarray, box: Letterbox) -> np.ndarray:
    out = np.empty_like(boxes)
    out[:, [0, 2]] = (boxes[:, [0, 2]] - box.pad_x) / box.scale
    out[:, [1, 3]] = (boxes[:, [1, 3]] - box.pad_y) / box.scale
    return np.clip(out, 0, np.array([box.width, box.height, box.width, box.height], dtype=out.dtype), out=out)


def _label(names: Sequence[str], index: int) -> str:
    return names[index] if 0 <= index < len(names) else f"class{index}"


def _yolo_image(
    channels: np.ndarray, confidence: float, iou: float, max_detections: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``channels`` ``[4 + C, N]`` → (boxes xyxy, scores, classes) after filter and class-aware NMS."""
    scores = channels[4:].max(axis=0)  # reducing over classes row by row keeps memory access contiguous
    chosen = np.flatnonzero(scores > confidence)
    if chosen.size > MAX_CANDIDATES:
        best = np.argsort(-scores[chosen], kind="stable")[:MAX_CANDIDATES]
        chosen = np.sort(chosen[best])
    classes = channels[4:, chosen].argmax(axis=0)
    scores = scores[chosen]
    cxcywh = channels[:4, chosen].T.astype(np.float32)
    boxes = np.empty_like(cxcywh)
    boxes[:, :2] = cxcywh[:, :2] - cxcywh[:, 2:] / 2
    boxes[:, 2:] = cxcywh[:, :2] + cxcywh[:, 2:] / 2
    # class-aware: shift each class to its own region so boxes of different classes never overlap
    offset = classes[:, None].astype(np.float64) * (float(np.abs(boxes).max(initial=0)) + 1.0) * 2
    keep = nms(boxes.astype(np.float64) + offset, scores, iou, limit=max_detections)
    return boxes[keep], scores[keep], classes[keep]


def _nms_image(rows: np.ndarray, confidence: float, max_detections: int) -> tuple[np.ndarray, ...]:
    rows = rows[rows[:, 4] > confidence]
    order = np.argsort(-rows[:, 4], kind="stable")[:max_detections]
    rows = rows[order]
    return rows[:, :4].astype(np.float32), rows[:, 4], rows[:, 5].astype(np.int64)


def decode(
    output: np.ndarray,
    letterboxes: Sequence[Letterbox],
    names: Sequence[str],
    *,
    confidence: float = CONFIDENCE,
    iou: float = IOU,
    max_detections: int = MAX_DETECTIONS,
    layout: tuple[OutputFormat, bool] | None = None,
) -> list[list[Detection]]:
    """Detections per image of ``output`` (the model's first output for ``len(letterboxes)`` images)."""
    fmt, anchors_last = layout or output_format(output.shape, len(names) or None)
    if output.dtype != np.float32:
        output = output.astype(np.float32)
    if output.ndim == 2:
        output = output[None]
    if output.shape[0] < len(letterboxes):
        raise EngineError(f"model output: expected {len(letterboxes)} images, got {output.shape[0]}")
    results = []
    for i, box in enumerate(letterboxes):
        if fmt == "yolo":
            channels = output[i] if anchors_last else output[i].T
            xyxy, scores, classes = _yolo_image(channels, confidence, iou, max_detections)
        else:
            xyxy, scores, classes = _nms_image(output[i], confidence, max_detections)
        mapped = _unletterbox(xyxy, box)
        results.append(
            [
                Detection(_label(names, int(c)), float(s), (float(b[0]), float(b[1]), float(b[2]), float(b[3])))
                for b, s, c in zip(mapped.tolist(), scores.tolist(), classes.tolist(), strict=True)
            ]
        )
    return results


def parse_names(value: str) -> list[str]:
    """Class names from a model's ``names`` metadata: a dict ``{0: 'person', ...}`` or a list.

    >>> parse_names("{0: 'person', 1: 'car'}")
    ['person', 'car']
    >>> parse_names('["a", "b"]')
    ['a', 'b']
    """
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError) as exc:
        raise EngineError(f"model metadata 'names': expected a dict or list literal, got {value[:80]!r}") from exc
    if isinstance(parsed, dict):
        return [str(parsed[k]) for k in sorted(parsed, key=int)]
    if isinstance(parsed, list | tuple):
        return [str(v) for v in parsed]
    raise EngineError(f"model metadata 'names': expected a dict or list, got {type(parsed).__name__}")


def read_labels(path: Path) -> list[str]:
    """Class names from a labels file: one per line, in class order; blank lines and ``#`` comments skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise EngineError(f"labels file {path}: cannot read: {exc.strerror}") from exc
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
