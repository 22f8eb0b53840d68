"""Inference engines behind one interface; importing this package registers them."""

from vidwatch.engines import onnx as _onnx  # noqa: F401 - registers the engine
from vidwatch.engines import opencv as _opencv  # noqa: F401 - registers the engine
from vidwatch.engines import tensorrt as _tensorrt  # noqa: F401 - registers the engine
from vidwatch.engines.base import (
    Detection,
    Engine,
    choose_kind,
    create_engine,
    load_engine,
    register,
    registered,
)

__all__ = ["Detection", "Engine", "choose_kind", "create_engine", "load_engine", "register", "registered"]
