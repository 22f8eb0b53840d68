"""A fake of the part of the ``tensorrt`` Python API (10.x, and 11.x where it differs) the engine uses.

Written from TensorRT's documented Python API: ``Logger``, ``Builder.create_network(flags)``,
``NetworkDefinitionCreationFlag.STRONGLY_TYPED``, ``OnnxParser.parse_from_file`` /
``num_errors`` / ``get_error``, ``Builder.create_builder_config``,
``IBuilderConfig.set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)``,
``IBuilderConfig.set_flag(BuilderFlag.FP16)`` (gone in 11), ``create_optimization_profile``
/ ``IOptimizationProfile.set_shape(name, min, opt, max)`` / ``add_optimization_profile``,
``build_serialized_network`` (None on failure), ``Runtime.deserialize_cuda_engine`` (None
for an engine it cannot load), ``ICudaEngine.num_io_tensors`` / ``get_tensor_name`` /
``get_tensor_mode`` / ``get_tensor_dtype`` / ``get_tensor_shape`` (-1 for dynamic dims) /
``get_tensor_profile_shape(name, profile)``, ``IExecutionContext.set_input_shape`` /
``get_tensor_shape`` / ``set_tensor_address`` / ``execute_async_v3(stream_handle)``,
``nptype``. The binding API (``execute_async_v2``, ``get_binding_*``) is absent, as in 10.0.

"Engines" are the ONNX bytes behind a header; executing one runs the model with ONNX
Runtime on the fake device memory of ``tests.fakes.pycuda_driver``.
"""

from __future__ import annotations

import enum
import json
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from tests.fakes import pycuda_driver as cuda

MAGIC = b"FAKETRT\x00"


@dataclass
class Calls:
    """What the code under test asked for (one per fake module)."""

    builds: int = 0
    network_flags: list[int] = field(default_factory=list)
    builder_flags: list[Any] = field(default_factory=list)
    pool_limits: list[tuple[Any, int]] = field(default_factory=list)
    profiles: list[dict[str, tuple]] = field(default_factory=list)
    fail_build: bool = False
    fail_execute: bool = False
    deserialize_none: int = 0  # the next N deserializations return None


class Logger:
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    def __init__(self, min_severity: int = 2) -> None:
        self.min_severity = min_severity


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    INT64 = 9


_NP = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
       DataType.INT32: np.int32, DataType.BOOL: np.bool_, DataType.INT64: np.int64}
_ONNX_TYPES = {1: DataType.FLOAT, 10: DataType.HALF, 6: DataType.INT32, 7: DataType.INT64}


def nptype(dtype: DataType) -> type:
    return _NP[dtype]


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0
    STRONGLY_TYPED = 1


class BuilderFlag10(enum.IntEnum):
    FP16 = 0
    INT8 = 1
    DEBUG = 2


class BuilderFlag11(enum.IntEnum):  # precision flags removed
    DEBUG = 2


class ParserError:
    def __init__(self, desc: str) -> None:
        self._desc = desc

    def desc(self) -> str:
        return self._desc

    def __str__(self) -> str:
        return f"ParserError: {self._desc}"


class Network:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.model: bytes | None = None


class OnnxParser:
    def __init__(self, network: Network, logger: Logger) -> None:
        self.network = network
        self.errors: list[ParserError] = []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> ParserError:
        return self.errors[index]

    def parse(self, model: bytes) -> bool:
        try:
            onnx.checker.check_model(onnx.load_from_string(model))
        except Exception as exc:  # noqa: BLE001 - a parser reports every failure as a parser error
            self.errors.append(ParserError(str(exc)[:200]))
            return False
        self.network.model = bytes(model)
        return True

    def parse_from_file(self, path: str) -> bool:
        with open(path, "rb") as handle:
            return self.parse(handle.read())


class OptimizationProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple] = {}

    def set_shape(self, name: str, min: tuple, opt: tuple, max: tuple) -> None:
        if not all(lo <= o <= hi for lo, o, hi in zip(min, opt, max, strict=True)):
            raise ValueError(f"profile for {name}: expected min <= opt <= max, got {min} {opt} {max}")
        self.shapes[name] = (tuple(min), tuple(opt), tuple(max))


