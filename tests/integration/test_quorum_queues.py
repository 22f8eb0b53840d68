"""``[broker] quorum_queues = true``: every queue, ``dead`` included, is a quorum queue with a broker-side
delivery limit, and a transient error is retried inside the task (no countdown on the direct exchange).

Runs on the shared RabbitMQ (quorum queues work on one node); the 3-node cluster is in
tests/e2e/test_distributed.py.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker

from tests.conftest import REDIS_URL
from tests.helpers import wait_for
from vidwatch.config import BrokerConfig, Config, PathsConfig, RedisConfig, WorkerConfig
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records, State
from vidwatch.tasks import policy
from vidwatch.tasks.app import DEAD_QUEUE, QUEUES, dead_letter_queue, make_app, retries_in_task
from vidwatch.tasks.policy import Job, run_task
from vidwatch.tasks.resources import WorkerContext, WorkerTask
from vidwatch.tasks.video import register_tasks


@pytest.fixture
def config(redis_prefix: str, amqp_url: str, tmp_path: Path) -> Config:
    return Config(
        redis=RedisConfig(url=REDIS_URL, prefix=redis_prefix),
        broker=BrokerConfig(url=amqp_url, quorum_queues=True),
        paths=PathsConfig(state_dir=tmp_path / "var"),
        worker=WorkerConfig(max_deliveries=2),
    )


@pytest.fixture
def app(config: Config) -> Iterator[Celery]:
    app = make_app(config)
    app.conf.broker_heartbeat = 0
    yield app
    app.close()


@pytest.fixture
def context(config: Config, app: Celery) -> WorkerContext:
    context = register_tasks(app, config)
    context.ensure()
    return context


@pytest.fixture
def records(redis_client: redis.Redis, redis_prefix: str) -> Records:
    records = Records(redis_client, Keys(redis_prefix), events_maxlen=1000)
    records.create("v1", {"path": "/in/a.mp4"}, path="/in/a.mp4")
    records.transition("v1", State.PROCESSING, event="started", path="/in/a.mp4")
    return records


def flaky(task: WorkerTask, video_id: str, failures: int) -> str:
    """Finds Redis unreachable ``failures`` times, then records the attempt that succeeded."""
    context = task.context
    job = Job(video_id, "analyze", "/in/a.mp4")

    def body() -> str:
        attempt = context.client.incr(context.keys.deliveries("flaky"))
        if attempt <= failures:
            raise redis.ConnectionError(f"attempt {attempt}: connection refused")
        context.client.set(context.keys.deliveries("flaky.ok"), f"{attempt}:{task.request.retries}")
        return "ok"

    return run_task(task, context, job, body)


@pytest.fixture
def worker(app: Celery, context: WorkerContext, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(policy, "backoff_s", lambda retries: 0.05 * (retries + 1))
    app.task(name="vidwatch.cpu.flaky", bind=True, base=WorkerTask, context=context, max_retries=5,
             shared=False)(flaky)
    with app.connection_for_write() as connection:
        dead_letter_queue(context.config)(connection.default_channel).declare()
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["cpu"], shutdown_timeout=30):
        yield


def queue_types(amqp_url: str) -> dict[str, tuple[str, str]]:
    """name -> (type, arguments) of the vhost's queues, as the broker reports them."""
    vhost = unquote(urlparse(amqp_url).path[1:])
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    listed = subprocess.run([ctl, "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "type",
                             "arguments"], capture_output=True, text=True, timeout=60, check=True)
    rows = [line.split("\t") for line in listed.stdout.splitlines() if line.strip()]
    return {row[0]: (row[1], row[2] if len(row) > 2 else "") for row in rows}


def test_every_queue_and_dead_are_quorum_with_a_delivery_limit(
    app: Celery, worker: None, config: Config, amqp_url: str
) -> None:
    assert retries_in_task(config)
    types = queue_types(amqp_url)
    assert types[DEAD_QUEUE][0] == "quorum"
    assert types["cpu"][0] == "quorum" and "x-delivery-limit" in types["cpu"][1]
    with app.connection_for_write() as connection:  # the daemon declares the others as it publishes
        for name in QUEUES:
            app.amqp.queues[name](connection.default_channel).declare()
    types = queue_types(amqp_url)
    assert {name: types[name][0] for name in QUEUES} == dict.fromkeys(QUEUES, "quorum")


def test_a_transient_error_is_retried_inside_the_task(
    app: Celery, worker: None, context: WorkerContext, records: Records
) -> None:
    app.send_task("vidwatch.cpu.flaky", args=["v1", 2])
    done = wait_for(lambda: context.client.get(context.keys.deliveries("flaky.ok")), timeout_s=30,
                    what="the retried task to succeed")
    assert done == "3:0"  # third attempt, in the first delivery: no retry message was published
    assert records.record("v1").state is State.PROCESSING


def test_in_task_retries_end_by_failing_the_video(
    app: Celery, worker: None, context: WorkerContext, records: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(policy, "MAX_RETRIES", 2)
    app.send_task("vidwatch.cpu.flaky", args=["v1", 10])
    wait_for(lambda: records.record("v1").state is State.FAILED, timeout_s=30, what="the video to fail")
    record = records.record("v1")
    assert record.error.endswith("(unreachable after 2 retries)")
    assert context.client.get(context.keys.deliveries("flaky")) == "3"  # the first run and two retries, no more
