"""Lifecycle events on ``<prefix>:events``."""

from __future__ import annotations

import json
import time
from typing import Any

from vidwatch.results.version import SCHEMA_VERSION

EVENT_TYPES = ("detected", "normalized", "queued", "started", "progress", "segment_done", "done", "failed")


def event_fields(kind: str, video_id: str, path: str, detail: Any = "") -> dict[str, str]:
    if kind not in EVENT_TYPES:
        raise ValueError(f"event type: expected one of {EVENT_TYPES}, got {kind!r}")
    text = detail if isinstance(detail, str) else json.dumps(detail, sort_keys=True)
    return {
        "type": kind, "video_id": video_id, "path": path, "ts": f"{time.time():.3f}", "detail": text,
        "schema": SCHEMA_VERSION,
    }