class BuilderConfig:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.profiles: list[OptimizationProfile] = []

    def set_memory_pool_limit(self, pool: MemoryPoolType, size: int) -> None:
        self.calls.pool_limits.append((pool, size))

    def set_flag(self, flag: Any) -> None:
        self.calls.builder_flags.append(flag)

    def add_optimization_profile(self, profile: OptimizationProfile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1


class Builder:
    def __init__(self, logger: Logger) -> None:
        self.module = _module_of(self)

    def create_network(self, flags: int = 0) -> Network:
        self.module.CALLS.network_flags.append(flags)
        return Network(flags)

    def create_builder_config(self) -> BuilderConfig:
        return BuilderConfig(self.module.CALLS)

    def create_optimization_profile(self) -> OptimizationProfile:
        return OptimizationProfile()

    def build_serialized_network(self, network: Network, config: BuilderConfig) -> bytearray | None:
        calls = self.module.CALLS
        calls.builds += 1
        if calls.fail_build or network.model is None or len(config.profiles) != 1:
            return None
        profile = config.profiles[0].shapes
        calls.profiles.append(profile)
        header = json.dumps({"version": self.module.__version__, "profile": profile}).encode()
        return bytearray(MAGIC + len(header).to_bytes(4, "little") + header + network.model)


class Runtime:
    def __init__(self, logger: Logger) -> None:
        self.module = _module_of(self)

    def deserialize_cuda_engine(self, data: bytes) -> CudaEngine | None:
        calls = self.module.CALLS
        if calls.deserialize_none:
            calls.deserialize_none -= 1
            return None
        data = bytes(data)
        if not data.startswith(MAGIC):
            return None
        size = int.from_bytes(data[8:12], "little")
        header = json.loads(data[12 : 12 + size])
        if header["version"] != self.module.__version__:
            return None  # TensorRT refuses engines serialized by another version
        return CudaEngine(self.module, header["profile"], data[12 + size :])


class CudaEngine:
    def __init__(self, module: types.ModuleType, profile: dict[str, list], model: bytes) -> None:
        import onnxruntime as ort

        self.module = module
        self.profile = {name: tuple(tuple(s) for s in shapes) for name, shapes in profile.items()}
        graph = onnx.load_from_string(model).graph
        self.session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        self.tensors: dict[str, tuple[TensorIOMode, DataType, tuple[int, ...]]] = {}
        for mode, values in ((TensorIOMode.INPUT, graph.input), (TensorIOMode.OUTPUT, graph.output)):
            for value in values:
                dims = tuple(
                    d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim
                )
                self.tensors[value.name] = (mode, _ONNX_TYPES[value.type.tensor_type.elem_type], dims)
        self.names = list(self.tensors)

    @property
    def num_io_tensors(self) -> int:
        return len(self.names)

    def get_tensor_name(self, index: int) -> str:
        return self.names[index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return self.tensors[name][0] if name in self.tensors else TensorIOMode.NONE

    def get_tensor_dtype(self, name: str) -> DataType:
        return self.tensors[name][1]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self.tensors[name][2]

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
        if profile_index != 0 or name not in self.profile:
            raise IndexError(f"no profile {profile_index} shape for {name}")
        return list(self.profile[name])

    def create_execution_context(self) -> ExecutionContext:
        return ExecutionContext(self)


class ExecutionContext:
    def __init__(self, engine: CudaEngine) -> None:
        self.engine = engine
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        lo, _, hi = self.engine.profile[name]
        cuda.STATE.log.append(("set_input_shape", name, tuple(shape)))
        if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
            return False
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        mode, _, dims = self.engine.tensors[name]
        if mode == TensorIOMode.INPUT:
            return self.shapes.get(name, dims)
        batch = next(iter(self.shapes.values()))[0] if self.shapes else -1
        return tuple(batch if d == -1 and i == 0 else d for i, d in enumerate(dims))

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        cuda.STATE.log.append(("set_tensor_address", name, ptr))
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        cuda.STATE.log.append(("execute", stream_handle))
        if self.engine.module.CALLS.fail_execute:
            return False
        feeds = {}
        for name, (mode, dtype, _) in self.engine.tensors.items():
            if name not in self.addresses:
                return False
            if mode == TensorIOMode.INPUT:
                shape = self.shapes[name]
                nbytes = int(np.prod(shape)) * np.dtype(nptype(dtype)).itemsize
                feeds[name] = cuda.device_view(self.addresses[name], nbytes).view(nptype(dtype)).reshape(shape)
        outputs = self.engine.session.run(None, feeds)
        names = [n for n, (mode, _, _) in self.engine.tensors.items() if mode == TensorIOMode.OUTPUT]
        for name, value in zip(names, outputs, strict=True):
            cuda.device_view(self.addresses[name], value.nbytes)[:] = value.reshape(-1).view(np.uint8)
        return True


def _module_of(obj: object) -> types.ModuleType:
    return obj.__class__.__dict__["_module"]  # type: ignore[no-any-return]


def make_module(version: str = "10.13.0.35") -> types.ModuleType:
    """A fresh ``tensorrt`` module of ``version`` with its own call record (``CALLS``)."""
    module = types.ModuleType("tensorrt")
    module.__version__ = version
    module.CALLS = Calls()
    for name, value in {
        "Logger": Logger, "TensorIOMode": TensorIOMode, "DataType": DataType, "nptype": nptype,
        "MemoryPoolType": MemoryPoolType, "NetworkDefinitionCreationFlag": NetworkDefinitionCreationFlag,
        "BuilderFlag": BuilderFlag10 if version.startswith("10.") else BuilderFlag11, "OnnxParser": OnnxParser,
    }.items():
        setattr(module, name, value)
    # classes that need their module's version and call record
    module.Builder = type("Builder", (Builder,), {"_module": module})
    module.Runtime = type("Runtime", (Runtime,), {"_module": module})
    return module
