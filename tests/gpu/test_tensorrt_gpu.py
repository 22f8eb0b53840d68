"""The tensorrt engine on a real GPU: same squares as the onnx engine, within FP16 tolerance.

Skipped where there is no NVIDIA GPU with TensorRT and pycuda (CI, developers' machines).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import missing
from tests.models import square_detector, square_frame
from vidwatch.config import EngineConfig
from vidwatch.engines import gpu
from vidwatch.engines.onnx import OnnxEngine

pytestmark = pytest.mark.gpu

SCENES = [
    ((240, 320), [(20, 100, 40)]),
    ((480, 640), [(101, 203, 60), (500, 20, 90)]),
    ((240, 320), []),
    ((720, 1280), [(600, 300, 120)]),
    ((360, 200), [(30, 40, 50), (120, 280, 36)]),
]


@pytest.fixture(scope="module")
def tensorrt_engine_cls() -> type:
    absent = gpu.tensorrt_missing()
    if absent is not None:
        missing(f"an NVIDIA GPU with TensorRT ({absent})", ci_has_it=False)
    from vidwatch.engines.tensorrt import TensorRTEngine

    return TensorRTEngine


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_parity_with_onnx(tensorrt_engine_cls: type, tmp_path: Path, batch: int, precision: str) -> None:
    model = square_detector(tmp_path / "squares.onnx")
    frames = [square_frame(shape, squares) for shape, squares in SCENES * 2]
    reference = OnnxEngine(EngineConfig(kind="onnx", model=model), 5.0)
    reference.load()
    engine = tensorrt_engine_cls(
        EngineConfig(kind="tensorrt", model=model, batch=batch, precision=precision, cache_dir=tmp_path / "cache"),
        5.0,
    )
    engine.load()
    try:
        got, want = engine.infer(frames), reference.infer(frames)
        assert [len(f) for f in got] == [len(f) for f in want]
        tol = 1.0 if precision == "fp32" else 3.0  # FP16 moments of a 96 px window
        for found, expected in zip(got, want, strict=True):
            for a, b in zip(found, expected, strict=True):
                assert a.label == b.label
                assert a.box == pytest.approx(b.box, abs=tol)
                assert a.score == pytest.approx(b.score, abs=0.05)
        # the second load uses the cache
        again = tensorrt_engine_cls(engine.config, 5.0)
        again.load()
        assert again.cache_path == engine.cache_path
        again.close()
    finally:
        engine.close()
