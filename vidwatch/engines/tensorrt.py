"""TensorRT: an ONNX detection model built into a cached engine and run double-buffered on a stream.

Kept thin on purpose: what TensorRT and pycuda do is a few calls each, all in this
module, and everything around them (cache keys, profile shapes, buffer sizes, the
bind → copy → execute → copy order) is plain Python tested against a fake of that surface.

- Build (``build_serialized``): Builder → network → OnnxParser → builder config with a
  workspace limit and one optimization profile for batch 1..``[engine] batch`` →
  ``build_serialized_network``. TensorRT 10 takes the FP16 builder flag; TensorRT 11
  removed the precision flags (networks are strongly typed), so there the precision is
  the ONNX file's own (convert it beforehand, e.g. with ModelOpt AutoCast). The branch is
  on TensorRT's major version.
- Run (``TrtRunner``): the tensor-name API (``num_io_tensors``, ``get_tensor_name``,
  ``get_tensor_mode``, ``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``).
  Two slots of page-locked host and device buffers: while the GPU runs one batch, the
  CPU letterboxes the next into the other slot and its upload goes on a copy stream,
  which the compute stream waits for with an event.
- CUDA: pycuda's primary context (``pycuda.autoprimaryctx``, the one TensorRT shares),
  imported in ``load()``, which the worker calls in its own process after any fork.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidwatch.config import EngineConfig
from vidwatch.detection import Detection
from vidwatch.engines import trt_cache
from vidwatch.engines.base import register
from vidwatch.engines.model import ModelSpec, read_model
from vidwatch.engines.postprocess import OutputFormat, decode, output_format
from vidwatch.engines.preprocess import letterbox_batch
from vidwatch.errors import EngineError, EngineUnavailable
from vidwatch.fileio import sha256_file

logger = logging.getLogger(__name__)

INSTALL_HINT = "install vidwatch[gpu] on a host with an NVIDIA driver"
SLOTS = 2
DEFAULT_CACHE_DIR = Path("var/engines")  # where no configuration was loaded (load_config sets <state_dir>/engines)


def major_version(version: str) -> int:
    """
    >>> major_version("10.13.0.35"), major_version("11.0.0")
    (10, 11)
    """
    try:
        return int(version.split(".", maxsplit=1)[0])
    except ValueError as exc:
        raise EngineUnavailable(f"tensorrt: cannot read the version {version!r}") from exc


def precision_for(major: int, precision: str) -> str:
    """What the cache key records: TensorRT 11 builds the types written in the ONNX file.

    >>> precision_for(10, "fp16"), precision_for(11, "fp16")
    ('fp16', 'as-typed')
    """
    return precision if major < 11 else "as-typed"


def profile_shapes(spec: ModelSpec, max_batch: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) input shapes: batch 1..``max_batch`` (optimised for the largest), or the model's fixed batch."""
    height, width = spec.input_hw
    if spec.batch is not None:
        fixed = (spec.batch, 3, height, width)
        return fixed, fixed, fixed
    return (1, 3, height, width), (max_batch, 3, height, width), (max_batch, 3, height, width)


