"""A small ONNX model, built with onnx.helper, that really detects bright squares on a dark background.

How it works, per image of the batch (fixed H×W, dynamic batch):

1. ``bright = mean(R, G, B) > 0.6`` (the test scenes are dark grey, letterbox padding is 0.45).
2. Around each cell of a stride-8 grid, a 96×96 window sums ``bright``, ``x·bright``,
   ``y·bright``, ``x²·bright`` and ``y²·bright`` (separable average pools).
3. The moments give the blob's centroid and size: a solid w×h rectangle of pixels has
   variance ``(w² - 1) / 12`` along x, so ``w = sqrt(12·var + 1)`` exactly.
4. The cell holding the centroid fires, with score ``fill`` (mass ÷ w·h, 1 for a solid
   rectangle) when the blob has at least ``MIN_AREA`` pixels; every other cell scores 0.

Output: ``[B, 4 + 1, N]`` as Ultralytics YOLOv8 exports (``cx, cy, w, h, score``), or with
``fmt="nms"`` ``[B, N, 6]`` rows ``(x1, y1, x2, y2, score, class)``. Squares must be at
most 88 px (in model pixels) and further apart than the window. Class names are in the
``names`` metadata, as Ultralytics writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRIDE = 8
WINDOW = 96
THRESHOLD = 0.6
MIN_AREA = 64.0
IR_VERSION = 8
OPSET = 17


def _const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def square_detector(
    path: Path,
    *,
    size: tuple[int, int] = (320, 320),
    fmt: str = "yolo",
    names: str | None = "{0: 'square'}",
    batch: int | None = None,
) -> Path:
    """Write the detector for ``size`` = (height, width) input to ``path``; ``batch`` None: dynamic."""
    height, width = size
    if height % STRIDE or width % STRIDE:
        raise ValueError(f"size: expected multiples of {STRIDE}, got {size}")
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5  # pixel centres
    gh, gw = height // STRIDE, width // STRIDE
    gy, gx = (np.mgrid[0:gh, 0:gw].astype(np.float32) + 0.5) * STRIDE  # cell centres
    pad = WINDOW // 2 - STRIDE // 2
    inits = [
        _const("grey_w", np.full((1, 3, 1, 1), 1 / 3)),
        _const("threshold", np.array(THRESHOLD)),
        _const("xs", xs[None, None]),
        _const("ys", ys[None, None]),
        _const("gx", gx[None, None]),
        _const("gy", gy[None, None]),
        _const("eps", np.array(1e-6)),
        _const("twelve", np.array(12.0)),
        _const("one", np.array(1.0)),
        _const("half_stride", np.array(STRIDE / 2)),
        _const("window_area", np.array(float(WINDOW * WINDOW))),
        _const("min_area", np.array(MIN_AREA)),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "grey_w"], ["grey"]),
        helper.make_node("Greater", ["grey", "threshold"], ["bright_b"]),
        helper.make_node("Cast", ["bright_b"], ["b"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["b", "xs"], ["bx"]),
        helper.make_node("Mul", ["b", "ys"], ["by"]),
        helper.make_node("Mul", ["bx", "xs"], ["bxx"]),
        helper.make_node("Mul", ["by", "ys"], ["byy"]),
        helper.make_node("Concat", ["b", "bx", "by", "bxx", "byy"], ["moments_in"], axis=1),
        # a WINDOW×WINDOW average centred on each cell, as two 1-D pools
        helper.make_node(
            "AveragePool", ["moments_in"], ["rows"], kernel_shape=[1, WINDOW], strides=[1, STRIDE],
            pads=[0, pad, 0, pad], count_include_pad=1,
        ),
        helper.make_node(
            "AveragePool", ["rows"], ["moments"], kernel_shape=[WINDOW, 1], strides=[STRIDE, 1],
            pads=[pad, 0, pad, 0], count_include_pad=1,
        ),
        helper.make_node("Split", ["moments"], ["m0", "mx", "my", "mxx", "myy"], axis=1),
        helper.make_node("Add", ["m0", "eps"], ["m"]),
        helper.make_node("Div", ["mx", "m"], ["cx"]),
        helper.make_node("Div", ["my", "m"], ["cy"]),
        helper.make_node("Div", ["mxx", "m"], ["ex2"]),
        helper.make_node("Div", ["myy", "m"], ["ey2"]),
        helper.make_node("Mul", ["cx", "cx"], ["cx2"]),
        helper.make_node("Mul", ["cy", "cy"], ["cy2"]),
        helper.make_node("Sub", ["ex2", "cx2"], ["varx"]),
        helper.make_node("Sub", ["ey2", "cy2"], ["vary"]),
        helper.make_node("Mul", ["varx", "twelve"], ["varx12"]),
        helper.make_node("Mul", ["vary", "twelve"], ["vary12"]),
        helper.make_node("Add", ["varx12", "one"], ["wsq"]),
        helper.make_node("Add", ["vary12", "one"], ["hsq"]),
        helper.make_node("Relu", ["wsq"], ["wsq_pos"]),
        helper.make_node("Relu", ["hsq"], ["hsq_pos"]),
        helper.make_node("Sqrt", ["wsq_pos"], ["w"]),
        helper.make_node("Sqrt", ["hsq_pos"], ["h"]),
        helper.make_node("Mul", ["m0", "window_area"], ["area"]),
        helper.make_node("Mul", ["w", "h"], ["wh"]),
        helper.make_node("Add", ["wh", "eps"], ["wh_e"]),
        helper.make_node("Div", ["area", "wh_e"], ["fill_raw"]),
        helper.make_node("Clip", ["fill_raw", "", "one"], ["fill"]),
        # the cell holding the centroid, half-open so exactly one cell holds it
        helper.make_node("Sub", ["cx", "gx"], ["dx"]),
        helper.make_node("Sub", ["cy", "gy"], ["dy"]),
        helper.make_node("Neg", ["half_stride"], ["neg_half"]),
        helper.make_node("GreaterOrEqual", ["dx", "neg_half"], ["x_lo"]),
        helper.make_node("Less", ["dx", "half_stride"], ["x_hi"]),
        helper.make_node("GreaterOrEqual", ["dy", "neg_half"], ["y_lo"]),
        helper.make_node("Less", ["dy", "half_stride"], ["y_hi"]),
        helper.make_node("GreaterOrEqual", ["area", "min_area"], ["big"]),
        helper.make_node("And", ["x_lo", "x_hi"], ["in_x"]),
        helper.make_node("And", ["y_lo", "y_hi"], ["in_y"]),
        helper.make_node("And", ["in_x", "in_y"], ["in_cell"]),
        helper.make_node("And", ["in_cell", "big"], ["fires_b"]),
        helper.make_node("Cast", ["fires_b"], ["fires"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["fires", "fill"], ["score"]),
    ]
    if fmt == "yolo":
        inits.append(numpy_helper.from_array(np.array([0, 5, -1], dtype=np.int64), "out_shape"))
        nodes += [
            helper.make_node("Concat", ["cx", "cy", "w", "h", "score"], ["grid"], axis=1),
            helper.make_node("Reshape", ["grid", "out_shape"], ["output0"]),
        ]
        out_shape: list[object] = ["batch", 5, gh * gw]
    elif fmt == "nms":
        inits += [
            _const("two", np.array(2.0)),
            _const("zero_class", np.zeros((1, 1, gh, gw))),
            numpy_helper.from_array(np.array([0, 6, -1], dtype=np.int64), "nms_shape"),
        ]
        nodes += [
            helper.make_node("Div", ["w", "two"], ["hw"]),
            helper.make_node("Div", ["h", "two"], ["hh"]),
            helper.make_node("Sub", ["cx", "hw"], ["x1"]),
            helper.make_node("Sub", ["cy", "hh"], ["y1"]),
            helper.make_node("Add", ["cx", "hw"], ["x2"]),
            helper.make_node("Add", ["cy", "hh"], ["y2"]),
            helper.make_node("Mul", ["score", "zero_class"], ["cls"]),
            helper.make_node("Concat", ["x1", "y1", "x2", "y2", "score", "cls"], ["grid"], axis=1),
            helper.make_node("Reshape", ["grid", "nms_shape"], ["nms_rows"]),
            helper.make_node("Transpose", ["nms_rows"], ["output0"], perm=[0, 2, 1]),
        ]
        out_shape = ["batch", gh * gw, 6]
    else:
        raise ValueError(f"fmt: expected 'yolo' or 'nms', got {fmt!r}")
    graph = helper.make_graph(
        nodes,
        "squares",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch or "batch", 3, height, width])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch or "batch", *out_shape[1:]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    if names is not None:
        helper.set_model_props(model, {"names": names, "stride": str(STRIDE)})
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def square_frame(
    size: tuple[int, int], squares: list[tuple[int, int, int]], *, background: int = 64
) -> np.ndarray:
    """A BGR frame ``size`` = (height, width), dark grey, with white squares ``(x, y, side)``."""
    frame = np.full((*size, 3), background, dtype=np.uint8)
    for x, y, side in squares:
        frame[y : y + side, x : x + side] = 255
    return frame
