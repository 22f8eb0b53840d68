"""Schema and analysis versions carried by every results entry.

``SCHEMA_VERSION`` changes when the layout of an entry changes (a field renamed or its
meaning changed; an added field does not change it). The *analysis version* names what
produced the numbers: the engine, the model file's hash and the settings that change
results. Two runs with the same analysis version give the same detections.

>>> from vidwatch.config import Config
>>> version = analysis_version(Config())
>>> version.id == analysis_version(Config()).id, len(version.id)
(True, 12)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from vidwatch.config import Config
from vidwatch.fileio import sha256_file

SCHEMA_VERSION = "1"
MODEL_HASH_CHARS = 16


@dataclass(frozen=True)
class AnalysisVersion:
    """``id``: a short hash of ``details``; ``details``: engine, model hash, settings (JSON-ready)."""

    id: str
    details: dict[str, Any] = field(compare=False)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, **self.details}


def analysis_version(config: Config, *, engine_kind: str | None = None) -> AnalysisVersion:
    """The analysis version of ``config``; ``engine_kind`` is the engine actually loaded.

    Without ``engine_kind``, the kind the settings decide (``auto`` with a model stays ``auto``:
    the worker, which knows its engine, passes it).
    """
    engine = config.engine
    kind = engine_kind or engine.configured_kind or engine.kind
    settings: dict[str, Any] = {
        "fps": config.analysis.fps,
        "size": config.analysis.size,
        "segment_seconds": config.analysis.segment_seconds,
        "min_gap_seconds": config.analysis.min_gap_seconds,
        "min_activity_seconds": config.analysis.min_activity_seconds,
        "motion_gate": config.analysis.motion_gate,
    }
    if kind == "opencv":
        settings.update(
            detectors=list(engine.detectors),
            motion_min_area=engine.motion_min_area,
            person_min_score=engine.person_min_score,
            motion_regions=[[list(p) for p in poly] for poly in engine.motion_regions],
        )
    else:
        settings.update(confidence=engine.confidence, iou=engine.iou, input_size=engine.input_size)
        if kind == "tensorrt":
            settings["precision"] = engine.precision
    if config.analysis.motion_gate:
        settings.setdefault("motion_min_area", engine.motion_min_area)
        settings.setdefault("motion_regions", [[list(p) for p in poly] for poly in engine.motion_regions])
    details: dict[str, Any] = {
        "engine": kind,
        "model": engine.model.name if engine.model and kind != "opencv" else None,
        "model_sha256": _hash_of(engine.model) if engine.model and kind != "opencv" else None,
        "labels_sha256": _hash_of(engine.labels) if engine.labels and kind != "opencv" else None,
        "settings": settings,
        "analyzers": [a.model_dump(mode="json") for a in config.analyzers],
    }
    digest = hashlib.sha256(json.dumps(details, sort_keys=True).encode()).hexdigest()
    return AnalysisVersion(digest[:12], details)


def _hash_of(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return _cached_hash(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=16)
def _cached_hash(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of the file (prefix), computed once per file version and process."""
    return sha256_file(Path(path))[:MODEL_HASH_CHARS]
