"""What doctor will print about engines and models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.models import square_detector
from vidwatch.config import Config, EngineConfig
from vidwatch.engines import gpu
from vidwatch.engines.report import engine_checks, model_report


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "gpus", lambda: ())
    monkeypatch.setattr(gpu, "tensorrt_version", lambda: None)
    monkeypatch.setattr(gpu, "pycuda_installed", lambda: False)


def _by_name(checks: list[tuple[str, str, str]]) -> dict[str, tuple[str, str]]:
    return {name: (status, detail) for status, name, detail in checks}


def test_checks_without_a_model_pick_opencv(no_gpu: None) -> None:
    checks = _by_name(engine_checks(Config()))
    assert checks["engine"][0] == "OK"
    assert checks["engine"][1].startswith("opencv")
    assert checks["gpu"][0] == "WARN"
    assert checks["tensorrt"] == ("WARN", "not installed: pip install 'vidwatch[gpu]'")
    assert checks["model"][0] == "OK"


def test_checks_with_a_model_pick_onnx_and_say_why(no_gpu: None, tmp_path: Path) -> None:
    model = square_detector(tmp_path / "squares.onnx")
    checks = _by_name(engine_checks(Config(engine=EngineConfig(model=model))))
    assert checks["engine"][1].startswith("onnx")
    assert "no NVIDIA GPU" in checks["engine"][1]
    assert checks["model"] == ("OK", f"{model}: input images 320x320, batch dynamic, 1 classes")
    assert checks["onnxruntime"][0] == "OK"


@pytest.mark.parametrize(
    ("engine", "failing"),
    [
        ({"kind": "tensorrt", "model": "squares.onnx"}, {"gpu", "tensorrt", "pycuda"}),
        ({"kind": "onnx"}, {"model"}),
        ({"kind": "onnx", "model": "missing.onnx"}, {"model"}),
    ],
)
def test_checks_fail_what_the_configured_engine_needs(
    no_gpu: None, tmp_path: Path, engine: dict, failing: set[str]
) -> None:
    square_detector(tmp_path / "squares.onnx")
    if "model" in engine:
        engine = {**engine, "model": tmp_path / engine["model"]}
    checks = engine_checks(Config(engine=EngineConfig(**engine)))
    assert {name for status, name, _ in checks if status == "FAIL"} == failing


def test_model_report(tmp_path: Path) -> None:
    report = model_report(square_detector(tmp_path / "squares.onnx"), batch=2, runs=1)
    assert "input  images ['batch', 3, 320, 320] tensor(float)" in report
    assert "output output0 ['batch', 5, 1600] tensor(float)" in report
    assert "format yolo [B, 4+classes, N], output [2, 5, 1600]" in report
    assert "classes 1: square" in report
    assert "timing batch 2:" in report
