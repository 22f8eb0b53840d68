"""Follow a results stream (``vidwatch tail``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import redis

from vidwatch.results.connection import stream_reads
from vidwatch.results.consumer import StreamConsumer
from vidwatch.results.keys import Keys
from vidwatch.textsafe import printable

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
    idle_timeout_s: float | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield ``(entry_id, fields)`` as they arrive (plain ``XREAD``: nothing is acknowledged)."""
    last_id = "0-0" if from_start else "$"
    idle_since = time.monotonic()
    while not stop():
        response = client.xread({key: last_id}, count=100, block=BLOCK_MS)
        if not response:
            if idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                return
            continue
        idle_since = time.monotonic()
        for _, batch in stream_reads(response):
            for entry_id, fields in batch:
                yield entry_id, fields
                last_id = entry_id


def tail(
    client: redis.Redis,
    key: str,
    emit: Callable[[str, dict[str, str]], object],
    *,
    from_start: bool = False,
    group: str | None = None,
    consumer: str = "tail",
    count: int | None = None,
    idle_timeout_s: float | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Call ``emit`` per entry until ``count`` entries, ``idle_timeout_s`` or ``stop()``; returns how many.

    With ``group``, the entries are read as that consumer group's member ``consumer`` (see
    :class:`StreamConsumer`): each is acknowledged after ``emit`` returned, and entries a dead
    member of the group held are taken over.
    """
    seen = 0
    if not group:
        for entry_id, fields in follow(client, key, from_start=from_start, idle_timeout_s=idle_timeout_s, stop=stop):
            emit(entry_id, fields)
            seen += 1
            if count is not None and seen >= count:
                break
        return seen
    reader = StreamConsumer(client, key, group=group, consumer=consumer, start="0" if from_start else "$",
                            block_ms=BLOCK_MS)
    idle_since = time.monotonic()
    while not stop() and (count is None or seen < count):
        reader.count = min(100, count - seen) if count is not None else 100
        outcome = reader.poll(emit)
        seen += outcome.handled
        if outcome.handled or outcome.failed:
            idle_since = time.monotonic()
        elif idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
            break
    return seen


def format_entry(entry_id: str, fields: dict[str, str], *, as_json: bool) -> str:
    r"""One line per entry: ``id k=v k=v`` with controls escaped, or JSON (whose escapes do the same).

    >>> format_entry("1-0", {"type": "done", "path": "/nvr/x\n1-1 type=done"}, as_json=False)
    '1-0 type=done path=/nvr/x\\n1-1 type=done'
    >>> format_entry("1-0", {"path": "/nvr/\x1b]0;t\x07"}, as_json=True)
    '{"id": "1-0", "path": "/nvr/\\u001b]0;t\\u0007"}'
    """
    if as_json:
        return json.dumps({"id": entry_id, **fields}, sort_keys=False)  # ASCII only: controls are \u escapes
    parts = [f"{printable(k)}={printable(v)}" for k, v in fields.items()]
    return f"{printable(entry_id)} " + " ".join(parts)
