"""Post-processing against a straightforward reference, on random outputs: same boxes, same order."""

from __future__ import annotations

import numpy as np
import pytest

from vidwatch.engines.postprocess import decode, nms, output_format, parse_names, read_labels
from vidwatch.engines.preprocess import Letterbox
from vidwatch.errors import EngineError


def _iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-9)


def reference_yolo(
    channels: np.ndarray, box: Letterbox, names: list[str], confidence: float, iou: float
) -> list[tuple[str, float, tuple[float, ...]]]:
    """One image's ``[4 + C, N]`` decoded the slow, obvious way."""
    candidates = []
    for j in range(channels.shape[1]):
        row = channels[:, j]
        cls = int(np.argmax(row[4:]))
        score = float(row[4 + cls])
        if score <= confidence:
            continue
        cx, cy, w, h = (np.float32(v) for v in row[:4])
        xyxy = [float(cx - w / 2), float(cy - h / 2), float(cx + w / 2), float(cy + h / 2)]
        candidates.append((-score, j, cls, xyxy))
    candidates.sort(key=lambda c: (c[0], c[1]))
    kept: list[tuple[float, int, int, list[float]]] = []
    for cand in candidates:
        if all(k[2] != cand[2] or _iou(k[3], cand[3]) <= iou for k in kept):
            kept.append(cand)
    out = []
    for neg_score, _, cls, (x1, y1, x2, y2) in kept:
        mapped = (
            min(max((x1 - box.pad_x) / box.scale, 0), box.width),
            min(max((y1 - box.pad_y) / box.scale, 0), box.height),
            min(max((x2 - box.pad_x) / box.scale, 0), box.width),
            min(max((y2 - box.pad_y) / box.scale, 0), box.height),
        )
        out.append((names[cls], -neg_score, mapped))
    return out


def random_output(rng: np.random.Generator, images: int, classes: int, anchors: int) -> np.ndarray:
    """Boxes clustered around a few centres (so NMS has work), sparse class scores."""
    out = np.empty((images, 4 + classes, anchors), dtype=np.float32)
    centres = rng.uniform(0, 640, size=(images, 12, 2))
    pick = rng.integers(0, 12, size=(images, anchors))
    for i in range(images):
        out[i, 0:2] = (centres[i, pick[i]] + rng.normal(0, 12, size=(anchors, 2))).T
        out[i, 2:4] = rng.uniform(10, 160, size=(2, anchors))
        out[i, 4:] = rng.uniform(0, 1, size=(classes, anchors)) ** 3
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("anchors_last", [True, False])
def test_decode_matches_reference(seed: int, anchors_last: bool) -> None:
    rng = np.random.default_rng(seed)
    names = ["person", "car", "dog"]
    output = random_output(rng, images=3, classes=3, anchors=600)
    boxes = [
        Letterbox(0.5, 0.0, 140.0, 1280, 720),
        Letterbox(1.0, 0.0, 0.0, 640, 640),
        Letterbox(2.0, 10.0, 0.0, 300, 320),
    ]
    given = output if anchors_last else output.transpose(0, 2, 1).copy()
    got = decode(given, boxes, names, confidence=0.3, iou=0.45, max_detections=10_000)
    for i, box in enumerate(boxes):
        want = reference_yolo(output[i], box, names, 0.3, 0.45)
        assert len(got[i]) == len(want) > 5
        for det, (label, score, xyxy) in zip(got[i], want, strict=True):
            assert det.label == label
            assert det.score == pytest.approx(score, abs=1e-6)
            assert det.box == pytest.approx(xyxy, abs=1e-3)


