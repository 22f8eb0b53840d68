"""A task killed at its hard time limit fails its video (once), whichever pool ran it."""

from __future__ import annotations

import threading

import redis
from celery.exceptions import TimeLimitExceeded

from tests.conftest import REDIS_URL
from tests.helpers import stored
from vidwatch.config import Config, RedisConfig
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records
from vidwatch.tasks.app import make_app
from vidwatch.tasks.video import WorkerContext
from vidwatch.tasks.worker import _hard_limit


def test_a_hard_time_limit_fails_the_video_once(redis_client: redis.Redis, redis_prefix: str) -> None:
    config = Config(redis=RedisConfig(url=REDIS_URL, prefix=redis_prefix))
    keys = Keys(redis_prefix)
    records = Records(redis_client, keys, events_maxlen=1000)
    records.create("v1", {"path": "/cam1/a.mp4"}, path="/cam1/a.mp4")
    records.transition("v1", "processing", event="started", path="/cam1/a.mp4")
    context = WorkerContext(config, make_app(config))

    _hard_limit(context, exception=ValueError("not a time limit"), args=["v1"], task_id="v1.seg0")
    assert stored(records, "v1")["state"] == "processing"
    _hard_limit(context, exception=TimeLimitExceeded(5), args=["v1", 0], task_id="v1.seg0")
    _hard_limit(context, exception=TimeLimitExceeded(5), args=["v1", 1], task_id="v1.seg1")

    record = stored(records, "v1")
    assert record["state"] == "failed" and "hard time limit exceeded (v1.seg0)" in record["error"]
    assert [f["type"] for _, f in redis_client.xrange(keys.events)] == ["detected", "started", "failed"]


def test_the_first_tasks_of_a_thread_pool_share_one_engine_pool(redis_prefix: str) -> None:
    """Two threads setting up the process at once get the same batchers (one engine per GPU, not per thread)."""
    config = Config(redis=RedisConfig(url=REDIS_URL, prefix=redis_prefix))
    context = WorkerContext(config, make_app(config), threaded=True)
    start = threading.Barrier(4)
    seen: list[object] = []

    def first_task() -> None:
        start.wait(10)
        context.ensure()
        seen.append(context._batchers)

    threads = [threading.Thread(target=first_task) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(seen) == 4 and len({id(b) for b in seen}) == 1