def build_serialized(trt: Any, spec: ModelSpec, shapes: tuple, *, precision: str, workspace_mib: int) -> bytes:
    """Parse the ONNX file and build a serialized engine with one optimization profile."""
    major = major_version(trt.__version__)
    trt_logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(trt_logger)
    flags = 0
    if major >= 11:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, trt_logger)
    if not parser.parse_from_file(str(spec.path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f"engine tensorrt: {spec.path}: the ONNX parser failed: {errors or 'no detail'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    if major < 11 and precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    elif major >= 11 and precision == "fp16":
        logger.info("engine tensorrt: TensorRT %s builds the precision in the ONNX file (convert to FP16 first)",
                    trt.__version__)
    profile = builder.create_optimization_profile()
    profile.set_shape(spec.input_name, *shapes)
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"engine tensorrt: {spec.path}: build_serialized_network failed (see TensorRT's log)")
    return bytes(serialized)


def _volume(shape: Sequence[int]) -> int:
    return math.prod(int(d) for d in shape)


@dataclass
class Slot:
    """One batch's buffers: page-locked host memory and device memory for every I/O tensor."""

    host_in: np.ndarray  # (max_batch, 3, H, W)
    device_in: Any
    host_out: dict[str, np.ndarray]  # flat, sized for the largest batch
    device_out: dict[str, Any]
    uploaded: Any  # event on the copy stream: the input is on the device
    done: Any  # event on the compute stream: outputs are back in host memory
    count: int = 0
    out_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


class TrtRunner:
    """Raw inference on a deserialized engine: bind → upload → execute → download, two slots in flight."""

    def __init__(self, trt: Any, cuda: Any, engine: Any, input_hw: tuple[int, int]) -> None:
        self.trt, self.cuda, self.engine = trt, cuda, engine
        self.context = engine.create_execution_context()
        if self.context is None:
            raise EngineError("engine tensorrt: create_execution_context failed (out of device memory?)")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or not self.outputs:
            raise EngineError(f"engine tensorrt: expected one input and some outputs, got {inputs} → {self.outputs}")
        self.input = inputs[0]
        self.dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        _, _, max_shape = engine.get_tensor_profile_shape(self.input, 0)
        self.max_input = tuple(int(d) for d in max_shape)
        self.max_batch = self.max_input[0]
        if tuple(self.max_input[2:]) != tuple(input_hw):
            raise EngineError(f"engine tensorrt: expected input {input_hw}, the engine has {self.max_input}")
        # output sizes for the largest batch the profile allows
        if not self.context.set_input_shape(self.input, self.max_input):
            raise EngineError(f"engine tensorrt: set_input_shape({self.input}, {self.max_input}) refused")
        max_out = {n: tuple(int(d) for d in self.context.get_tensor_shape(n)) for n in self.outputs}
        for name, shape in max_out.items():
            if any(d < 0 for d in shape):
                raise EngineError(f"engine tensorrt: output {name} has a data-dependent shape {shape}")
        self.copy_stream = cuda.Stream()
        self.compute_stream = cuda.Stream()
        self.slots = [self._slot(max_out) for _ in range(SLOTS)]

    def _slot(self, max_out: dict[str, tuple[int, ...]]) -> Slot:
        cuda = self.cuda
        host_in = cuda.pagelocked_empty(self.max_input, self.dtypes[self.input])
        host_out = {n: cuda.pagelocked_empty(_volume(s), self.dtypes[n]) for n, s in max_out.items()}
        return Slot(
            host_in=host_in,
            device_in=cuda.mem_alloc(host_in.nbytes),
            host_out=host_out,
            device_out={n: cuda.mem_alloc(a.nbytes) for n, a in host_out.items()},
            uploaded=cuda.Event(),
            done=cuda.Event(),
        )

    def submit(self, slot: Slot, count: int) -> None:
        """Enqueue ``slot.host_in[:count]``: upload on the copy stream, run and download on the compute stream."""
        cuda, context = self.cuda, self.context
        shape = (count, *self.max_input[1:])
        cuda.memcpy_htod_async(slot.device_in, slot.host_in[:count], self.copy_stream)
        slot.uploaded.record(self.copy_stream)
        self.compute_stream.wait_for_event(slot.uploaded)
        if not context.set_input_shape(self.input, shape):
            raise EngineError(f"engine tensorrt: set_input_shape({self.input}, {shape}) refused")
        context.set_tensor_address(self.input, int(slot.device_in))
        for name in self.outputs:
            context.set_tensor_address(name, int(slot.device_out[name]))
        if not context.execute_async_v3(self.compute_stream.handle):
            raise EngineError("engine tensorrt: execute_async_v3 failed (see TensorRT's log)")
        slot.out_shapes = {}
        for name in self.outputs:
            out_shape = tuple(int(d) for d in context.get_tensor_shape(name))
            slot.out_shapes[name] = out_shape
            cuda.memcpy_dtoh_async(slot.host_out[name][: _volume(out_shape)], slot.device_out[name],
                                   self.compute_stream)
        slot.done.record(self.compute_stream)
        slot.count = count

    def collect(self, slot: Slot) -> dict[str, np.ndarray]:
        """Wait for ``slot``'s batch and return copies of its outputs (the slot is free again after)."""
        slot.done.synchronize()
        return {
            name: slot.host_out[name][: _volume(shape)].reshape(shape).copy()
            for name, shape in slot.out_shapes.items()
        }

    def close(self) -> None:
        for slot in self.slots:
            for allocation in (slot.device_in, *slot.device_out.values()):
                allocation.free()
        self.slots = []


class TensorRTEngine:
    """letterbox (into page-locked memory) → TensorRT → YOLO decode + NMS."""

    kind = "tensorrt"
    stateful = False
    pipelined_batches = SLOTS  # the pipeline hands over this many batches per infer(): uploads overlap

    def __init__(self, config: EngineConfig, fps: float) -> None:
        if config.model is None:
            raise EngineError("engine tensorrt: [engine] model is not set")
        self.config = config
        self.spec: ModelSpec | None = None
        self.cache_path: Path | None = None
        self.runner: TrtRunner | None = None
        self._layout: tuple[OutputFormat, bool] | None = None
        self._refs: list[Any] = []  # runtime and engine outlive the execution context

    def load(self) -> None:
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise EngineUnavailable(f"tensorrt is not importable: {INSTALL_HINT}") from exc
        try:
            import pycuda.driver as cuda
        except ImportError as exc:
            raise EngineUnavailable(f"pycuda is not importable: {INSTALL_HINT}") from exc
        try:
            # retains and pushes the device's primary context (the one TensorRT uses) in this process
            import pycuda.autoprimaryctx as primary
        except ImportError as exc:
            raise EngineUnavailable(f"pycuda.autoprimaryctx is not importable (pycuda >= 2021.1): {exc}") from exc
        except cuda.Error as exc:
            raise EngineUnavailable(f"CUDA could not start (driver, device visible?): {exc}") from exc
        self.close()
        major = major_version(trt.__version__)
        if major < 10:
            raise EngineUnavailable(f"tensorrt {trt.__version__} is too old: 10 or later is needed")
        config = self.config
        spec = read_model(config.model, labels=config.labels, input_size=config.input_size)  # type: ignore[arg-type]
        shapes = profile_shapes(spec, config.batch)
        device = primary.device
        key = trt_cache.CacheKey(
            model_sha256=sha256_file(spec.path),
            tensorrt_version=trt.__version__,
            gpu_name=device.name(),
            compute_capability="{}.{}".format(*device.compute_capability()),
            precision=precision_for(major, config.precision),
            profiles=((spec.input_name, *shapes),),
        )
        path = trt_cache.engine_path(config.cache_dir or DEFAULT_CACHE_DIR.absolute(), spec.path, key)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        with trt_cache.locked(path):
            engine = None
            data = trt_cache.load(path, key)
            if data is not None:
                engine = runtime.deserialize_cuda_engine(data)
                if engine is None:
                    logger.warning("engine tensorrt: cached %s did not deserialize: rebuilding", path)
                    trt_cache.discard(path)
                else:
                    logger.info("engine tensorrt: cached engine %s", path)
            if engine is None:
                logger.info("engine tensorrt: building %s for %s (%s), shapes %s", spec.path, key.gpu_name,
                            key.precision, shapes)
                data = build_serialized(
                    trt, spec, shapes, precision=config.precision, workspace_mib=config.workspace_mib
                )
                trt_cache.store(path, key, data)
                engine = runtime.deserialize_cuda_engine(data)
                if engine is None:
                    raise EngineError(f"engine tensorrt: the engine just built from {spec.path} did not deserialize")
        self.runner = TrtRunner(trt, cuda, engine, spec.input_hw)
        self._refs = [runtime, engine, primary.context]
        self.spec, self.cache_path, self._layout = spec, path, None
        logger.info(
            "engine tensorrt: %s on %s (cc %s), TensorRT %s, batch ≤ %d, %d classes",
            spec.path, key.gpu_name, key.compute_capability, trt.__version__, self.runner.max_batch, len(spec.names),
        )

    def reset(self) -> None:
        """Detections depend on the frame alone: nothing to forget."""

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
        self.runner = None
        self._refs = []

    def infer(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        if not frames:
            return []
        runner, spec = self.runner, self.spec
        if runner is None or spec is None:
            raise EngineError("engine tensorrt: infer before load")
        step = runner.max_batch if spec.batch is None else spec.batch
        results: list[list[Detection]] = []
        pending: tuple[Any, list] | None = None
        for index, start in enumerate(range(0, len(frames), step)):
            slot = runner.slots[index % SLOTS]  # free: its last batch was collected one turn ago
            chunk = frames[start : start + step]
            if spec.batch is not None:
                slot.host_in[len(chunk) :] = 0  # a fixed-batch engine runs padded
            _, boxes = letterbox_batch(chunk, spec.input_size, out=slot.host_in)
            runner.submit(slot, step if spec.batch is not None else len(chunk))
            if pending is not None:
                results.extend(self._decode(*pending))
            pending = (slot, boxes)
        if pending is not None:
            results.extend(self._decode(*pending))
        return results

    def _decode(self, slot: Slot, boxes: list) -> list[list[Detection]]:
        runner, spec = self.runner, self.spec
        outputs = runner.collect(slot)  # type: ignore[union-attr]
        output = outputs.get(spec.output_name) if spec.output_name in outputs else outputs[runner.outputs[0]]  # type: ignore[union-attr]
        if self._layout is None:
            self._layout = output_format(output.shape, len(spec.names) or None)  # type: ignore[union-attr]
        return decode(
            output, boxes, spec.names,  # type: ignore[union-attr, arg-type]
            confidence=self.config.confidence, iou=self.config.iou, layout=self._layout,
        )


register("tensorrt")(TensorRTEngine)
