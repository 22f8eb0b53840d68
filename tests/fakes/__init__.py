"""Fakes of the GPU runtimes (TensorRT, pycuda) for tests on machines without a GPU."""

from __future__ import annotations

import sys
import types

import pytest

from tests.fakes import pycuda_driver
from tests.fakes import tensorrt as fake_tensorrt


def install_gpu_fakes(
    monkeypatch: pytest.MonkeyPatch,
    *,
    version: str = "10.13.0.35",
    gpu_name: str = "NVIDIA Fake GPU",
    capability: tuple[int, int] = (8, 9),
) -> types.ModuleType:
    """Make ``import tensorrt`` and ``import pycuda.driver / pycuda.autoprimaryctx`` find the fakes."""
    pycuda_driver.reset()
    trt = fake_tensorrt.make_module(version)
    device = pycuda_driver.Device(gpu_name, capability)
    primary = types.ModuleType("pycuda.autoprimaryctx")
    primary.device = device
    primary.context = pycuda_driver.Context(device)
    package = types.ModuleType("pycuda")
    package.__path__ = []
    package.driver = pycuda_driver
    package.autoprimaryctx = primary
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", pycuda_driver)
    monkeypatch.setitem(sys.modules, "pycuda.autoprimaryctx", primary)
    return trt
