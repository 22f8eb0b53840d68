"""What ``vidwatch doctor`` says about the engines: which one runs and why, and what a model file holds.

Example (not run: needs a model or a video)::

    for status, name, detail in engine_checks(config): print(status, name, detail)
    OK    engine        onnx (a model is configured (/models/yolo11n.onnx); not tensorrt: no NVIDIA GPU ...)
    print(model_report(Path("yolo11n.onnx"), batch=8))
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import time
from pathlib import Path

import numpy as np

from vidwatch.config import Config, EngineConfig
from vidwatch.engines import gpu
from vidwatch.engines.base import choose_kind
from vidwatch.engines.model import read_model
from vidwatch.engines.onnx import OnnxEngine
from vidwatch.engines.postprocess import output_format
from vidwatch.engines.tensorrt import DEFAULT_CACHE_DIR
from vidwatch.errors import EngineError

Check = tuple[str, str, str]  # ("OK" | "WARN" | "FAIL", name, detail)


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def engine_checks(config: Config) -> list[Check]:
    """The engine choice and each thing it depends on, as (status, name, detail)."""
    engine = config.engine
    kind, why = choose_kind(engine)
    checks: list[Check] = [("OK", "engine", f"{kind} ({why})")]
    found = gpu.gpus()
    needs_gpu = kind == "tensorrt"
    if found:
        listed = ", ".join(f"{g.name} (cc {g.compute_capability}, {g.memory_mib} MiB)" for g in found)
        checks.append(("OK", "gpu", listed))
    else:
        checks.append(("FAIL" if needs_gpu else "WARN", "gpu", "none found (nvidia-smi): CPU engines only"))
    trt_version = gpu.tensorrt_version()
    if trt_version is not None:
        checks.append(("OK", "tensorrt", trt_version))
    else:
        checks.append(("FAIL" if needs_gpu else "WARN", "tensorrt", "not installed: pip install 'vidwatch[gpu]'"))
    if gpu.pycuda_installed():
        checks.append(("OK", "pycuda", _version("pycuda") or "installed"))
    else:
        checks.append(("FAIL" if needs_gpu else "WARN", "pycuda", "not installed: pip install 'vidwatch[gpu]'"))
    checks.append(_onnxruntime_check(kind))
    checks.extend(_model_checks(engine, kind))
    if kind == "tensorrt":
        checks.append(_cache_check(engine.cache_dir or DEFAULT_CACHE_DIR.absolute()))
    return checks


def _onnxruntime_check(kind: str) -> Check:
    if importlib.util.find_spec("onnxruntime") is None:
        return ("FAIL" if kind == "onnx" else "WARN", "onnxruntime", "not installed: pip install onnxruntime")
    import onnxruntime as ort

    return ("OK", "onnxruntime", f"{ort.__version__} ({', '.join(ort.get_available_providers())})")


def _model_checks(engine: EngineConfig, kind: str) -> list[Check]:
    if engine.model is None:
        status = "FAIL" if kind in ("onnx", "tensorrt") else "OK"
        return [(status, "model", "none configured ([engine] model)")]
    try:
        spec = read_model(engine.model, labels=engine.labels, input_size=engine.input_size)
    except EngineError as exc:
        return [("FAIL", "model", str(exc))]
    classes = f"{len(spec.names)} classes" if spec.names else "no class names (labels: class<N>)"
    return [
        (
            "OK" if spec.names else "WARN",
            "model",
            f"{spec.path}: input {spec.input_name} {spec.input_hw[1]}x{spec.input_hw[0]}, "
            f"batch {spec.batch or 'dynamic'}, {classes}",
        )
    ]


def _cache_check(cache_dir: Path) -> Check:
    probe = cache_dir if cache_dir.exists() else next((p for p in cache_dir.parents if p.exists()), Path("/"))
    if os.access(probe, os.W_OK):
        return ("OK", "engine cache", str(cache_dir))
    return ("FAIL", "engine cache", f"{cache_dir}: not writable by this user")


def model_report(
    path: Path, batch: int = 1, *, labels: Path | None = None, input_size: int = 640, runs: int = 3
) -> str:
    """Inputs, outputs, classes and a CPU timing of the model at ``path``, as printable lines."""
    config = EngineConfig(kind="onnx", model=path, labels=labels, input_size=input_size, batch=batch)
    engine = OnnxEngine(config, 1.0)
    engine.load()
    spec, session = engine.spec, engine._session
    if spec is None or session is None:
        raise EngineError(f"engine onnx: {path}: loaded without a model spec")
    lines = [f"model {path}"]
    for item in session.get_inputs():
        lines.append(f"  input  {item.name} {item.shape} {item.type}")
    for item in session.get_outputs():
        lines.append(f"  output {item.name} {item.shape} {item.type}")
    step = spec.batch or batch
    batch_input = np.random.default_rng(0).random((step, 3, *spec.input_hw), dtype=np.float32)
    output = engine.run(batch_input.astype(spec.input_dtype))  # warm-up, and the real output shape
    fmt, anchors_last = output_format(output.shape, len(spec.names) or None)
    layout = "[B, 4+classes, N]" if fmt == "yolo" and anchors_last else "[B, N, 4+classes]" if fmt == "yolo" else (
        "[B, N, 6] (NMS in the graph)"
    )
    lines.append(f"  format {fmt} {layout}, output {list(output.shape)}")
    shown = ", ".join(spec.names[:10]) + (", ..." if len(spec.names) > 10 else "")
    lines.append(f"  classes {len(spec.names)}: {shown or 'none named (labels file or class<N>)'}")
    started = time.perf_counter()
    for _ in range(runs):
        engine.run(batch_input.astype(spec.input_dtype))
    per_batch_s = (time.perf_counter() - started) / runs
    lines.append(
        f"  timing batch {step}: {per_batch_s * 1000:.1f} ms per batch, {per_batch_s * 1000 / step:.1f} ms per frame "
        f"({', '.join(engine.providers)}, {engine.threads} threads)"
    )
    engine.close()
    return "\n".join(lines)
