"""The worker's one error policy (vidwatch.tasks.policy): what each error does to the video and the message.

Real Redis for the records and delivery counts; a real RabbitMQ vhost and an in-process
worker where the policy has to go through the broker (a retry is a new message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.exceptions import Reject, SoftTimeLimitExceeded

from tests.conftest import REDIS_URL
from tests.helpers import wait_for
from vidwatch.config import BrokerConfig, Config, PathsConfig, RedisConfig, WorkerConfig
from vidwatch.errors import (
    Cancelled,
    EngineError,
    Poison,
    PublishError,
    ResultsUnavailable,
    SourceError,
)
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records, State
from vidwatch.tasks import policy
from vidwatch.tasks.app import make_app
from vidwatch.tasks.policy import Job, Verdict, count_delivery, decide, failure_reason, run_task
from vidwatch.tasks.resources import WorkerContext, WorkerTask
from vidwatch.tasks.video import register_tasks

VERDICTS = [  # exception, verdict
    (Cancelled("task t1: cancelled"), Verdict.CANCEL),
    (Poison("analyze: a.mp4: poison message"), Verdict.POISON),
    (ResultsUnavailable("redis: Redis unavailable: refused"), Verdict.RETRY),
    (PublishError("broker did not confirm"), Verdict.RETRY),
    (SourceError("spooled copy x is missing", kind="unreadable"), Verdict.FAIL),
    (EngineError("onnx: model.onnx: bad input"), Verdict.FAIL),
    (SoftTimeLimitExceeded(), Verdict.FAIL),
    (KeyError("x"), Verdict.FAIL),
    (redis.ConnectionError("raw, untranslated"), Verdict.FAIL),  # translated by run_task first
]


@pytest.mark.parametrize(("exc", "expected"), VERDICTS)
def test_one_function_decides_what_an_error_does(exc: BaseException, expected: Verdict) -> None:
    assert decide(exc) is expected


REASONS = [  # stage, exception, the video's error text
    ("analyze", SoftTimeLimitExceeded(), "analyze: /in/a.mp4: time limit exceeded"),
    ("summary", SoftTimeLimitExceeded(), "summary: /in/a.mp4: time limit exceeded"),
    ("analyze", SourceError("spooled copy /s/a.mp4 is missing"),
     "analyze: /in/a.mp4: spooled copy /s/a.mp4 is missing"),
    ("summary", KeyError("x"), "summary: /in/a.mp4: internal error: KeyError('x')"),
]


@pytest.mark.parametrize(("stage", "exc", "expected"), REASONS)
def test_a_failure_names_its_stage_and_file(stage: str, exc: BaseException, expected: str) -> None:
    assert failure_reason(Job("v1", stage, "/in/a.mp4"), exc) == expected


@pytest.fixture
def config(redis_prefix: str, amqp_url: str, tmp_path: Path) -> Config:
    return Config(
        redis=RedisConfig(url=REDIS_URL, prefix=redis_prefix),
        broker=BrokerConfig(url=amqp_url),
        paths=PathsConfig(state_dir=tmp_path / "var"),
        worker=WorkerConfig(max_deliveries=2),
    )


@pytest.fixture
def app(config: Config) -> Iterator[Celery]:
    app = make_app(config)
    app.conf.broker_heartbeat = 0  # the in-process worker stops in 1 s, not 10
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


def raising(exc: BaseException) -> Callable[[], str]:
    def body() -> str:
        raise exc

    return body


FAILURES = [  # stage, what the body raises, (error text, failure stage, failure kind)
    ("analyze", SourceError("spooled copy /s/a.mp4 is missing"),
     ("analyze: /in/a.mp4: spooled copy /s/a.mp4 is missing", "analyze", "unreadable")),
    ("summary", SoftTimeLimitExceeded(), ("summary: /in/a.mp4: time limit exceeded", "summary", "timeout")),
    ("summary", ValueError("bad"), ("summary: /in/a.mp4: internal error: ValueError('bad')", "summary", "internal")),
    ("analyze", redis.ResponseError("WRONGTYPE"), ("analyze: /in/a.mp4: redis: WRONGTYPE", "analyze", "other")),
]


@pytest.mark.parametrize(("stage", "exc", "expected"), FAILURES)
def test_a_permanent_error_fails_the_video_once_with_stage_and_kind(
    app: Celery, context: WorkerContext, records: Records, stage: str, exc: BaseException,
    expected: tuple[str, str, str],
) -> None:
    task = app.tasks["vidwatch.summary.summarize"]
    job = Job("v1", stage, "/in/a.mp4")
    assert run_task(task, context, job, raising(exc)) == "failed"
    assert run_task(task, context, job, raising(exc)) == "failed"  # a second failure changes nothing
    record = records.record("v1")
    assert record is not None and record.state is State.FAILED
    assert (record.error, record.failure_stage, record.failure_kind) == expected
    failed = [f for _, f in records.client.xrange(records.keys.events) if f["type"] == "failed"]
    assert len(failed) == 1 and failed[0]["failure_stage"] == stage


def test_a_cancelled_task_goes_back_to_the_queue_and_the_video_stays(
    app: Celery, context: WorkerContext, records: Records
) -> None:
    task = app.tasks["vidwatch.cpu.analyze_video"]
    with pytest.raises(Cancelled):
        run_task(task, context, Job("v1", "analyze", "/in/a.mp4"), raising(Cancelled("task v1.analyze: cancelled")))
    assert records.record("v1").state is State.PROCESSING


def test_a_poison_message_is_rejected_without_requeue(app: Celery, context: WorkerContext, records: Records) -> None:
    task = app.tasks["vidwatch.cpu.analyze_video"]
    job = Job("v1", "summary", "/in/a.mp4")

    def body() -> str:
        for _ in range(3):  # max_deliveries 2: the third delivery is poison
            count_delivery(context, job, "summary", "1")
        return "not reached"

    with pytest.raises(Reject) as rejected:
        run_task(task, context, job, body)
    assert rejected.value.requeue is False
    record = records.record("v1")
    assert record.state is State.FAILED and record.failure_stage == "summary"
    assert record.error == "summary: /in/a.mp4: poison message: summary delivered 3 times (max_deliveries 2)"
    assert isinstance(rejected.value.__cause__, Poison)


def test_deliveries_are_counted_per_run(context: WorkerContext, records: Records) -> None:
    job = Job("v1", "analyze", "/in/a.mp4")
    for run in ("1", "1", "2", "2", "3"):
        count_delivery(context, job, "seg0", run)  # never more than 2 in one run
    assert records.record("v1").state is State.PROCESSING


def flaky(task: WorkerTask, video_id: str, failures: int) -> str:
    """A task whose body finds Redis unreachable ``failures`` times, then records that it ran."""
    context = task.context
    job = Job(video_id, "analyze", "/in/a.mp4")

    def body() -> str:
        attempt = context.client.incr(context.keys.deliveries("flaky"))
        if attempt <= failures:
            raise redis.ConnectionError(f"attempt {attempt}: connection refused")
        context.client.set(context.keys.deliveries("flaky.ok"), str(attempt))
        return "ok"

    return run_task(task, context, job, body)


@pytest.fixture
def worker(app: Celery, context: WorkerContext) -> Iterator[None]:
    app.task(name="vidwatch.cpu.flaky", bind=True, base=WorkerTask, context=context, max_retries=5,
             shared=False)(flaky)
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["cpu"], shutdown_timeout=30):
        yield


def test_redis_unreachable_is_retried_through_the_broker(
    app: Celery, worker: None, context: WorkerContext, records: Records
) -> None:
    app.send_task("vidwatch.cpu.flaky", args=["v1", 1])
    assert wait_for(lambda: context.client.get(context.keys.deliveries("flaky.ok")), timeout_s=30,
                    what="the retried task to run") == "2"
    assert records.record("v1").state is State.PROCESSING


def test_retries_end_by_failing_the_video(
    app: Celery, worker: None, context: WorkerContext, records: Records, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(policy, "MAX_RETRIES", 1)
    app.send_task("vidwatch.cpu.flaky", args=["v1", 10])
    wait_for(lambda: records.record("v1").state is State.FAILED, timeout_s=30, what="the video to fail")
    record = records.record("v1")
    assert record.error.startswith("analyze: /in/a.mp4: redis: Redis unavailable: attempt 2: connection refused")
    assert record.error.endswith("(unreachable after 1 retries)")
    assert (record.failure_stage, record.failure_kind) == ("analyze", "unreachable")
    assert context.client.get(context.keys.deliveries("flaky")) == "2"  # the first run and one retry
