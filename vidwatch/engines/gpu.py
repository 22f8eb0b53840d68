"""What this host offers for GPU inference, found without touching CUDA in this process.

Creating a CUDA context (or even initialising the driver) before a worker forks leaves
the children unable to use the GPU, so probing runs ``nvidia-smi`` in a subprocess and
checks for the Python packages without importing them. On a machine without a driver,
every answer is simply "none".
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import logging
import shutil
import subprocess
from dataclasses import dataclass

logger = logging.getLogger(__name__)

NVIDIA_SMI_TIMEOUT_S = 10.0
_TENSORRT_DISTRIBUTIONS = ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11", "tensorrt_libs")


@dataclass(frozen=True, slots=True)
class Gpu:
    index: int
    name: str
    compute_capability: str  # "9.0"
    memory_mib: int


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """GPUs from ``nvidia-smi --query-gpu=index,name,compute_cap,memory.total --format=csv,noheader,nounits``.

    >>> parse_nvidia_smi("0, NVIDIA H100 80GB HBM3, 9.0, 81559\\n")
    [Gpu(index=0, name='NVIDIA H100 80GB HBM3', compute_capability='9.0', memory_mib=81559)]
    """
    gpus = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        memory = int(parts[3]) if parts[3].isdigit() else 0
        gpus.append(Gpu(int(parts[0]), parts[1], parts[2], memory))
    return gpus


@functools.cache
def gpus() -> tuple[Gpu, ...]:
    """The NVIDIA GPUs the driver reports; empty without a driver, ``nvidia-smi`` or a GPU."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        done = subprocess.run(
            [smi, "--query-gpu=index,name,compute_cap,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.info("gpu probe: nvidia-smi failed: %s", exc)
        return ()
    if done.returncode != 0:
        logger.info("gpu probe: nvidia-smi exited %d: %s", done.returncode, done.stderr.strip()[-200:])
        return ()
    return tuple(parse_nvidia_smi(done.stdout))


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@functools.cache
def tensorrt_version() -> str | None:
    """The installed TensorRT Python package's version, without importing it; None when absent."""
    if not _installed("tensorrt"):
        return None
    for name in _TENSORRT_DISTRIBUTIONS:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


@functools.cache
def pycuda_installed() -> bool:
    return _installed("pycuda")


def tensorrt_missing() -> str | None:
    """Why the tensorrt engine cannot run here, or None when a GPU, TensorRT and pycuda are all present."""
    missing = []
    if not gpus():
        missing.append("no NVIDIA GPU (nvidia-smi found none)")
    if tensorrt_version() is None:
        missing.append("tensorrt is not installed")
    if not pycuda_installed():
        missing.append("pycuda is not installed")
    if not missing:
        return None
    return "; ".join(missing) + " (install the GPU extras: pip install 'vidwatch[gpu]')"
