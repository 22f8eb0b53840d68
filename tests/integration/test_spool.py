"""The spool's sweep and budget, on real Redis and a real folder (no daemon)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import redis

from tests.helpers import wait_for
from vidwatch.daemon.spool import ORPHAN_AGE_S, STALE_PARTIAL_S, ShuttingDown, SpoolBudget, sweep
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records


def spooled(folder: Path, name: str, size: int = 1000, age_s: float = 0.0) -> Path:
    path = folder / name
    path.write_bytes(bytes(size))
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_sweep_keeps_what_is_still_needed_and_removes_the_rest(
    tmp_path: Path, redis_client: redis.Redis, redis_prefix: str
) -> None:
    keys = Keys(redis_prefix)
    records = Records(redis_client, keys, events_maxlen=1000)
    for video_id, state in (("done", "done"), ("recent", "done"), ("queued", "queued"), ("failed", "failed")):
        records.create(video_id, {"path": f"/src/{video_id}.mp4"}, path=f"/src/{video_id}.mp4")
        if state == "done":
            records.transition(video_id, "processing")
        records.transition(video_id, state)
    now = time.time()
    redis_client.hset(keys.video("done"), "done_at", f"{now - 120:.3f}")
    redis_client.hset(keys.video("failed"), "failed_at", f"{now - 120:.3f}")
    files = {
        "done": spooled(tmp_path, "done.mp4"),  # done two minutes ago: past the 60 s retention
        "failed": spooled(tmp_path, "failed.mp4"),
        "recent": spooled(tmp_path, "recent.mp4"),  # done just now: kept for the retention
        "queued": spooled(tmp_path, "queued.mp4", age_s=10 * ORPHAN_AGE_S),  # a worker still needs it
        "running": spooled(tmp_path, "running.mp4"),  # being normalized here
        "stale": spooled(tmp_path, ".crashed.mp4.part", age_s=STALE_PARTIAL_S + 60),
        "fresh": spooled(tmp_path, ".other.mp4.part"),
        "orphan": spooled(tmp_path, "orphan.mp4", age_s=ORPHAN_AGE_S + 60),  # no record at all
        "young_orphan": spooled(tmp_path, "young.mp4"),
        "unrelated": spooled(tmp_path, "notes.txt", age_s=ORPHAN_AGE_S + 60),
    }
    swept = sweep(tmp_path, redis_client, keys, retention_s=60, active={"running"})
    gone = {name for name, path in files.items() if not path.exists()}
    assert gone == {"done", "failed", "stale", "orphan"}
    assert (swept.files, swept.bytes) == (4, 4000)


def test_budget_waits_for_room_and_stops_waiting_on_shutdown(tmp_path: Path) -> None:
    budget = SpoolBudget(tmp_path, max_bytes=10_000)
    filler = spooled(tmp_path, "filler.mp4", size=8_000)
    stop = threading.Event()
    budget.reserve("a", 1_000, stop)  # fits: 8 000 + 1 000
    assert budget.used_bytes() == 9_000
    waits: list[int] = []
    done = threading.Event()

    def second() -> None:
        budget.reserve("b", 2_000, stop, on_wait=waits.append)
        done.set()

    thread = threading.Thread(target=second)
    thread.start()
    wait_for(lambda: waits, timeout_s=10, what="the second reservation to wait")
    assert waits == [9_000] and not done.is_set()
    filler.unlink()
    budget.notify()
    wait_for(done.is_set, timeout_s=10, what="the second reservation to get its room")
    thread.join(timeout=5)
    assert budget.active() == {"a", "b"}
    budget.release("a")
    budget.release("b")

    spooled(tmp_path, "big.mp4", size=9_500)
    stop.set()
    with pytest.raises(ShuttingDown):
        budget.reserve("c", 1_000, stop)
