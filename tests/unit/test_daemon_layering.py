"""The daemon chooses its queue from the configuration: it never loads the engines (or probes a GPU)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DAEMON = Path(__file__).resolve().parents[2] / "vidwatch" / "daemon"


def test_importing_every_daemon_module_loads_no_engine_code() -> None:
    modules = sorted(f"vidwatch.daemon.{path.stem}" for path in DAEMON.glob("*.py") if path.stem != "__init__")
    code = (
        "import importlib, json, sys\n"
        f"for m in {[*modules, 'vidwatch.daemon', 'vidwatch.up']!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded = set(json.loads(out.stdout))
    assert "vidwatch.daemon.compose" in loaded and "vidwatch.daemon.serve" in loaded
    unwanted = sorted(m for m in loaded if m.split(".")[:2] == ["vidwatch", "engines"]
                      or m.split(".")[0] in ("cv2", "onnxruntime", "tensorrt", "pycuda"))
    assert unwanted == []
