"""The batcher: one engine thread fed by several streams, batches filled across them."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from tests.helpers import wait_for
from vidwatch.engines.base import Detection
from vidwatch.engines.batcher import Batcher, BatcherPool, InlineStream
from vidwatch.errors import EngineError


class TagEngine:
    """Finds one detection per frame whose score is the frame's tag (its first pixel); records every call."""

    kind = "tag"
    stateful = False

    def __init__(self, pipelined_batches: int = 1) -> None:
        self.calls: list[list[int]] = []
        self.threads: set[int] = set()
        self.pipelined_batches = pipelined_batches
        self.fail = False
        self.closed = False

    def load(self) -> TagEngine:
        self.threads.add(threading.get_ident())
        return self

    def reset(self) -> None:
        """Nothing to forget."""

    def infer(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        self.threads.add(threading.get_ident())
        if self.fail:
            raise EngineError("engine tag: inference failed")
        tags = [int(f[0, 0, 0]) for f in frames]
        self.calls.append(tags)
        return [[Detection("tag", tag / 1000, (0, 0, 1, 1))] for tag in tags]

    def close(self) -> None:
        self.closed = True


class StatefulEngine(TagEngine):
    stateful = True


def frame(tag: int) -> np.ndarray:
    image = np.zeros((4, 4, 3), np.uint8)
    image[0, 0, 0] = tag
    return image


def tags(results: list[list[Detection]]) -> list[int]:
    return [round(found[0].score * 1000) for found in results]


@pytest.fixture
def engine() -> TagEngine:
    return TagEngine()


def started(engine: TagEngine, batch: int = 4, timeout_s: float = 60.0) -> Batcher:
    batcher = Batcher(engine.load, batch=batch, timeout_s=timeout_s)
    batcher.start()
    return batcher


def test_a_batch_is_filled_from_two_streams_and_each_gets_its_own_results_in_order(engine: TagEngine) -> None:
    batcher = started(engine, batch=6)  # the timeout is a minute: only a full batch can leave
    try:
        with batcher.stream() as a, batcher.stream() as b:
            futures_a = [a.submit(frame(t)) for t in (1, 2, 3)]
            futures_b = [b.submit(frame(t)) for t in (101, 102, 103)]
            results_a = [a.result(f, timeout_s=10) for f in futures_a]
            results_b = [b.result(f, timeout_s=10) for f in futures_b]
    finally:
        batcher.close()
    assert engine.calls == [[1, 2, 3, 101, 102, 103]]
    assert tags(results_a) == [1, 2, 3] and tags(results_b) == [101, 102, 103]
    assert batcher.stats.mixed_calls == 1 and batcher.stats.fill(6) == 1.0
    assert batcher.stats.by_reason["full"] == 1
    assert a.frames == b.frames == 3 and a.batches == b.batches == 0.5


def test_the_engine_is_loaded_and_run_in_the_batchers_own_thread(engine: TagEngine) -> None:
    batcher = started(engine)
    try:
        with batcher.stream() as s:
            s.result(s.submit(frame(1)), timeout_s=10)
    finally:
        batcher.close()
    assert len(engine.threads) == 1 and threading.get_ident() not in engine.threads
    assert engine.closed


def test_a_partial_batch_leaves_at_once_when_every_stream_waits(engine: TagEngine) -> None:
    batcher = started(engine, batch=8)  # a minute's timeout: waiting for it would fail the result's deadline
    try:
        with batcher.stream() as a, batcher.stream() as b:
            first = a.submit(frame(1))
            second = b.submit(frame(2))
            waiter = threading.Thread(target=b.result, args=(second, 10))
            waiter.start()
            assert tags([a.result(first, timeout_s=10)]) == [1]
            waiter.join(10)
    finally:
        batcher.close()
    assert engine.calls == [[1, 2]]
    assert batcher.stats.by_reason["idle"] == 1


def test_a_partial_batch_leaves_after_the_timeout_while_its_stream_still_produces(engine: TagEngine) -> None:
    batcher = started(engine, batch=8, timeout_s=0.01)
    try:
        with batcher.stream() as s:
            future = s.submit(frame(5))  # never waited on: only the timeout can send it
            wait_for(future.done, timeout_s=10, what="the timeout to send a one-frame batch")
    finally:
        batcher.close()
    assert engine.calls == [[5]]
    assert batcher.stats.by_reason["timeout"] == 1 and batcher.stats.fill(8) == 0.125


def test_an_engine_that_overlaps_batches_gets_several_per_call() -> None:
    engine = TagEngine(pipelined_batches=2)
    batcher = started(engine, batch=2)
    try:
        with batcher.stream() as s:
            futures = [s.submit(frame(t)) for t in range(1, 6)]
            assert tags([s.result(f, timeout_s=10) for f in futures]) == [1, 2, 3, 4, 5]
    finally:
        batcher.close()
    assert engine.calls == [[1, 2, 3, 4], [5]]
    assert batcher.stats.batches == 3 and s.window == 8


def test_an_engine_error_reaches_every_frame_of_the_call_and_the_batcher_goes_on(engine: TagEngine) -> None:
    batcher = started(engine, batch=2)
    try:
        with batcher.stream() as s:
            engine.fail = True
            futures = [s.submit(frame(t)) for t in (1, 2)]
            for future in futures:
                with pytest.raises(EngineError, match="inference failed"):
                    s.result(future, timeout_s=10)
            engine.fail = False
            assert tags([s.result(s.submit(frame(3)), timeout_s=10)]) == [3]
    finally:
        batcher.close()


def test_a_load_error_is_raised_by_start() -> None:
    def load() -> TagEngine:
        raise EngineError("engine tag: model missing")

    with pytest.raises(EngineError, match="model missing"):
        Batcher(load, batch=2, timeout_s=0).start()


def test_calls_run_in_order_with_the_frames(engine: TagEngine) -> None:
    batcher = started(engine, batch=8)
    try:
        with batcher.stream() as s:
            first = s.submit(frame(1))
            seen = s.call(lambda e: list(e.calls))  # the frame queued before the call went first
            assert first.done() and seen == [[1]]
    finally:
        batcher.close()


def test_a_closed_batcher_refuses_frames(engine: TagEngine) -> None:
    batcher = started(engine)
    batcher.close()
    with batcher.stream() as s, pytest.raises(EngineError, match="closed"):
        s.result(s.submit(frame(1)), timeout_s=10)


@pytest.mark.parametrize(
    ("engine_class", "shared"),
    [(TagEngine, True), (StatefulEngine, False)],
)
def test_the_pool_shares_a_stateless_engine_and_gives_a_stateful_one_per_stream(engine_class: type,
                                                                                  shared: bool) -> None:
    engines: list[TagEngine] = []

    def load() -> TagEngine:
        engines.append(engine_class())
        return engines[-1]

    pool = BatcherPool(load, batch=4, timeout_s=0)
    try:
        with pool.stream() as a, pool.stream() as b:
            assert (a._batcher is b._batcher) == shared
        with pool.stream() as c:  # an idle batcher is reused
            assert c._batcher is a._batcher
        assert len(engines) == (1 if shared else 2)
        assert pool.engine_kind == "tag"
    finally:
        pool.close()


def test_the_inline_stream_runs_what_was_submitted_when_a_result_is_needed(engine: TagEngine) -> None:
    stream = InlineStream(engine, batch=4)
    futures = [stream.submit(frame(t)) for t in (1, 2, 3)]
    assert engine.calls == []
    assert tags([stream.result(f) for f in futures]) == [1, 2, 3]
    assert engine.calls == [[1, 2, 3]] and stream.batches == 1 and stream.frames == 3


class GatedEngine(TagEngine):
    """Blocks in infer until ``gate`` is set: a long engine call."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def infer(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        self.gate.wait(30)
        return super().infer(frames)


class Stop(Exception):
    pass


def test_a_waiting_stream_runs_its_check_and_what_it_raises_ends_the_wait() -> None:
    engine = GatedEngine()
    batcher = started(engine, batch=1)
    checks: list[int] = []

    def check() -> None:
        checks.append(1)
        if len(checks) >= 2:
            raise Stop

    try:
        with batcher.stream() as s, pytest.raises(Stop):
            s.result(s.submit(frame(1)), timeout_s=30, check=check)  # the engine call is still running
    finally:
        engine.gate.set()
        batcher.close()
    assert len(checks) == 2


def test_frames_of_a_stream_that_stopped_early_are_dropped() -> None:
    engine = GatedEngine()
    batcher = started(engine, batch=1)
    try:
        with batcher.stream() as early:
            running = early.submit(frame(1))
            wait_for(lambda: not batcher._queue, timeout_s=10, what="the first frame to reach the engine")
            left = [early.submit(frame(t)) for t in (2, 3)]
        assert all(f.cancelled() for f in left)
        engine.gate.set()
        with batcher.stream() as later:
            assert tags([later.result(later.submit(frame(9)), timeout_s=10)]) == [9]
        assert running.result(10)
    finally:
        engine.gate.set()
        batcher.close()
    assert engine.calls == [[1], [9]]
