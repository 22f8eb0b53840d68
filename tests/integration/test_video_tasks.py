"""The analysis tasks (vidwatch.tasks.video, vidwatch.tasks.summary) run by a real worker.

An in-process Celery worker (solo pool) on this test's RabbitMQ vhost consumes the tasks
registered by ``register_tasks``, exactly as ``vidwatch worker`` binds them; results go to
this test's Redis prefix. Each test waits for the video's state with a deadline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker

from tests.conftest import REDIS_URL
from tests.helpers import moving_square_clip, wait_for
from vidwatch.config import AnalysisConfig, BrokerConfig, Config, PathsConfig, RedisConfig
from vidwatch.media.normalize import normalize
from vidwatch.media.probe import probe
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records, State, VideoRecord
from vidwatch.tasks.app import ANALYZE_TASK, SEGMENT_TASK, SUMMARY_TASK, make_app, task_id
from vidwatch.tasks.threadpool import RUNNING, ThreadPool
from vidwatch.tasks.video import register_tasks

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def config(redis_prefix: str, amqp_url: str, tmp_path: Path) -> Config:
    return Config(
        redis=RedisConfig(url=REDIS_URL, prefix=redis_prefix),
        broker=BrokerConfig(url=amqp_url),
        paths=PathsConfig(state_dir=tmp_path / "var"),
        analysis=AnalysisConfig(fps=5, size=320, segment_seconds=5.0),
    )


def worker_app(config: Config) -> Celery:
    """The app ``vidwatch worker`` builds, without broker heartbeats (the in-process worker stops in 1 s, not 10)."""
    app = make_app(config)
    app.conf.broker_heartbeat = 0
    return app


@pytest.fixture
def app(config: Config) -> Iterator[Celery]:
    app = worker_app(config)
    register_tasks(app, config)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield app
    app.close()


@pytest.fixture
def records(redis_client: redis.Redis, redis_prefix: str) -> Records:
    return Records(redis_client, Keys(redis_prefix), events_maxlen=1000)


def spooled(config: Config, tmp_path: Path, name: str, seconds: float) -> Path:
    clip = moving_square_clip(tmp_path / f"{name}-src.mp4", seconds=seconds, move_from_s=1.0,
                              move_to_s=seconds - 1.0)
    target = config.paths.spool / f"{name}.mp4"
    normalize(clip, target, probe(clip), config.normalize)
    return target


def queue_video(records: Records, video_id: str, spool: Path, **fields: str) -> None:
    path = f"/in/{video_id}.mp4"
    records.create(video_id, {"path": path, "camera": "cam1", "spool_path": str(spool), "start_ts": "1700000000",
                              **fields}, path=path)
    records.transition(video_id, State.QUEUED, event="queued", path=path)


def ended(records: Records, video_id: str) -> VideoRecord:
    def check() -> VideoRecord | None:
        record = records.record(video_id)
        return record if record is not None and record.terminal else None

    return wait_for(check, timeout_s=90, what=f"video {video_id} to end")


def summary_of(client: redis.Redis, keys: Keys, record: VideoRecord) -> dict[str, str]:
    return client.xrange(keys.summaries, record.summary_id, record.summary_id)[0][1]


def events(client: redis.Redis, keys: Keys, video_id: str) -> list[str]:
    return [f["type"] for _, f in client.xrange(keys.events) if f["video_id"] == video_id]


def test_a_short_video_is_analysed_and_summarised_by_one_task(
    app: Celery, config: Config, records: Records, redis_client: redis.Redis, tmp_path: Path, ffmpeg: str
) -> None:
    queue_video(records, "short", spooled(config, tmp_path, "short", 4.0))
    app.send_task(ANALYZE_TASK["cpu"], args=["short"], task_id=task_id("short"))
    record = ended(records, "short")
    assert record.state is State.DONE, record.error
    summary = summary_of(redis_client, records.keys, record)
    processing = json.loads(summary["processing"])
    assert (summary["video_id"], summary["path"], summary["camera"]) == ("short", "/in/short.mp4", "cam1")
    assert processing["segments"] == 1 and int(summary["frames_analyzed"]) == 20
    assert json.loads(summary["activity"])  # the square moved
    assert events(redis_client, records.keys, "short") == ["detected", "queued", "started", "done"]
    assert not redis_client.exists(records.keys.deliveries(f"{task_id('short', 'summary')}.r1"))


def test_a_long_video_is_fanned_out_and_joined_by_the_summary_task(
    app: Celery, config: Config, records: Records, redis_client: redis.Redis, tmp_path: Path, ffmpeg: str
) -> None:
    queue_video(records, "long", spooled(config, tmp_path, "long", 12.0))
    app.send_task(ANALYZE_TASK["cpu"], args=["long"], task_id=task_id("long"))
    record = ended(records, "long")
    assert record.state is State.DONE, record.error
    assert record.segments is not None and len(record.segments) == 2
    summary = summary_of(redis_client, records.keys, record)
    assert json.loads(summary["processing"])["segments"] == 2
    assert int(summary["frames_analyzed"]) == 60
    labels = json.loads(summary["labels"])
    assert all(stats["tracks"] >= 1 for stats in labels.values())
    kinds = events(redis_client, records.keys, "long")
    assert kinds.count("segment_done") == 2 and kinds[-1] == "done" and kinds.count("started") == 1
    for unit in ("analyze", "seg0", "seg1", "summary"):  # each message delivered once
        assert redis_client.get(records.keys.deliveries(f"{task_id('long', unit)}.r1")) == "1"


def test_the_gpu_workers_thread_pool_runs_the_segments_with_their_limits(
    config: Config, records: Records, redis_client: redis.Redis, tmp_path: Path, ffmpeg: str
) -> None:
    """Threads of one process share one batcher; each task's limits are registered while it runs."""
    app = worker_app(config)
    context = register_tasks(app, config, threaded=True)
    queue_video(records, "gpu", spooled(config, tmp_path, "gpu", 12.0))
    with start_worker(app, pool=ThreadPool, concurrency=2, perform_ping_check=False, shutdown_timeout=30):
        app.send_task(ANALYZE_TASK["gpu"], args=["gpu"], task_id=task_id("gpu"))
        record = ended(records, "gpu")
    app.close()
    assert record.state is State.DONE, record.error
    summary = summary_of(redis_client, records.keys, record)
    assert json.loads(summary["processing"])["segments"] == 2 and int(summary["frames_analyzed"]) == 60
    assert int(context.batch_stats()["batch_frames"]) >= 60  # every segment fed the one batcher
    assert RUNNING.overdue(now=float("inf")) == []  # finished tasks leave the registry


