"""What the onnx and tensorrt engines need to know about an ONNX detection model, read from the file.

Example (not run: needs a model or a video)::

    spec = read_model(Path("yolo11n.onnx"), labels=None, input_size=640)
    spec.input_name, spec.input_hw, spec.batch, spec.names[:2]
    ('images', (640, 640), None, ['person', 'bicycle'])
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidwatch.engines.postprocess import parse_names, read_labels
from vidwatch.errors import EngineError

logger = logging.getLogger(__name__)

_ONNX_DTYPES = {1: np.float32, 10: np.float16}


@dataclass(frozen=True)
class ModelSpec:
    """The model's image input and first output; ``None`` dims are dynamic."""

    path: Path
    input_name: str
    input_hw: tuple[int, int]  # (height, width) the engines letterbox to
    batch: int | None  # fixed batch, or None when dynamic
    input_dtype: type
    output_name: str
    output_shape: tuple[int | None, ...]
    names: list[str]
    metadata: dict[str, str]

    @property
    def input_size(self) -> tuple[int, int]:
        """``(width, height)``, as the pre-processing takes it."""
        return self.input_hw[1], self.input_hw[0]


def _dims(value_info: object) -> tuple[int | None, ...]:
    dims = value_info.type.tensor_type.shape.dim  # type: ignore[attr-defined]
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)


def read_model(path: Path, *, labels: Path | None, input_size: int) -> ModelSpec:
    """Read ``path``'s graph inputs, outputs and metadata (weights are not loaded)."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except FileNotFoundError as exc:
        raise EngineError(f"model {path}: file not found") from exc
    except (OSError, DecodeError, ValueError) as exc:
        raise EngineError(f"model {path}: not a readable ONNX file: {exc}") from exc
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise EngineError(f"model {path}: expected one image input, got {[i.name for i in inputs]}")
    if not graph.output:
        raise EngineError(f"model {path}: has no outputs")
    image = inputs[0]
    shape = _dims(image)
    if len(shape) != 4 or shape[1] not in (3, None):
        raise EngineError(f"model {path}: input {image.name!r}: expected [N, 3, H, W], got {list(shape)}")
    elem = image.type.tensor_type.elem_type
    if elem not in _ONNX_DTYPES:
        raise EngineError(f"model {path}: input {image.name!r}: expected float32 or float16, got ONNX type {elem}")
    height = shape[2] or input_size
    width = shape[3] or input_size
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    output = graph.output[0]
    if labels is not None:
        names = read_labels(labels)
    elif "names" in metadata:
        names = parse_names(metadata["names"])
    else:
        names = []
        logger.warning("model %s: no 'names' metadata and no [engine] labels: classes are named class<N>", path)
    return ModelSpec(
        path=path,
        input_name=image.name,
        input_hw=(height, width),
        batch=shape[0],
        input_dtype=_ONNX_DTYPES[elem],
        output_name=output.name,
        output_shape=_dims(output),
        names=names,
        metadata=metadata,
    )
