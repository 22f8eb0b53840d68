"""Optional JSON sidecar per video (``[results] sidecar_dir``): its summary and detections in one file.

An archive of sidecars stays readable without Redis. The file is
``<sidecar_dir>/<camera>/<video_id>.json``, written to a temporary name in the same folder,
fsynced and renamed into place: a reader sees the previous file or the new one, never half
of one (a rerun replaces it the same way).

.. code-block:: json

    {"schema": "1", "video_id": "3f2a…", "written_at": 1795521600.5,
     "summary": {"camera": "cam1", "labels": {"person": {"tracks": 2, …}}, …},
     "detections": [{"frame": 12, "pts": 2.4, "ts": 1795521602.4,
                     "detections": [{"label": "person", "score": 0.91, "box": [10, 20, 50, 120], "track": 3}]}]}
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vidwatch.config import Config
from vidwatch.fileio import atomic_write
from vidwatch.paths import camera_component
from vidwatch.results.version import SCHEMA_VERSION
from vidwatch.results.writer import FrameResult

logger = logging.getLogger(__name__)

JSON_FIELDS = ("labels", "activity", "thumbnails", "processing", "analysis", "analyzers", "detections")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def sidecar_path(config: Config, video_id: str, camera: str) -> Path | None:
    """Where the video's sidecar goes; None when sidecars are off."""
    folder = config.results.sidecar_dir
    if folder is None:
        return None
    return folder / camera_component(camera) / f"{_SAFE.sub('_', video_id)}.json"  # never outside `folder`


def write_sidecar(
    config: Config,
    video_id: str,
    summary_fields: Mapping[str, Any],
    detections: Iterable[FrameResult | Mapping[str, Any]],
    *,
    start_ts: float | None = None,
) -> Path | None:
    """Write the sidecar atomically; returns its path, or None when ``[results] sidecar_dir`` is not set.

    ``summary_fields``: the summary as given to :meth:`ResultWriter.write_summary` (or as read from
    the stream: JSON strings are decoded). ``detections``: the frames' results, as
    :class:`FrameResult` (``start_ts`` adds ``ts``) or as detections-stream entries.
    """
    camera = str(summary_fields.get("camera") or "default")
    target = sidecar_path(config, video_id, camera)
    if target is None:
        return None
    document = {
        "schema": SCHEMA_VERSION,
        "video_id": video_id,
        "written_at": round(time.time(), 3),
        "summary": {key: _decoded(key, value) for key, value in summary_fields.items()},
        "detections": [_frame(item, start_ts) for item in detections],
    }
    atomic_write(target, json.dumps(document, separators=(",", ":"), sort_keys=False), unique=True, fsync=True)
    logger.debug("sidecar video=%s: %s", video_id, target)
    return target


def read_sidecar(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def _decoded(key: str, value: Any) -> Any:
    if key in JSON_FIELDS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _frame(item: FrameResult | Mapping[str, Any], start_ts: float | None) -> dict[str, Any]:
    if isinstance(item, FrameResult):
        out: dict[str, Any] = {"frame": item.frame, "pts": round(item.pts_s, 3)}
        if start_ts is not None:
            out["ts"] = round(start_ts + item.pts_s, 3)
        out["detections"] = [d.as_json() for d in item.detections]
        return out
    return {key: _decoded(key, value) for key, value in item.items()}
