"""The GPU worker's thread pool: cooperative soft limit and cancellation, a hard-limit watchdog, the pool choice."""

from __future__ import annotations

import threading

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from tests.helpers import wait_for
from vidwatch.config import Config, EngineConfig
from vidwatch.engines.onnx import owned_cores
from vidwatch.tasks.threadpool import HARD_LIMIT_EXIT_CODE, RUNNING, Cancelled, Limits, Registry, ThreadPool
from vidwatch.tasks.worker import choose_pool


def test_the_soft_limit_raises_once_in_the_per_frame_check() -> None:
    limits = Limits("t1", soft_at=0.0, hard_at=None)
    with pytest.raises(SoftTimeLimitExceeded, match="t1"):
        limits.check()
    limits.check()  # raised once: the task's clean-up may run its own checks


def test_a_cancelled_task_stops_at_its_next_check() -> None:
    registry = Registry(exit=lambda code: None)
    registry.expect("t2", soft_s=None, hard_s=None)
    limits = registry.get("t2")
    limits.check()
    registry.cancel("t2")
    with pytest.raises(Cancelled, match="t2"):
        limits.check()
    registry.done("t2")
    assert registry.get("t2") is None


def test_the_watchdog_fails_an_overdue_task_and_ends_the_process() -> None:
    exits: list[int] = []
    failed: list[str] = []
    registry = Registry(exit=exits.append)
    registry.expect("stuck", soft_s=None, hard_s=0.01)
    registry.expect("fine", soft_s=None, hard_s=3600)
    registry.get("stuck").on_hard = lambda: failed.append("stuck")
    wait_for(lambda: exits, timeout_s=10, what="the watchdog to end the process")
    assert exits[0] == HARD_LIMIT_EXIT_CODE and failed[:1] == ["stuck"]
    assert [lim.task_id for lim in registry.overdue()] == ["stuck"]


@pytest.mark.parametrize(
    ("settings", "kwargs", "expected"),
    [
        ({}, {}, ("prefork", owned_cores())),  # [worker] concurrency 0: one process per core (issue 12)
        ({}, {"concurrency": 3}, ("prefork", 3)),
        ({}, {"gpu": True}, ("threads", 2)),
        ({}, {"gpu": True, "threads": 4}, ("threads", 4)),
        ({"worker": {"pool": "prefork"}}, {"gpu": True, "concurrency": 3}, ("prefork", 1)),  # one process per GPU
        ({"worker": {"pool": "threads", "threads": 3}}, {}, ("threads", 3)),
        ({}, {"pool": "threads"}, ("threads", 2)),
        ({"worker": {"concurrency": 2}}, {}, ("prefork", 2)),
    ],
)
def test_the_pool_choice(settings: dict, kwargs: dict, expected: tuple[str, int]) -> None:
    assert choose_pool(Config.model_validate(settings), **kwargs) == expected


def test_auto_picks_threads_for_a_tensorrt_engine(tmp_path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    config = Config(engine=EngineConfig(kind="tensorrt", model=model))
    assert choose_pool(config) == ("threads", 2)


def test_celery_cancelling_an_applied_task_reaches_its_per_frame_check() -> None:
    """What the consumer does on connection loss (request.cancel → the applied result's terminate)."""
    pool = ThreadPool(limit=1)
    pool.start()
    started, release = threading.Event(), threading.Event()
    seen: list[BaseException] = []

    def task() -> None:
        started.set()
        release.wait(30)
        try:
            RUNNING.get("t-cancel").check()
        except Cancelled as exc:
            seen.append(exc)

    try:
        result = pool.apply_async(task, correlation_id="t-cancel", timeout=3600, soft_timeout=3500)
        assert started.wait(10)
        pool.terminate_job(0)  # every task shares the process: nothing to kill by pid
        result.terminate()
        release.set()
        result.wait(10)
    finally:
        release.set()
        pool.stop()
    assert len(seen) == 1
    wait_for(lambda: RUNNING.get("t-cancel") is None, timeout_s=10, what="the ended task to be forgotten")
