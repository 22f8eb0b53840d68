"""Publishing without a single lock, and broker errors during fan-out that are retried, not fatal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from tests.conftest import REDIS_URL
from vidwatch.config import BrokerConfig, Config, PathsConfig, RedisConfig
from vidwatch.daemon.publish import Publisher
from vidwatch.errors import PublishError, is_retryable
from vidwatch.tasks import join
from vidwatch.tasks.app import ANALYZE_TASK, make_app
from vidwatch.tasks.resources import WorkerContext
from vidwatch.tasks.video import register_tasks


@pytest.fixture
def config(redis_prefix: str, amqp_url: str, tmp_path: Path) -> Config:
    return Config(redis=RedisConfig(url=REDIS_URL, prefix=redis_prefix), broker=BrokerConfig(url=amqp_url),
                  paths=PathsConfig(state_dir=tmp_path / "var"))


@pytest.fixture
def app(config: Config) -> Iterator[Celery]:
    app = make_app(config)
    yield app
    app.close()


def test_threads_publish_on_their_own_connections_and_confirms(app: Celery) -> None:
    publisher = Publisher(app, "cpu", timeout_s=10)
    started = threading.Barrier(4)
    errors: list[BaseException] = []

    def publish_five(thread: int) -> None:
        started.wait(timeout=10)
        try:
            for n in range(5):
                publisher.publish(f"t{thread}v{n}")
        except PublishError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish_five, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(publisher._open) == 4  # one connection per publishing thread, none shared behind a lock
    with app.connection_for_write() as connection:
        queued = connection.default_channel.queue_declare(queue="cpu", passive=True).message_count
    assert queued == 20
    publisher.close()
    assert not publisher._open
    publisher.publish("after-close")  # a closed publisher reconnects on the next publish
    publisher.close()


def test_a_failed_publish_drops_only_its_own_threads_connection(app: Celery, monkeypatch: pytest.MonkeyPatch) -> None:
    publisher = Publisher(app, "cpu", timeout_s=10)
    publisher.publish("main-1")
    other = threading.Thread(target=publisher.publish, args=("other-1",))
    other.start()
    other.join(timeout=30)
    assert len(publisher._open) == 2
    real_send = app.send_task

    def refused(*args: object, **kwargs: object) -> None:
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(app, "send_task", refused)
    with pytest.raises(PublishError, match="publish: video main-2: broker did not answer"):
        publisher.publish("main-2")
    assert len(publisher._open) == 1
    monkeypatch.setattr(app, "send_task", real_send)
    publisher.publish("main-3")
    assert len(publisher._open) == 2
    publisher.close()
    assert ANALYZE_TASK["cpu"] == publisher.task_name


def test_a_broker_error_during_fan_out_is_retryable(
    config: Config, app: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    context: WorkerContext = register_tasks(app, config)
    sent: list[str] = []

    def flaky_send(name: str, *args: object, task_id: str = "", **kwargs: object) -> None:
        if len(sent) == 2:
            raise ConnectionResetError(104, "Connection reset by peer")
        sent.append(task_id)

    monkeypatch.setattr(app, "send_task", flaky_send)
    with pytest.raises(PublishError, match="fan-out: video v1: segment 2: broker did not answer") as raised:
        join.fan_out(context, "v1", [(0.0, 10.0), (10.0, 10.0), (20.0, 10.0)], "cpu")
    assert is_retryable(raised.value)
    assert sent == ["v1.seg0", "v1.seg1"]
