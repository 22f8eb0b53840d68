"""Measured progress in the record: per segment and summed, at a bounded rate, set (not added) on redelivery."""

from __future__ import annotations

import redis

from vidwatch.results.keys import Keys
from vidwatch.results.progress import ProgressReporter, counts, fraction, segment_counts


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_segments_add_up_at_a_bounded_rate(redis_client: redis.Redis, redis_prefix: str) -> None:
    keys = Keys(redis_prefix)
    key = keys.video("v")
    redis_client.hset(key, mapping={"state": "processing"})
    clock = Clock()
    plan = [100, 100, 50]
    first = ProgressReporter(redis_client, keys, "v", 0, plan=plan, every_s=1.0, clock=clock)
    second = ProgressReporter(redis_client, keys, "v", 1, plan=plan, every_s=1.0, clock=clock)
    for n in range(1, 51):  # 50 frames in 0.49 s: one report (the first frame), not fifty
        first.frame(n)
        clock.now += 0.01
    assert first.reports == 1
    assert counts(redis_client.hgetall(key)) == (1, 250)
    clock.now += 1.0
    first.frame(60)
    second.frame(10)
    record = redis_client.hgetall(key)
    assert counts(record) == (70, 250) and segment_counts(record) == {0: (60, 100), 1: (10, 100)}
    first.frame(98)
    first.close()  # ran to its end with 98 frames: its planned count is what it had
    record = redis_client.hgetall(key)
    assert counts(record) == (108, 248) and fraction(record) == round(108 / 248, 3)
    again = ProgressReporter(redis_client, keys, "v", 1, plan=plan, every_s=1.0, clock=clock)  # redelivered
    again.frame(3)
    assert segment_counts(redis_client.hgetall(key))[1] == (3, 100)
    redis_client.hset(key, "state", "done")
    second.frame(99)
    second.close()
    assert segment_counts(redis_client.hgetall(key))[1] == (3, 100)  # a late report changes nothing
    assert fraction({"state": "queued"}) is None
