"""ONNX Runtime: a YOLO-format detection model on the CPU (or CUDA where onnxruntime-gpu has a GPU).

The session is created in ``load()``, which the worker calls in its own process after
the pool forked; ``onnxruntime`` itself is imported there too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from vidwatch.config import EngineConfig
from vidwatch.detection import Detection
from vidwatch.engines import gpu
from vidwatch.engines.base import register
from vidwatch.engines.model import ModelSpec, read_model
from vidwatch.engines.postprocess import OutputFormat, decode, output_format
from vidwatch.engines.preprocess import letterbox_batch
from vidwatch.errors import EngineError, EngineUnavailable

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def owned_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def choose_providers(available: Sequence[str]) -> list[str]:
    """CUDA first where the runtime has it and a GPU is present, CPU always.

    >>> choose_providers(["AzureExecutionProvider", "CPUExecutionProvider"])
    ['CPUExecutionProvider']
    """
    if CUDA in available and gpu.gpus():
        return [CUDA, CPU]
    return [CPU]


def runtime_errors(ort: Any) -> tuple[type[BaseException], ...]:
    """The exception types ONNX Runtime raises (its own, which derive from Exception only)."""
    state = ort.capi.onnxruntime_pybind11_state
    own = tuple(v for v in vars(state).values() if isinstance(v, type) and issubclass(v, Exception))
    return (*own, RuntimeError, OSError)


class OnnxEngine:
    """letterbox → ONNX Runtime → YOLO decode + NMS, for any batch the model accepts."""

    kind = "onnx"
    stateful = False

    def __init__(self, config: EngineConfig, fps: float) -> None:
        if config.model is None:
            raise EngineError("engine onnx: [engine] model is not set")
        self.config = config
        self.threads = config.threads or owned_cores()
        self.spec: ModelSpec | None = None
        self.providers: list[str] = []
        self._session: Any = None
        self._errors: tuple[type[BaseException], ...] = ()
        self._layout: tuple[OutputFormat, bool] | None = None
        self._buffer: np.ndarray | None = None

    def load(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EngineUnavailable(
                "onnxruntime is not importable: pip install onnxruntime (onnxruntime-gpu for CUDA)"
            ) from exc
        model = self.config.model
        self.spec = read_model(model, labels=self.config.labels, input_size=self.config.input_size)  # type: ignore[arg-type]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # worker processes share cores: a spinning thread would burn the time another one needs
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.providers = choose_providers(ort.get_available_providers())
        self._errors = runtime_errors(ort)
        try:
            self._session = ort.InferenceSession(str(model), sess_options=options, providers=self.providers)
        except self._errors as exc:
            raise EngineError(f"engine onnx: {model}: cannot create a session: {exc}") from exc
        self._layout, self._buffer = None, None
        logger.info(
            "engine onnx: %s input %s %sx%s batch %s, %d classes, providers %s, %d threads",
            model, self.spec.input_name, self.spec.input_hw[1], self.spec.input_hw[0],
            self.spec.batch or "dynamic", len(self.spec.names), ",".join(self.providers), self.threads,
        )

    def reset(self) -> None:
        """Detections depend on the frame alone: nothing to forget."""

    def close(self) -> None:
        self._session = None
        self._buffer = None

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Raw inference: the model's first output for ``batch`` (already pre-processed)."""
        if self._session is None or self.spec is None:
            raise EngineError("engine onnx: infer before load")
        try:
            return self._session.run([self.spec.output_name], {self.spec.input_name: batch})[0]
        except self._errors as exc:
            raise EngineError(f"engine onnx: {self.spec.path}: inference failed: {exc}") from exc

    def _input_buffer(self, count: int) -> np.ndarray:
        """A reused input array for at least ``count`` images: a fresh 40 MB batch costs as much as filling it."""
        spec = self.spec
        if self._buffer is None or self._buffer.shape[0] < count:
            self._buffer = np.empty((count, 3, *spec.input_hw), dtype=spec.input_dtype)  # type: ignore[union-attr]
        return self._buffer[:count]

    def infer(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        if not frames:
            return []
        if self.spec is None:
            raise EngineError("engine onnx: infer before load")
        step = self.spec.batch or len(frames)
        results: list[list[Detection]] = []
        for start in range(0, len(frames), step):
            chunk = frames[start : start + step]
            buffer = self._input_buffer(step)
            batch, boxes = letterbox_batch(chunk, self.spec.input_size, out=buffer)
            if self.spec.batch:
                # a fixed-batch model runs padded: it gets its whole batch, we read back the frames given
                buffer[len(chunk) :] = 0
                batch = buffer
            output = self.run(batch)
            if self._layout is None:
                self._layout = output_format(output.shape, len(self.spec.names) or None)
            results.extend(
                decode(
                    output, boxes, self.spec.names,
                    confidence=self.config.confidence, iou=self.config.iou, layout=self._layout,
                )
            )
        return results


register("onnx")(OnnxEngine)
