"""A task that outlives RabbitMQ's consumer_timeout is a crash loop; the task time limit prevents it.

A private RabbitMQ whose consumer_timeout is 5 s (and whose channels check it every 250 ms
instead of every minute) and a real `vidwatch worker`. The same slow video (person
detection at 640x480, 10 fps, 60 s of clip: tens of seconds of work) is analysed twice:

- with `task_time_limit_seconds` below the consumer timeout, its soft limit fails the
  video once, the delivery is acknowledged in time, and the worker goes on to the next;
- with the limit above it (the control), the broker closes the worker's channel with
  406 PRECONDITION_FAILED, the worker shuts down ("Unrecoverable error"; under systemd it
  restarts into the same task) and the delivery is back in the queue: the crash loop the
  limit is there to prevent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kombu import Connection

from tests.conftest import free_port
from tests.e2e.processes import Proc
from tests.helpers import missing, moving_square_clip, stored, wait_for
from vidwatch.config import Config, load_config
from vidwatch.errors import ConfigError
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records
from vidwatch.services import start_rabbitmq
from vidwatch.tasks.app import ANALYZE_TASK, make_app
from vidwatch.tasks.video import task_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

CONSUMER_TIMEOUT_MS = 5000
CHANNEL_TICK_MS = 250  # the broker checks the oldest unacknowledged delivery once per tick (default 60 s)
BELOW_S = 4  # hard limit; the soft limit, which fails the video, comes at 3.6 s
ABOVE_S = 60
CHANNEL_CLOSED = "PRECONDITION_FAILED - delivery acknowledgement on channel"


@pytest.fixture
def broker_url(tmp_path: Path) -> Iterator[str]:
    """A private RabbitMQ node with a consumer timeout of a few seconds, enforced within a tick."""
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    try:
        rabbit = start_rabbitmq(url, tmp_path / "rabbit", rabbit_env={
            "consumer_timeout": CONSUMER_TIMEOUT_MS, "channel_tick_interval": CHANNEL_TICK_MS,
        })
    except ConfigError as exc:
        missing(f"a private RabbitMQ ({exc})", "apt-get install rabbitmq-server")
    try:
        yield url
    finally:
        rabbit.stop()


def _worker_env(broker_url: str, limit_s: float) -> dict[str, str]:
    return {
        "VIDWATCH_BROKER__URL": broker_url,
        "VIDWATCH_WORKER__TASK_TIME_LIMIT_SECONDS": str(limit_s),
        "VIDWATCH_ENGINE__KIND": "opencv",  # motion + HOG people: slow enough on 640x480 frames
        "VIDWATCH_ANALYSIS__FPS": "10",
        "VIDWATCH_ANALYSIS__SIZE": "640",
    }


def _queue(records: Records, config: Config, video_id: str, clip: Path) -> None:
    """A spooled video in state `queued`, as the daemon leaves it, and its task message."""
    records.create(video_id, {"spool_path": str(clip), "path": f"/in/{video_id}.mp4", "camera": "cam1"},
                   path=f"/in/{video_id}.mp4")
    records.transition(video_id, "queued")
    make_app(config).send_task(ANALYZE_TASK["cpu"], args=[video_id], task_id=task_id(video_id, "analyze"))


def _ready(broker_url: str) -> int:
    """Messages waiting in the `cpu` queue (not counting deliveries a consumer holds)."""
    with Connection(broker_url) as conn:
        return conn.default_channel.queue_declare(queue="cpu", passive=True).message_count


@pytest.fixture
def slow_clip(site: dict, ffmpeg: str) -> Path:
    """60 s at 640x480, 10 fps: about 600 frames of people detection, far more work than 5 s."""
    spool = load_config(site["config"], environ={}).paths.spool
    return moving_square_clip(spool / "slow.mp4", seconds=60, size="640x480", fps=10, move_to_s=58)


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_time_limit_below_consumer_timeout_fails_the_video_once_and_the_worker_goes_on(
    site: dict, redis_client: redis.Redis, broker_url: str, slow_clip: Path, tmp_path: Path, pool: str
) -> None:
    """Both pools: prefork (Celery's limits, signals) and threads (the per-frame check of the GPU worker)."""
    env = _worker_env(broker_url, BELOW_S)
    config = load_config(site["config"], environ=env)
    keys = Keys(site["prefix"])
    records = Records(redis_client, keys, events_maxlen=1000)
    short = moving_square_clip(config.paths.spool / "short.mp4", seconds=1, size="320x240", fps=10,
                               move_from_s=0.2, move_to_s=0.8)

    worker = Proc(["worker", "--pool", pool, "-c", str(site["config"])], tmp_path / "worker.log", env)
    try:
        _queue(records, config, "slow", slow_clip)
        wait_for(lambda: stored(records, "slow").get("state") in ("done", "failed"), timeout_s=60,
                 what="the slow video to end")
        _queue(records, config, "short", short)  # the same worker, after the failure
        wait_for(lambda: stored(records, "short").get("state") in ("done", "failed"), timeout_s=30,
                 what="the short video to end")
        assert worker.proc.poll() is None, worker.tail()
        left = _ready(broker_url)
    finally:
        worker.stop()

    slow = stored(records, "slow")
    assert (slow["state"], slow.get("error")) == ("failed", "analyze: /in/slow.mp4: time limit exceeded")
    assert stored(records, "short")["state"] == "done", stored(records, "short").get("error")
    failed = [f["video_id"] for _, f in redis_client.xrange(keys.events) if f["type"] == "failed"]
    assert failed == ["slow"]  # once
    # acknowledged in time: never redelivered (the delivery counts went with the video's end, so
    # the worker's own log of each message it received is the witness)
    assert worker.log.read_text(errors="replace").count(f"[{task_id('slow', 'analyze')}] received") == 1
    assert left == 0
    # The short video was delivered only once the slow one was settled (prefetch 1): a channel
    # closed by the broker before that would be in the log by now.
    assert CHANNEL_CLOSED not in worker.log.read_text(errors="replace")


def test_control_a_time_limit_above_consumer_timeout_gets_the_channel_closed(
    site: dict, redis_client: redis.Redis, broker_url: str, slow_clip: Path, tmp_path: Path
) -> None:
    env = _worker_env(broker_url, ABOVE_S)
    config = load_config(site["config"], environ=env)
    keys = Keys(site["prefix"])
    records = Records(redis_client, keys, events_maxlen=1000)

    worker = Proc(["worker", "-c", str(site["config"])], tmp_path / "worker.log", env)
    try:
        _queue(records, config, "slow", slow_clip)
        wait_for(lambda: stored(records, "slow").get("state") == "processing", timeout_s=30, what="the task to start")
        wait_for(lambda: CHANNEL_CLOSED in worker.log.read_text(errors="replace"),
                 timeout_s=CONSUMER_TIMEOUT_MS / 1000 + 20, what="the broker to close the worker's channel (406)")
        wait_for(lambda: _ready(broker_url) == 1, timeout_s=10, what="the delivery to be back in the queue")
        log = worker.log.read_text(errors="replace")
    finally:
        worker.stop(timeout_s=5)  # it is waiting for the task it can no longer acknowledge
    assert "Unrecoverable error: PreconditionFailed" in log
    assert stored(records, "slow")["state"] == "processing"  # still running when the channel was closed
