"""One look at the whole system, for `vidwatch status`, the status page and /metrics.

Everything comes from Redis and the broker, in a bounded number of commands:
the in-flight set (the backlog), the worker heartbeat keys, the newest entries of
the events and summaries streams, and the time index.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from vidwatch.ops.queues import QueueDepth
from vidwatch.results.connection import entries
from vidwatch.results.keys import Keys
from vidwatch.results.query import VideoQuery, find_videos
from vidwatch.results.records import State

RECENT_EVENTS = 2000
RECENT_SUMMARIES = 50
_CHUNK = 1000
# How far along the pipeline a state is (a stage marker, not a measure of the work done in it)
STATE_PROGRESS = {"seen": 0.05, "normalizing": 0.15, "queued": 0.3, "processing": 0.5, "done": 1.0, "failed": 1.0}
INFLIGHT_FIELDS = ("path", "camera", "state", "updated_at", "seen_at", "worker", "published")


@dataclass
class Snapshot:
    taken_at: float
    backlog: dict[str, int]
    done_indexed: int
    queues: dict[str, QueueDepth] | str
    workers: list[dict[str, Any]]
    in_flight: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    recent: list[dict[str, Any]]
    throughput: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        queues = self.queues if isinstance(self.queues, str) else {
            name: {"messages": q.messages, "consumers": q.consumers, "exists": q.exists}
            for name, q in self.queues.items()
        }
        return {
            "taken_at": self.taken_at,
            "backlog": self.backlog,
            "done_indexed": self.done_indexed,
            "queues": queues,
            "workers": self.workers,
            "in_flight": self.in_flight,
            "failures": self.failures,
            "recent": self.recent,
            "throughput": self.throughput,
        }


def live_workers(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """Workers whose heartbeat key has not expired: name, queues, engine, pid."""
    names = sorted(client.scan_iter(match=keys.worker_pattern(), count=1000))
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(name)
    workers = []
    for name, fields in zip(names, pipe.execute(), strict=True):
        if not fields:
            continue
        try:
            queues = json.loads(fields.get("queues", "[]"))
        except ValueError:
            queues = []
        workers.append(
            {
                "name": fields.get("name") or str(name)[len(keys.worker("")) :],
                "queues": queues,
                "engine": fields.get("engine", ""),
                "pid": fields.get("pid", ""),
                "pool": fields.get("pool", ""),
                # a threads-pool worker's batcher: frames per batch ÷ [engine] batch, calls, mixed calls
                **({"batch_fill": float(fields["batch_fill"]), "batch_calls": int(fields.get("batch_calls", 0)),
                    "batch_mixed": int(fields.get("batch_mixed", 0))} if fields.get("batch_fill") else {}),
            }
        )
    return workers


def workers_by_queue(workers: list[dict[str, Any]], queues: tuple[str, ...]) -> dict[str, list[str]]:
    return {queue: [w["name"] for w in workers if queue in w["queues"]] for queue in queues}


def in_flight(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """Every video not yet done or failed, oldest first, with its state's stage marker (``progress``)."""
    ids = sorted(cast(set[str], client.smembers(keys.inflight)))
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        pipe = client.pipeline(transaction=False)
        for video_id in chunk:
            pipe.hmget(keys.video(video_id), INFLIGHT_FIELDS)
        for video_id, values in zip(chunk, pipe.execute(), strict=True):
            record = dict(zip(INFLIGHT_FIELDS, values, strict=True))
            state = record["state"] or "seen"
            rows.append(
                {
                    "video_id": video_id,
                    "path": record["path"] or "",
                    "camera": record["camera"] or "",
                    "state": state,
                    "since": _float(record["updated_at"]) or _float(record["seen_at"]),
                    "progress": progress(state),
                    "worker": record["worker"] or "",
                }
            )
    rows.sort(key=lambda row: row["since"] or 0.0)
    return rows


def progress(state: str) -> float:
    """0..1: how far along the pipeline the video's state is (the analysis reports its own
    progress as ``progress`` events, not in the record).

    >>> progress("queued"), progress("done")
    (0.3, 1.0)
    """
    return STATE_PROGRESS.get(state, 0.0)


def recent_failures(client: redis.Redis, keys: Keys, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ``failed`` events among the last :data:`RECENT_EVENTS` events."""
    failures = []
    for entry_id, fields in entries(client.xrevrange(keys.events, count=RECENT_EVENTS)):
        if fields.get("type") != "failed":
            continue
        failures.append(
            {
                "event_id": entry_id,
                "video_id": fields.get("video_id", ""),
                "path": fields.get("path", ""),
                "reason": fields.get("detail", ""),
                "ts": _float(fields.get("ts")),
            }
        )
        if len(failures) >= limit:
            break
    return failures


def throughput(client: redis.Redis, keys: Keys) -> dict[str, dict[str, Any]]:
    """Per analysing process, frames/s of its newest video among the last summaries."""
    out: dict[str, dict[str, Any]] = {}
    for _, fields in entries(client.xrevrange(keys.summaries, count=RECENT_SUMMARIES)):
        try:
            processing = json.loads(fields.get("processing", "{}"))
        except ValueError:
            continue
        worker = str(processing.get("worker", ""))
        if not worker or worker in out:
            continue
        out[worker] = {"fps": _float(str(processing.get("fps", ""))), "engine": processing.get("engine", "")}
    return out


def take_snapshot(
    client: redis.Redis,
    keys: Keys,
    queues: Callable[[], dict[str, QueueDepth] | str],
    *,
    recent: int = 12,
) -> Snapshot:
    flight = in_flight(client, keys)
    backlog = {state.value: 0 for state in State.in_flight()}
    for row in flight:
        backlog[row["state"]] = backlog.get(row["state"], 0) + 1
    return Snapshot(
        taken_at=time.time(),
        backlog=backlog,
        done_indexed=int(client.zcard(keys.index_time)),
        queues=queues(),
        workers=live_workers(client, keys),
        in_flight=flight,
        failures=recent_failures(client, keys),
        recent=find_videos(client, keys, VideoQuery(limit=recent)),
        throughput=throughput(client, keys),
    )


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None
