"""The engine interface and the registry of engines (:class:`Detection` lives in :mod:`vidwatch.detection`).

An engine is one module: a class with ``kind`` that implements :class:`Engine` and is
registered with :func:`register`. Heavy runtimes are imported in ``load()`` so every
host can import every engine module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from vidwatch.config import EngineConfig
from vidwatch.detection import Detection
from vidwatch.engines import gpu
from vidwatch.errors import EngineError, EngineUnavailable
from vidwatch.registry import Registry

logger = logging.getLogger(__name__)

__all__ = [
    "Detection", "Engine", "EngineFactory", "choose_kind", "create_engine", "load_engine", "register", "registered",
]


class Engine(Protocol):
    """Load once per worker process, then ``infer`` batches of frames of one video in order."""

    kind: str
    # True: detections depend on earlier frames of the video (background models), so the
    # engine resets per segment, sees the pre-roll, and is never shared between segments
    stateful: bool

    def load(self) -> None: ...

    def reset(self) -> None:
        """Forget per-video state (background models) before a new video or segment."""

    def infer(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detections per frame, boxes in the pixels of the given frames."""

    def close(self) -> None: ...


EngineFactory = Callable[[EngineConfig, float], Engine]
_REGISTRY: Registry[EngineFactory] = Registry("engine kind", EngineError)


def register(kind: str) -> Callable[[EngineFactory], EngineFactory]:
    """Register a factory under ``kind``; a duplicate is an error."""
    return _REGISTRY.register(kind)


def registered() -> list[str]:
    return _REGISTRY.names()


def choose_kind(config: EngineConfig) -> tuple[str, str]:
    """The engine ``kind = "auto"`` resolves to, and why.

    tensorrt where a model is configured and a GPU, TensorRT and pycuda are present; else
    onnx where a model is configured; else opencv.
    """
    if config.kind != "auto":
        return config.kind, "configured"
    if config.model is None:
        return "opencv", "no model configured: classical motion and people detection"
    missing = gpu.tensorrt_missing()
    if missing is None and "tensorrt" in _REGISTRY:
        return "tensorrt", f"a model is configured ({config.model}) and a GPU with TensorRT is present"
    if "onnx" in _REGISTRY:
        return "onnx", f"a model is configured ({config.model}); not tensorrt: {missing or 'not registered'}"
    return "opencv", "a model is configured but no model engine is registered"


def create_engine(config: EngineConfig, fps: float) -> Engine:
    """Build (not load) the configured engine."""
    kind, why = choose_kind(config)
    factory = _REGISTRY.get(kind)
    if factory is None:
        raise EngineUnavailable(f"engine {kind!r} is not available in this build (have: {', '.join(registered())})")
    logger.info("engine: %s (%s)", kind, why)
    return factory(config, fps)


def load_engine(config: EngineConfig, fps: float) -> Engine:
    """Build and load the configured engine, in the process that will use it (after any fork).

    Where ``auto`` chose tensorrt and it cannot load (CUDA does not start, the ONNX parser
    refuses the model), the onnx engine runs the same model instead, with a warning.
    """
    engine = create_engine(config, fps)
    try:
        engine.load()
    except EngineError as exc:
        if config.kind != "auto" or engine.kind != "tensorrt" or "onnx" not in _REGISTRY:
            raise
        logger.warning("engine: tensorrt could not load (%s): falling back to onnx", exc)
        engine = _REGISTRY["onnx"](config, fps)
        engine.load()
    return engine