def test_a_missing_spooled_copy_fails_the_video_in_the_analyze_stage(
    app: Celery, config: Config, records: Records, tmp_path: Path
) -> None:
    queue_video(records, "gone", config.paths.spool / "gone.mp4")
    app.send_task(ANALYZE_TASK["cpu"], args=["gone"], task_id=task_id("gone"))
    record = ended(records, "gone")
    assert record.state is State.FAILED
    assert record.error == f"analyze: /in/gone.mp4: spooled copy {config.paths.spool / 'gone.mp4'} is missing"
    assert (record.failure_stage, record.failure_kind) == ("analyze", "missing")


def test_a_summary_failure_names_the_summary_stage_and_the_file(
    app: Celery, config: Config, records: Records, tmp_path: Path
) -> None:
    queue_video(records, "torn", config.paths.spool / "torn.mp4", segments="[[0, 5], [5, 5]]")
    records.transition("torn", State.PROCESSING, event="started", path="/in/torn.mp4")
    app.send_task(SUMMARY_TASK, args=["torn"], task_id=task_id("torn", "summary"))
    record = ended(records, "torn")
    assert record.state is State.FAILED
    assert record.error == "summary: /in/torn.mp4: segments [0, 1] never reported"
    assert (record.failure_stage, record.failure_kind) == ("summary", "missing")


def test_a_segment_of_a_finished_video_is_ignored(
    app: Celery, config: Config, records: Records, redis_client: redis.Redis, tmp_path: Path
) -> None:
    queue_video(records, "old", config.paths.spool / "old.mp4", segments="[[0, 5], [5, 5]]")
    records.fail("old", "analyze: /in/old.mp4: given up", path="/in/old.mp4", stage="analyze", kind="other")
    app.send_task(SEGMENT_TASK["cpu"], args=["old", 1], task_id=task_id("old", "seg1"))
    # a later message on the same queue has been handled once the ignored one has
    queue_video(records, "gone", config.paths.spool / "gone.mp4")
    app.send_task(SEGMENT_TASK["cpu"], args=["gone", 0], task_id=task_id("gone", "seg0"))
    ended(records, "gone")
    assert records.record("old").error == "analyze: /in/old.mp4: given up"
    assert not redis_client.exists(records.keys.deliveries(f"{task_id('old', 'seg1')}.r1"))
