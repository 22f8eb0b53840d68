"""The worker writes objects and measured progress: real tasks on an in-process worker (as test_video_tasks)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker

from tests.conftest import REDIS_URL
from tests.helpers import moving_square_clip
from tests.integration.test_video_tasks import ended, queue_video, records, spooled, worker_app  # noqa: F401
from tests.models import square_detector
from vidwatch.config import AnalysisConfig, BrokerConfig, Config, EngineConfig, PathsConfig, RedisConfig
from vidwatch.errors import ResultsUnavailable
from vidwatch.media.normalize import normalize
from vidwatch.media.probe import probe
from vidwatch.results.keys import Keys
from vidwatch.results.objects import ObjectKeys, objects_of
from vidwatch.results.records import Records, State
from vidwatch.results.summary import Summary
from vidwatch.results.writer import ResultWriter
from vidwatch.tasks.app import ANALYZE_TASK, task_id
from vidwatch.tasks.video import register_tasks

pytestmark = pytest.mark.timeout(180)


def run_worker(config: Config) -> Iterator[Celery]:
    app = worker_app(config)
    register_tasks(app, config)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield app
    app.close()


@pytest.fixture
def square_config(redis_prefix: str, amqp_url: str, tmp_path: Path) -> Config:
    """The ONNX engine with a model that finds the white square (label ``square``): a thing, not motion."""
    model = square_detector(tmp_path / "squares.onnx")
    return Config(
        redis=RedisConfig(url=REDIS_URL, prefix=redis_prefix),
        broker=BrokerConfig(url=amqp_url),
        paths=PathsConfig(state_dir=tmp_path / "var"),
        analysis=AnalysisConfig(fps=5, size=320, segment_seconds=5.0),
        engine=EngineConfig(kind="onnx", model=model, batch=4, threads=1),
    )


@pytest.fixture
def square_app(square_config: Config) -> Iterator[Celery]:
    yield from run_worker(square_config)


@pytest.fixture
def motion_config(redis_prefix: str, amqp_url: str, tmp_path: Path) -> Config:
    return Config(
        redis=RedisConfig(url=REDIS_URL, prefix=redis_prefix),
        broker=BrokerConfig(url=amqp_url),
        paths=PathsConfig(state_dir=tmp_path / "var"),
        analysis=AnalysisConfig(fps=10, size=320, segment_seconds=8.0),
    )


@pytest.fixture
def motion_app(motion_config: Config) -> Iterator[Celery]:
    yield from run_worker(motion_config)


def test_a_tracked_thing_becomes_one_object_across_segments_written_once(
    square_app: Celery, square_config: Config, records: Records, redis_client: redis.Redis, tmp_path: Path,  # noqa: F811
    ffmpeg: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the summary write fails once, after the objects were written (as a worker that died between
    # the two would leave it): the retried summary task must add no object
    failures: list[str] = []
    write = ResultWriter.write_video_summary

    def fail_once(self: ResultWriter, summary: Summary, start_ts: float) -> str | None:
        if not failures:
            failures.append(summary.video_id)
            raise ResultsUnavailable("redis: connection lost (injected)")
        return write(self, summary, start_ts)

    monkeypatch.setattr(ResultWriter, "write_video_summary", fail_once)
    queue_video(records, "sq", spooled(square_config, tmp_path, "sq", 12.0))
    square_app.send_task(ANALYZE_TASK["cpu"], args=["sq"], task_id=task_id("sq"))
    record = ended(records, "sq")
    assert failures == ["sq"]
    assert record.state is State.DONE, record.error
    assert record.segments is not None and len(record.segments) == 2
    keys = records.keys
    (thing,) = objects_of(redis_client, keys, "sq")  # one square, its track joined across the cut
    assert (thing.label, thing.camera, thing.run) == ("square", "cam1", 1)
    assert thing.start_pts < 1.0 and thing.end_pts > 11.0
    assert thing.start_ts == pytest.approx(1_700_000_000 + thing.start_pts)
    assert thing.crop is not None and Path(thing.crop).is_file() and 0 < (thing.score or 0) <= 1
    summary = redis_client.xrange(keys.summaries, record.summary_id, record.summary_id)[0][1]
    assert str(thing.track) in json.loads(summary["tracks"])
    assert redis_client.zcard(ObjectKeys.of(keys).label("square")) == 1
    assert redis_client.xlen(keys.summaries) == 1 and redis_client.xlen(ObjectKeys.of(keys).stream) == 1
    assert [o.entry_id for o in objects_of(redis_client, keys, "sq")] == [thing.entry_id]
    record = records.record("sq")
    assert record is not None and record.extra["frames_done"] == record.extra["frames_planned"]


def test_motion_makes_no_tracks_crops_or_objects_and_progress_rises(
    motion_app: Celery, motion_config: Config, records: Records, redis_client: redis.Redis,  # noqa: F811
    tmp_path: Path, ffmpeg: str,
) -> None:
    """A 24 s video, 240 frames at 10 fps in 3 segments on one solo worker: its measured progress is watched.

    Each segment reports its first frame, then at most once a second, then its end: at least two steps each."""
    clip = moving_square_clip(tmp_path / "long-src.mp4", seconds=24.0, move_from_s=1.0, move_to_s=23.0)
    spool = motion_config.paths.spool / "long.mp4"
    normalize(clip, spool, probe(clip), motion_config.normalize)
    queue_video(records, "long", spool)
    key = Keys(motion_config.redis.prefix).video("long")
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        watcher = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        while not stop.is_set():
            done, planned = watcher.hmget(key, ("frames_done", "frames_planned"))
            if done is not None and (not seen or seen[-1] != (int(done), int(planned))):
                seen.append((int(done), int(planned)))
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert redis_client.hget(key, "frames_done") is None  # nothing measured yet: nothing to show
    motion_app.send_task(ANALYZE_TASK["cpu"], args=["long"], task_id=task_id("long"))
    record = ended(records, "long")
    stop.set()
    thread.join(timeout=5)
    assert record.state is State.DONE, record.error
    done_counts = [done for done, _ in seen]
    assert len(set(done_counts)) >= 3 and done_counts[0] < done_counts[-1] / 2, seen  # it rose while segments ran
    assert done_counts == sorted(done_counts), seen
    assert all(planned == pytest.approx(240, abs=10) for _, planned in seen), seen
    assert seen[-1][0] == seen[-1][1]  # all frames, at the end
    summary = redis_client.xrange(records.keys.summaries, record.summary_id, record.summary_id)[0][1]
    labels = json.loads(summary["labels"])
    assert labels["motion"]["tracks"] == 0 and json.loads(summary["activity"])  # activity without tracks
    assert "tracks" not in summary or json.loads(summary["tracks"]) == {}
    assert objects_of(redis_client, records.keys, "long") == []
    assert not (motion_config.paths.state_dir / "crops" / "long").exists() or not any(
        (motion_config.paths.state_dir / "crops" / "long").iterdir())
    detections = [json.loads(f["detections"]) for _, f in redis_client.xrange(records.keys.detections("cam1"))]
    assert detections and all(d["track"] is None for frame in detections for d in frame)
