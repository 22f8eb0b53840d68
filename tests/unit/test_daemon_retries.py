"""The normalize pool's retry scheduler and requeue: due order, one lock, no lost or doubled videos."""

from __future__ import annotations

import threading

import pytest

from vidwatch.daemon.retries import PublishRetry, Requeue, RetryScheduler


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_retries_come_due_in_time_order_and_become_in_progress() -> None:
    clock = Clock()
    retries = RetryScheduler(clock=clock)
    for video_id, delay_s in (("late", 5.0), ("soon", 1.0), ("middle", 2.0)):
        retries.started(video_id)
        retries.later(video_id, f"/nvr/{video_id}.mp4", attempt=1, delay_s=delay_s)
    assert (retries.active(), retries.waiting()) == (0, 3)
    assert retries.take_due(timeout_s=0) is None  # nothing due yet
    clock.now += 2.5
    first = retries.take_due(timeout_s=0)
    second = retries.take_due(timeout_s=0)
    assert [first, second] == [
        PublishRetry(1001.0, "soon", 1, "/nvr/soon.mp4"),
        PublishRetry(1002.0, "middle", 1, "/nvr/middle.mp4"),
    ]
    assert retries.take_due(timeout_s=0) is None
    assert (retries.active(), retries.waiting()) == (2, 1)
    assert retries.holding() == {"soon", "middle", "late"}


def test_rescheduling_a_video_keeps_only_its_latest_retry() -> None:
    clock = Clock()
    retries = RetryScheduler(clock=clock)
    retries.later("v", "/nvr/v.mp4", attempt=1, delay_s=1.0)
    retries.later("v", "/nvr/v.mp4", attempt=2, delay_s=3.0)
    assert retries.waiting() == 1
    clock.now += 1.5
    assert retries.take_due(timeout_s=0) is None  # the first entry is stale
    clock.now += 2.0
    taken = retries.take_due(timeout_s=0)
    assert taken is not None and taken.attempt == 2
    assert retries.take_due(timeout_s=0) is None


@pytest.mark.parametrize("delay_s", [0.0, 1.0])
def test_a_video_is_never_outside_both_views_while_it_moves(delay_s: float) -> None:
    """started → later → taken → finished: ``holding()`` has it until finished (the idle() guarantee)."""
    clock = Clock()
    retries = RetryScheduler(clock=clock)
    retries.started("v")
    assert retries.holding() == {"v"}
    retries.later("v", "/p", attempt=1, delay_s=delay_s)
    assert retries.holding() == {"v"}
    clock.now += 1.0
    assert retries.take_due(timeout_s=0) is not None
    assert retries.holding() == {"v"} and retries.active() == 1
    retries.finished("v")
    assert retries.holding() == set()


def test_a_waiting_taker_wakes_when_a_retry_is_scheduled_and_when_closed() -> None:
    retries = RetryScheduler()  # the real clock: the taker blocks on the condition
    taken: list[PublishRetry | None] = []
    taker = threading.Thread(target=lambda: taken.append(retries.take_due(timeout_s=30)))
    taker.start()
    retries.later("v", "/nvr/v.mp4", attempt=3, delay_s=0.0)
    taker.join(timeout=10)
    assert not taker.is_alive() and taken[0] is not None and taken[0].video_id == "v"

    closer = threading.Thread(target=lambda: taken.append(retries.take_due(timeout_s=30)))
    closer.start()
    retries.close()
    closer.join(timeout=10)
    assert not closer.is_alive() and taken[1] is None


def test_many_threads_schedule_and_take_without_losing_or_doubling_a_video() -> None:
    retries = RetryScheduler()
    count, producers = 400, 4
    taken: list[str] = []
    lock = threading.Lock()
    done = threading.Event()

    def produce(start: int) -> None:
        for i in range(start, count, producers):
            retries.started(f"v{i}")
            retries.later(f"v{i}", "/p", attempt=1, delay_s=0.0)

    def consume() -> None:
        while not done.is_set():
            retry = retries.take_due(timeout_s=0.05)
            if retry is not None:
                retries.finished(retry.video_id)
                with lock:
                    taken.append(retry.video_id)
                    if len(taken) == count:
                        done.set()

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(producers)]
    threads += [threading.Thread(target=consume) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert done.wait(timeout=30)
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(taken) == sorted(f"v{i}" for i in range(count))
    assert retries.holding() == set()


def test_requeue_flushes_in_order_and_keeps_what_was_not_enqueued() -> None:
    requeue = Requeue()
    for video_id in ("c", "a", "b"):
        requeue.add(video_id)
    enqueued: list[str] = []

    def flaky(video_id: str) -> None:
        if video_id == "b":
            raise ConnectionError("Redis went away")
        enqueued.append(video_id)

    with pytest.raises(ConnectionError):
        requeue.flush(flaky)
    assert enqueued == ["a"] and len(requeue) == 2  # b and c wait for the next flush
    assert requeue.flush(enqueued.append) == 2
    assert enqueued == ["a", "b", "c"] and len(requeue) == 0


def test_requeue_added_to_while_it_is_flushed_loses_nothing() -> None:
    """The bug this replaces: a plain set added to by workers while the main loop iterated it."""
    requeue = Requeue()
    enqueued: list[str] = []
    total = 2000
    stop = threading.Event()

    def add(start: int) -> None:
        for i in range(start, total, 2):
            requeue.add(f"v{i}")

    def flush() -> None:
        while not stop.is_set() or len(requeue):
            requeue.flush(enqueued.append)

    flusher = threading.Thread(target=flush)
    flusher.start()
    adders = [threading.Thread(target=add, args=(i,)) for i in range(2)]
    for thread in adders:
        thread.start()
    for thread in adders:
        thread.join(timeout=10)
    stop.set()
    flusher.join(timeout=10)
    assert not flusher.is_alive()
    assert sorted(enqueued) == sorted(f"v{i}" for i in range(total))
