"""GPU probing runs nvidia-smi in a subprocess: safe without a driver, a GPU or the tool."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vidwatch.engines import gpu


@pytest.fixture(autouse=True)
def fresh_probe() -> Iterator[None]:
    gpu.gpus.cache_clear()
    yield
    gpu.gpus.cache_clear()


def _fake_smi(folder: Path, script: str) -> None:
    smi = folder / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n{script}\n")
    smi.chmod(0o755)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            "echo '0, NVIDIA H100 80GB HBM3, 9.0, 81559'; echo '1, NVIDIA L4, 8.9, 23034'",
            (gpu.Gpu(0, "NVIDIA H100 80GB HBM3", "9.0", 81559), gpu.Gpu(1, "NVIDIA L4", "8.9", 23034)),
        ),
        # installed, but the driver is not loaded
        (
            "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2; exit 9",
            (),
        ),
        ("echo 'No devices were found'", ()),
    ],
)
def test_probe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, script: str, expected: tuple) -> None:
    _fake_smi(tmp_path, script)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert gpu.gpus() == expected


def test_no_nvidia_smi_means_no_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu.gpus() == ()


def test_what_is_missing_for_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpu, "gpus", lambda: ())
    monkeypatch.setattr(gpu, "tensorrt_version", lambda: "10.13.0")
    monkeypatch.setattr(gpu, "pycuda_installed", lambda: False)
    missing = gpu.tensorrt_missing()
    assert "no NVIDIA GPU" in missing and "pycuda is not installed" in missing and "tensorrt is not" not in missing
    monkeypatch.setattr(gpu, "gpus", lambda: (gpu.Gpu(0, "NVIDIA L4", "8.9", 23034),))
    monkeypatch.setattr(gpu, "pycuda_installed", lambda: True)
    assert gpu.tensorrt_missing() is None
