"""The tensorrt engine against fakes of TensorRT and pycuda (written from their documented APIs).

What the GPU would do is stood in for by ONNX Runtime on host memory; what is checked is
everything around it: cache keys and invalidation, profile shapes from the model, buffer
sizes from shapes and dtypes, the bind → copy → execute → copy order, double buffering,
TensorRT 10 vs 11, and the error paths.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import install_gpu_fakes, pycuda_driver
from tests.fakes import tensorrt as fake_trt
from tests.models import square_detector, square_frame
from vidwatch.config import EngineConfig
from vidwatch.engines import trt_cache
from vidwatch.engines.onnx import OnnxEngine
from vidwatch.engines.tensorrt import TensorRTEngine, TrtRunner
from vidwatch.errors import EngineError, EngineUnavailable

SCENES = [
    ((240, 320), [(20, 100, 40)]),
    ((480, 640), [(101, 203, 60), (500, 20, 90)]),
    ((240, 320), []),
    ((720, 1280), [(600, 300, 120)]),
    ((360, 200), [(30, 40, 50), (120, 280, 36)]),
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "yolo": square_detector(folder / "squares.onnx"),
        "fixed4": square_detector(folder / "squares-b4.onnx", batch=4),
    }


@pytest.fixture
def trt(monkeypatch: pytest.MonkeyPatch):
    return install_gpu_fakes(monkeypatch)


def _config(model: Path, cache: Path, **extra: object) -> EngineConfig:
    return EngineConfig(kind="tensorrt", model=model, cache_dir=cache, **extra)


def _loaded(model: Path, cache: Path, **extra: object) -> TensorRTEngine:
    engine = TensorRTEngine(_config(model, cache, **extra), 5.0)
    engine.load()
    return engine


def _frames(count: int) -> list[np.ndarray]:
    return [square_frame(shape, squares) for shape, squares in (SCENES * 4)[:count]]


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_same_detections_as_onnx(trt, models: dict[str, Path], tmp_path: Path, batch: int) -> None:
    frames = _frames(10)
    reference = OnnxEngine(EngineConfig(kind="onnx", model=models["yolo"]), 5.0)
    reference.load()
    engine = _loaded(models["yolo"], tmp_path, batch=batch)
    assert engine.infer(frames) == reference.infer(frames)
    assert [len(found) for found in engine.infer(frames[:2])] == [1, 2]


def test_fixed_batch_engine_runs_padded(trt, models: dict[str, Path], tmp_path: Path) -> None:
    engine = _loaded(models["fixed4"], tmp_path, batch=8)
    assert trt.CALLS.profiles == [{"images": ((4, 3, 320, 320),) * 3}]
    found = engine.infer(_frames(5))
    assert [len(f) for f in found] == [1, 2, 0, 1, 2]
    shapes = [entry[2] for entry in pycuda_driver.STATE.log if entry[0] == "set_input_shape"]
    assert set(shapes) == {(4, 3, 320, 320)}


def test_profile_and_builder_settings_tensorrt10(trt, models: dict[str, Path], tmp_path: Path) -> None:
    _loaded(models["yolo"], tmp_path, batch=6, workspace_mib=256)
    assert trt.CALLS.profiles == [{"images": ((1, 3, 320, 320), (6, 3, 320, 320), (6, 3, 320, 320))}]
    assert trt.CALLS.pool_limits == [(fake_trt.MemoryPoolType.WORKSPACE, 256 << 20)]
    assert trt.CALLS.builder_flags == [trt.BuilderFlag.FP16]
    assert trt.CALLS.network_flags == [0]


def test_fp32_sets_no_precision_flag(trt, models: dict[str, Path], tmp_path: Path) -> None:
    _loaded(models["yolo"], tmp_path, precision="fp32")
    assert trt.CALLS.builder_flags == []


def test_tensorrt11_builds_strongly_typed_without_precision_flags(
    monkeypatch: pytest.MonkeyPatch, models: dict[str, Path], tmp_path: Path
) -> None:
    trt = install_gpu_fakes(monkeypatch, version="11.1.0.7")
    assert not hasattr(trt.BuilderFlag, "FP16")
    engine = _loaded(models["yolo"], tmp_path)
    assert trt.CALLS.builder_flags == []
    assert trt.CALLS.network_flags == [1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)]
    meta = json.loads(engine.cache_path.with_name(engine.cache_path.name + ".json").read_text())
    assert meta["key"]["precision"] == "as-typed"
    assert meta["key"]["tensorrt_version"] == "11.1.0.7"


def test_second_load_uses_the_cache(trt, models: dict[str, Path], tmp_path: Path) -> None:
    first = _loaded(models["yolo"], tmp_path)
    second = _loaded(models["yolo"], tmp_path)
    assert trt.CALLS.builds == 1
    assert first.cache_path == second.cache_path
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        first.cache_path.name,
        first.cache_path.name + ".json",
    ]


@pytest.mark.parametrize(
    ("change", "extra"),
    [
        ("batch", {"batch": 4}),
        ("precision", {"precision": "fp32"}),
        ("tensorrt version", {}),
        ("gpu", {}),
        ("model", {}),
    ],
)
def test_cache_key_changes_rebuild(
    monkeypatch: pytest.MonkeyPatch, models: dict[str, Path], tmp_path: Path, change: str, extra: dict
) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(models["yolo"].read_bytes())
    install_gpu_fakes(monkeypatch)
    first = _loaded(model, tmp_path / "cache")
    if change == "tensorrt version":
        trt = install_gpu_fakes(monkeypatch, version="10.14.1.48")
    elif change == "gpu":
        trt = install_gpu_fakes(monkeypatch, gpu_name="NVIDIA L4", capability=(8, 9))
    else:
        trt = install_gpu_fakes(monkeypatch)
    if change == "model":
        square_detector(model, names="{0: 'box'}")
    second = _loaded(model, tmp_path / "cache", **extra)
    assert trt.CALLS.builds == 1, f"a changed {change} must rebuild"
    assert second.cache_path != first.cache_path


def test_cache_key_covers_every_input() -> None:
    base = dict(
        model_sha256="a" * 64, tensorrt_version="10.13.0", gpu_name="NVIDIA H100", compute_capability="9.0",
        precision="fp16", profiles=(("images", (1, 3, 640, 640), (8, 3, 640, 640), (8, 3, 640, 640)),),
    )
    digests = {trt_cache.CacheKey(**base).digest()}
    for field, value in [
        ("model_sha256", "b" * 64), ("tensorrt_version", "10.13.1"), ("gpu_name", "NVIDIA A100"),
        ("compute_capability", "8.0"), ("precision", "fp32"),
        ("profiles", (("images", (1, 3, 640, 640), (4, 3, 640, 640), (4, 3, 640, 640)),)),
    ]:
        digests.add(trt_cache.CacheKey(**{**base, field: value}).digest())
    assert len(digests) == 7


@pytest.mark.parametrize("damage", ["truncated", "foreign sidecar", "no sidecar", "does not deserialize"])
def test_damaged_or_foreign_cache_is_a_miss(
    trt, models: dict[str, Path], tmp_path: Path, damage: str
) -> None:
    path = _loaded(models["yolo"], tmp_path).cache_path
    sidecar = path.with_name(path.name + ".json")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "foreign sidecar":
        meta = json.loads(sidecar.read_text())
        meta["key"]["gpu_name"] = "NVIDIA A100"
        sidecar.write_text(json.dumps(meta))
    elif damage == "no sidecar":
        sidecar.unlink()
    else:
        trt.CALLS.deserialize_none = 1
    engine = _loaded(models["yolo"], tmp_path)
    assert trt.CALLS.builds == 2
    assert engine.infer(_frames(1))[0][0].label == "square"
    assert trt_cache.load(path, _key_of(path)) is not None  # rebuilt and stored again


def _key_of(path: Path) -> trt_cache.CacheKey:
    data = json.loads(path.with_name(path.name + ".json").read_text())["key"]
    data["profiles"] = tuple((n, tuple(a), tuple(b), tuple(c)) for n, a, b, c in data["profiles"])
    return trt_cache.CacheKey(**data)


def test_engine_from_another_tensorrt_version_is_rebuilt(
    monkeypatch: pytest.MonkeyPatch, models: dict[str, Path], tmp_path: Path
) -> None:
    """A cache file whose key says 10.13 but whose bytes another version wrote: deserialization returns None."""
    install_gpu_fakes(monkeypatch, version="10.12.0.36")
    foreign = _loaded(models["yolo"], tmp_path / "a").cache_path.read_bytes()
    trt = install_gpu_fakes(monkeypatch)
    path = _loaded(models["yolo"], tmp_path / "b").cache_path
    key = _key_of(path)
    trt_cache.store(path, key, foreign)
    _loaded(models["yolo"], tmp_path / "b")
    assert trt.CALLS.builds == 2


def test_order_bind_copy_execute_copy_and_double_buffering(trt, models: dict[str, Path], tmp_path: Path) -> None:
    engine = _loaded(models["yolo"], tmp_path, batch=2)
    runner = engine.runner
    copy, compute = runner.copy_stream.handle, runner.compute_stream.handle
    pycuda_driver.STATE.log.clear()
    engine.infer(_frames(5))  # batches of 2, 2, 1
    log = [e for e in pycuda_driver.STATE.log if e[0] != "mem_alloc"]
    slots = runner.slots
    per_batch = []
    for i, slot in enumerate([slots[0], slots[1], slots[0]]):
        count = [2, 2, 1][i]
        per_batch.append(
            [
                ("htod", copy, int(slot.device_in), count * 3 * 320 * 320 * 4),
                ("record", copy, slot.uploaded.id),
                ("wait", compute, slot.uploaded.id),
                ("set_input_shape", "images", (count, 3, 320, 320)),
                ("set_tensor_address", "images", int(slot.device_in)),
                ("set_tensor_address", "output0", int(slot.device_out["output0"])),
                ("execute", compute),
                ("dtoh", compute, int(slot.device_out["output0"]), count * 5 * 1600 * 4),
                ("record", compute, slot.done.id),
            ]
        )
    sync = [("event_sync", slots[0].done.id), ("event_sync", slots[1].done.id), ("event_sync", slots[0].done.id)]
    # batch 2 is uploaded and queued before batch 1's results are waited for: the GPU never idles on the CPU
    assert log == [*per_batch[0], *per_batch[1], sync[0], *per_batch[2], sync[1], sync[2]]
    assert int(slots[0].device_in) != int(slots[1].device_in)


def test_buffers_sized_from_shapes_and_dtypes(trt, models: dict[str, Path], tmp_path: Path) -> None:
    runner = _loaded(models["yolo"], tmp_path, batch=8).runner
    for slot in runner.slots:
        assert slot.host_in.shape == (8, 3, 320, 320)
        assert slot.host_in.dtype == np.float32
        assert slot.host_out["output0"].shape == (8 * 5 * 1600,)
        assert slot.device_in.nbytes == slot.host_in.nbytes
        assert slot.device_out["output0"].nbytes == 8 * 5 * 1600 * 4
        assert any(np.may_share_memory(slot.host_in, p) for p in pycuda_driver.STATE.pinned)


class _HalfEngine:
    """An engine description with an fp16 input and two outputs of other types."""

    def __init__(self) -> None:
        self.tensors = {
            "images": (fake_trt.TensorIOMode.INPUT, fake_trt.DataType.HALF, (-1, 3, 64, 64)),
            "boxes": (fake_trt.TensorIOMode.OUTPUT, fake_trt.DataType.HALF, (-1, 100, 6)),
            "count": (fake_trt.TensorIOMode.OUTPUT, fake_trt.DataType.INT32, (-1, 1)),
        }
        self.num_io_tensors = 3

    def get_tensor_name(self, i: int) -> str:
        return list(self.tensors)[i]

    def get_tensor_mode(self, name: str):
        return self.tensors[name][0]

    def get_tensor_dtype(self, name: str):
        return self.tensors[name][1]

    def get_tensor_profile_shape(self, name: str, index: int):
        return [(1, 3, 64, 64), (4, 3, 64, 64), (4, 3, 64, 64)]

    def create_execution_context(self):
        engine = self

        class Context:
            batch = -1

            def set_input_shape(self, name, shape):
                self.batch = shape[0]
                return shape[0] <= 4

            def get_tensor_shape(self, name):
                return (self.batch, *engine.tensors[name][2][1:])

        return Context()


def test_buffer_dtypes_follow_the_engine(trt) -> None:
    runner = TrtRunner(trt, pycuda_driver, _HalfEngine(), (64, 64))
    slot = runner.slots[0]
    assert slot.host_in.dtype == np.float16
    assert slot.host_in.nbytes == 4 * 3 * 64 * 64 * 2
    assert slot.host_out["boxes"].dtype == np.float16
    assert slot.device_out["boxes"].nbytes == 4 * 100 * 6 * 2
    assert slot.host_out["count"].dtype == np.int32
    assert slot.device_out["count"].nbytes == 4 * 4
    with pytest.raises(EngineError, match="set_input_shape"):
        runner.submit(slot, 5)
    runner.close()
    assert all(a.freed for a in pycuda_driver.STATE.allocations)


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("tensorrt", "tensorrt is not importable: install vidwatch\\[gpu\\]"),
        ("pycuda.driver", "pycuda is not importable"),
        ("pycuda.autoprimaryctx", "pycuda.autoprimaryctx is not importable"),
    ],
)
def test_missing_runtime_is_unavailable(
    trt, monkeypatch: pytest.MonkeyPatch, models: dict[str, Path], tmp_path: Path, missing: str, message: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(EngineUnavailable, match=message):
        _loaded(models["yolo"], tmp_path)


def test_old_tensorrt_is_unavailable(monkeypatch: pytest.MonkeyPatch, models: dict[str, Path], tmp_path) -> None:
    install_gpu_fakes(monkeypatch, version="8.6.1")
    with pytest.raises(EngineUnavailable, match="10 or later"):
        _loaded(models["yolo"], tmp_path)


def test_parser_errors_are_reported(trt, models: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "broken.onnx"
    data = bytearray(models["yolo"].read_bytes())
    model.write_bytes(bytes(data))
    # an op the checker does not know: readable by read_model, refused by the parser
    import onnx

    proto = onnx.load(str(model))
    proto.graph.node[0].op_type = "NoSuchOp"
    onnx.save(proto, str(model))
    with pytest.raises(EngineError, match="ONNX parser failed: ParserError"):
        _loaded(model, tmp_path / "cache")


def test_failed_build_and_failed_execution(trt, models: dict[str, Path], tmp_path: Path) -> None:
    trt.CALLS.fail_build = True
    with pytest.raises(EngineError, match="build_serialized_network failed"):
        _loaded(models["yolo"], tmp_path)
    assert not list(tmp_path.glob("*.engine"))
    trt.CALLS.fail_build = False
    engine = _loaded(models["yolo"], tmp_path)
    trt.CALLS.fail_execute = True
    with pytest.raises(EngineError, match="execute_async_v3 failed"):
        engine.infer(_frames(1))


def test_no_model_configured_is_refused() -> None:
    with pytest.raises(EngineError, match="model is not set"):
        TensorRTEngine(EngineConfig(kind="tensorrt"), 5.0)


def test_importing_the_engines_loads_no_runtime() -> None:
    """Heavy runtimes are imported in load(): a CPU-only host imports every engine module."""
    code = (
        "import sys, vidwatch.engines, vidwatch.engines.report;"
        "print(sorted(m for m in ('tensorrt', 'pycuda', 'onnxruntime') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_auto_falls_back_to_onnx_when_tensorrt_cannot_load(
    trt, monkeypatch: pytest.MonkeyPatch, models: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from vidwatch.engines import gpu, load_engine

    monkeypatch.setattr(gpu, "tensorrt_missing", lambda: None)
    trt.CALLS.fail_build = True
    auto = EngineConfig(kind="auto", model=models["yolo"], cache_dir=tmp_path)
    engine = load_engine(auto, 5.0)
    assert engine.kind == "onnx"
    assert "tensorrt could not load" in caplog.text
    assert [len(f) for f in engine.infer(_frames(2))] == [1, 2]
    with pytest.raises(EngineError, match="build_serialized_network failed"):
        load_engine(auto.model_copy(update={"kind": "tensorrt"}), 5.0)
    trt.CALLS.fail_build = False
    assert load_engine(auto, 5.0).kind == "tensorrt"
