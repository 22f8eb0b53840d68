"""Follow a results stream (``vidwatch tail``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import redis

from vidwatch.results.keys import Keys

BLOCK_MS = 1000


def stream_key(keys: Keys, name: str) -> str:
    """``events``, ``summaries`` or ``detections:<camera>`` → the full key."""
    if name in ("events", "summaries") or name.startswith("detections:"):
        return keys.stream(name)
    raise ValueError(f"stream: expected events, summaries or detections:<camera>, got {name!r}")


def follow(
    client: redis.Redis,
    key: str,
    *,
    from_start: bool = False,
    group: str | None = None,
    consumer: str = "tail",
    idle_timeout_s: float | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield ``(entry_id, fields)``; with a group, each entry is acknowledged after it is yielded."""
    last_id = "0-0" if from_start else "$"
    if group:
        try:
            client.xgroup_create(key, group, id="0" if from_start else "$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
    idle_since = time.monotonic()
    while not stop():
        if group:
            response = client.xreadgroup(group, consumer, {key: ">"}, count=100, block=BLOCK_MS)
        else:
            response = client.xread({key: last_id}, count=100, block=BLOCK_MS)
        if not response:
            if idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                return
            continue
        idle_since = time.monotonic()
        for _, entries in response:
            for entry_id, fields in entries:
                yield entry_id, fields
                last_id = entry_id
                if group:
                    client.xack(key, group, entry_id)


def format_entry(entry_id: str, fields: dict[str, str], *, as_json: bool) -> str:
    if as_json:
        return json.dumps({"id": entry_id, **fields}, sort_keys=False)
    parts = [f"{k}={v}" for k, v in fields.items()]
    return f"{entry_id} " + " ".join(parts)