def test_nms_format_filters_sorts_and_maps_back() -> None:
    rows = np.array(
        [
            [10, 10, 50, 50, 0.5, 1],
            [0, 0, 0, 0, 0.0, 0],  # padding
            [100, 100, 200, 180, 0.9, 0],
            [300, 300, 700, 700, 0.7, 2],  # clipped to the frame
            *([[0, 0, 0, 0, 0.0, 0]] * 4),  # padding up to the model's fixed row count
        ],
        dtype=np.float32,
    )
    (dets,) = decode(rows[None], [Letterbox(0.5, 0.0, 20.0, 640, 600)], ["a", "b", "c"], confidence=0.25)
    assert [(d.label, round(d.score, 2), d.box) for d in dets] == [
        ("a", 0.9, (200.0, 160.0, 400.0, 320.0)),
        ("c", 0.7, (600.0, 560.0, 640.0, 600.0)),
        ("b", 0.5, (20.0, 0.0, 100.0, 60.0)),
    ]
    # [N, 6] for one image is the same
    assert decode(rows, [Letterbox(0.5, 0.0, 20.0, 640, 600)], ["a", "b", "c"]) == [dets]


def test_class_aware_nms_keeps_overlapping_boxes_of_different_classes() -> None:
    out = np.zeros((1, 6, 3), np.float32)
    out[0, :, 0] = [50, 50, 40, 40, 0.9, 0.0]
    out[0, :, 1] = [51, 50, 40, 40, 0.0, 0.8]  # same place, other class: kept
    out[0, :, 2] = [52, 50, 40, 40, 0.7, 0.0]  # same place, same class: suppressed
    (dets,) = decode(out, [Letterbox(1.0, 0.0, 0.0, 100, 100)], ["a", "b"])
    assert [(d.label, round(d.score, 1)) for d in dets] == [("a", 0.9), ("b", 0.8)]


def test_unknown_class_index_gets_a_generic_name() -> None:
    out = np.zeros((1, 6, 10), np.float32)
    out[0, :, 0] = [50, 50, 40, 40, 0.1, 0.9]
    (dets,) = decode(out, [Letterbox(1.0, 0.0, 0.0, 100, 100)], [])
    assert dets[0].label == "class1"


def test_nms_equal_scores_keep_anchor_order() -> None:
    boxes = np.array([[0, 0, 10, 10], [100, 100, 110, 110], [1, 0, 11, 10]], dtype=np.float64)
    assert nms(boxes, np.array([0.5, 0.5, 0.5]), 0.45).tolist() == [0, 1]


@pytest.mark.parametrize(
    ("shape", "classes", "expected"),
    [
        ((1, 84, 8400), None, ("yolo", True)),
        ((8, 84, 8400), 80, ("yolo", True)),
        ((1, 8400, 84), None, ("yolo", False)),
        ((1, 300, 6), None, ("nms", False)),
        ((300, 6), None, ("nms", False)),
        ((1, 6, 8400), 2, ("yolo", True)),  # two classes: 4 + 2 channels, not NMS rows
        (("batch", 5, 1600), 1, ("yolo", True)),
        (("batch", "anchors", 6), None, ("nms", False)),
    ],
)
def test_output_format(shape: tuple, classes: int | None, expected: tuple) -> None:
    assert output_format(shape, classes) == expected


@pytest.mark.parametrize("shape", [(1, 84), (1, 2, 3, 4), (1, 3, 3)])
def test_output_format_refuses_unknown_layouts(shape: tuple) -> None:
    with pytest.raises(EngineError, match="model output"):
        output_format(shape)


def test_decode_refuses_too_few_images() -> None:
    with pytest.raises(EngineError, match="expected 2 images, got 1"):
        decode(np.zeros((1, 5, 10), np.float32), [Letterbox(1, 0, 0, 10, 10)] * 2, ["a"])


@pytest.mark.parametrize(
    ("metadata", "names"),
    [
        ("{0: 'person', 1: 'bicycle'}", ["person", "bicycle"]),
        ("{1: 'b', 0: 'a'}", ["a", "b"]),
        ("['x', 'y']", ["x", "y"]),
    ],
)
def test_parse_names(metadata: str, names: list[str]) -> None:
    assert parse_names(metadata) == names


@pytest.mark.parametrize("metadata", ["person, car", "42", "{0: "])
def test_parse_names_refuses_garbage(metadata: str) -> None:
    with pytest.raises(EngineError, match="names"):
        parse_names(metadata)


def test_read_labels(tmp_path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("# coco subset\nperson\n\n bicycle \n")
    assert read_labels(path) == ["person", "bicycle"]
    with pytest.raises(EngineError, match="cannot read"):
        read_labels(tmp_path / "missing.txt")
