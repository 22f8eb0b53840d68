"""The onnx engine finds bright squares through letterbox → infer → decode → NMS → frame pixels."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tests.models import square_detector, square_frame
from vidwatch.config import EngineConfig
from vidwatch.engines import base, gpu
from vidwatch.engines.onnx import OnnxEngine, choose_providers, owned_cores
from vidwatch.errors import EngineError, EngineUnavailable

# (frame height, width), squares (x, y, side) in frame pixels: at most 88 model pixels, far apart
SCENES = [
    ((240, 320), [(20, 100, 40)]),
    ((240, 320), [(10, 10, 30), (250, 170, 44)]),
    ((480, 640), [(101, 203, 60), (500, 20, 90)]),
    ((720, 1280), [(600, 300, 120)]),
    ((360, 200), [(30, 40, 50), (120, 280, 36)]),  # portrait: padded left and right
    ((240, 320), []),
    ((320, 320), [(0, 0, 40), (270, 270, 50)]),  # touching the edges
    ((1080, 1920), [(900, 500, 200), (100, 100, 160)]),
]


def _tolerance_px(shape: tuple[int, int], model_side: int = 320) -> float:
    """One model pixel in frame pixels, plus a pixel: resizing blurs a square's edges by about that."""
    return max(shape) / model_side + 1.0


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "yolo": square_detector(folder / "squares.onnx"),
        "nms": square_detector(folder / "squares-nms.onnx", fmt="nms"),
        "fixed1": square_detector(folder / "squares-b1.onnx", batch=1),
        "fixed4": square_detector(folder / "squares-b4.onnx", batch=4),
        "nameless": square_detector(folder / "squares-nameless.onnx", names=None),
    }


def _engine(model: Path, **config: object) -> OnnxEngine:
    engine = OnnxEngine(EngineConfig(kind="onnx", model=model, **config), 5.0)
    engine.load()
    return engine


def _check(found: list, squares: list[tuple[int, int, int]], shape: tuple[int, int]) -> None:
    assert len(found) == len(squares), f"expected {len(squares)} squares, got {found}"
    tol = _tolerance_px(shape)
    for x, y, side in squares:
        matches = [d for d in found if abs(d.box[0] - x) <= tol and abs(d.box[1] - y) <= tol]
        assert len(matches) == 1, f"square at {(x, y, side)} not found in {found}"
        det = matches[0]
        assert det.label == "square"
        assert det.score > 0.9
        assert det.box == pytest.approx((x, y, x + side, y + side), abs=tol)


@pytest.mark.parametrize("model", ["yolo", "nms", "fixed1", "fixed4"])
@pytest.mark.parametrize("batch", [1, 8])
def test_finds_squares_with_exact_boxes(models: dict[str, Path], model: str, batch: int) -> None:
    engine = _engine(models[model])
    frames = [square_frame(shape, squares) for shape, squares in SCENES]
    found: list = []
    for start in range(0, len(frames), batch):
        found.extend(engine.infer(frames[start : start + batch]))
    assert len(found) == len(SCENES)
    for detections, (shape, squares) in zip(found, SCENES, strict=True):
        _check(detections, squares, shape)


def test_no_false_positives_on_noise_and_grey(models: dict[str, Path]) -> None:
    rng = np.random.default_rng(1)
    frames = [
        rng.integers(0, 140, size=(240, 320, 3), dtype=np.uint8),  # dark noise
        np.full((480, 640, 3), 114, np.uint8),  # the letterbox grey
        np.zeros((100, 700, 3), np.uint8),  # very wide: mostly padding
    ]
    assert _engine(models["yolo"]).infer(frames) == [[], [], []]


def test_labels_file_overrides_the_metadata(models: dict[str, Path], tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("box\n")
    (found,) = _engine(models["yolo"], labels=labels).infer([square_frame((240, 320), [(20, 100, 40)])])
    assert [d.label for d in found] == ["box"]


def test_model_without_names_gets_generic_labels(models: dict[str, Path]) -> None:
    (found,) = _engine(models["nameless"]).infer([square_frame((240, 320), [(20, 100, 40)])])
    assert [d.label for d in found] == ["class0"]


def test_session_is_made_for_shared_cores(models: dict[str, Path]) -> None:
    engine = _engine(models["yolo"], threads=1)
    options = engine._session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert engine._session.get_providers() == ["CPUExecutionProvider"]
    assert _engine(models["yolo"]).threads == owned_cores()


def test_providers_cuda_only_with_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    available = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(gpu, "gpus", lambda: ())
    assert choose_providers(available) == ["CPUExecutionProvider"]
    monkeypatch.setattr(gpu, "gpus", lambda: (gpu.Gpu(0, "NVIDIA H100", "9.0", 81559),))
    assert choose_providers(available) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_missing_runtime_is_unavailable_with_the_fix(models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    engine = OnnxEngine(EngineConfig(kind="onnx", model=models["yolo"]), 5.0)
    with pytest.raises(EngineUnavailable, match="pip install onnxruntime"):
        engine.load()


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "file not found"), (b"not a model", "not a readable ONNX file")],
)
def test_bad_model_file(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(EngineError, match=message):
        _engine(path)


def test_no_model_configured_is_refused() -> None:
    with pytest.raises(EngineError, match="model is not set"):
        OnnxEngine(EngineConfig(kind="onnx"), 5.0)


@pytest.mark.parametrize(
    ("model", "missing", "kind"),
    [
        (None, None, "opencv"),
        (None, "no GPU", "opencv"),
        ("m.onnx", "no GPU", "onnx"),
        ("m.onnx", None, "tensorrt"),
    ],
)
def test_auto_choice(monkeypatch: pytest.MonkeyPatch, model: str | None, missing: str | None, kind: str) -> None:
    monkeypatch.setattr(gpu, "tensorrt_missing", lambda: missing)
    chosen, why = base.choose_kind(EngineConfig(model=model))
    assert chosen == kind
    assert why
    if missing and model:
        assert missing in why
