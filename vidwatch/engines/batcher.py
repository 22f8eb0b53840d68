"""One engine, fed by every segment running in this process: the batcher.

A GPU worker analyses several segments at once (threads); each segment's frames go
to one :class:`Batcher`, whose thread owns the engine (it loads it, so a CUDA context
lives in the thread that uses it) and fills ``[engine] batch`` from whichever segments
have frames ready. A batch leaves when it is full, when ``batch_timeout_ms`` has passed
since its first frame arrived, or at once when no stream can add a frame (each is
waiting for its results or has ended): nobody waits for frames that cannot come.

Frames of one stream reach the engine in the order they were submitted, so an engine
with per-video state (``stateful``: the opencv motion detector) still works, given a
batcher of its own per stream (see :class:`BatcherPool`).

Example (not run: needs a model or a video)::

    batcher = Batcher(lambda: load_engine(config.engine, fps), batch=8, timeout_s=0.02)
    with batcher.stream() as stream:
        future = stream.submit(image); detections = stream.result(future)
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidwatch.detection import Detection
from vidwatch.engines.base import Engine
from vidwatch.errors import EngineError

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 0.1  # a stream waiting for results runs its check (time limits) this often


@dataclass(slots=True)
class _Item:
    image: np.ndarray | None  # None: a call to run in the engine's thread (``fn``)
    future: Future[Any]
    stream: Stream | None
    fn: Callable[[Engine], Any] | None = None
    queued_at: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """What the engine was given: calls, frames, the batches they filled, and how many mixed streams."""

    calls: int = 0
    frames: int = 0
    batches: int = 0  # ceil(frames of a call / batch), summed: an engine call may carry several batches
    mixed_calls: int = 0  # calls carrying frames of more than one stream
    by_reason: dict[str, int] = field(default_factory=lambda: {"full": 0, "timeout": 0, "idle": 0})

    def add(self, other: BatchStats) -> None:
        """Add ``other``'s counts to these."""
        self.calls += other.calls
        self.frames += other.frames
        self.batches += other.batches
        self.mixed_calls += other.mixed_calls
        for reason, count in other.by_reason.items():
            self.by_reason[reason] = self.by_reason.get(reason, 0) + count

    def fill(self, batch: int) -> float | None:
        """Frames per batch ÷ ``batch`` (1.0: every batch full); None before the first call."""
        return round(self.frames / (self.batches * batch), 3) if self.batches else None


class Stream:
    """One producer of frames (one segment), in order; results come back as futures."""

    def __init__(self, batcher: Batcher) -> None:
        self._batcher = batcher
        self.batch = batcher.batch
        self.window = 2 * batcher.per_call  # frames in flight: the next batch gathers while one runs
        self.stateful = batcher.stateful
        self.waiting = False
        self.ended = False
        self.frames = 0
        self.batches = 0.0  # this stream's share of the batches it rode in (a batch of 8 holding 2 of its frames: 2/8)

    def submit(self, image: np.ndarray) -> Future[list[Detection]]:
        return self._batcher._put(_Item(image, Future(), self))

    def call(self, fn: Callable[[Engine], Any]) -> Any:
        """Run ``fn(engine)`` in the engine's thread, after the frames submitted so far; its result."""
        return self.result(self._batcher._put(_Item(None, Future(), self, fn)))

    def result(self, future: Future[Any], timeout_s: float | None = None,
               check: Callable[[], None] | None = None) -> Any:
        """Wait for ``future``; while this stream waits, the batcher does not wait for its frames.

        ``check`` runs every ``CHECK_EVERY_S`` while waiting and may raise (a time limit).
        """
        if future.done():
            return future.result()
        self._batcher._set_waiting(self, True)
        try:
            if check is None:
                return future.result(timeout_s)
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            while True:
                try:
                    return future.result(CHECK_EVERY_S)
                except TimeoutError:
                    check()
                    if deadline is not None and time.monotonic() >= deadline:
                        raise
        finally:
            self._batcher._set_waiting(self, False)


class InlineStream:
    """A :class:`Stream` without a thread: frames are run through ``engine`` when a result is needed.

    For one segment in one process (a prefork worker, a benchmark, a test): the frames
    submitted since the last call go to the engine together, in the caller's thread.
    """

    def __init__(self, engine: Engine, batch: int) -> None:
        self.engine = engine
        self.batch = batch
        self.window = batch * max(1, int(getattr(engine, "pipelined_batches", 1)))
        self.stateful = bool(getattr(engine, "stateful", False))
        self.frames = 0
        self.batches = 0.0
        self._buffer: list[tuple[np.ndarray, Future[list[Detection]]]] = []

    def submit(self, image: np.ndarray) -> Future[list[Detection]]:
        future: Future[list[Detection]] = Future()
        self._buffer.append((image, future))
        return future

    def call(self, fn: Callable[[Engine], Any]) -> Any:
        self._flush()
        return fn(self.engine)

    def result(self, future: Future[Any], timeout_s: float | None = None,
               check: Callable[[], None] | None = None) -> Any:
        if not future.done():
            self._flush()
        return future.result(0)

    def _flush(self) -> None:
        buffer, self._buffer = self._buffer, []
        if not buffer:
            return
        try:
            results = self.engine.infer([image for image, _ in buffer])
            if len(results) != len(buffer):
                raise EngineError(f"engine {self.engine.kind}: expected {len(buffer)} results, got {len(results)}")
        except BaseException as exc:  # noqa: BLE001 - every frame's future carries the engine's error
            for _, future in buffer:
                future.set_exception(exc)
            return
        self.frames += len(buffer)
        self.batches += math.ceil(len(buffer) / self.batch)
        for (_, future), found in zip(buffer, results, strict=True):
            future.set_result(found)


class Batcher:
    """A thread that owns one engine and runs it on batches gathered from all open streams."""

    def __init__(self, load: Callable[[], Engine], *, batch: int, timeout_s: float, name: str = "batcher") -> None:
        if batch < 1:
            raise ValueError(f"batch: expected >= 1, got {batch}")
        self.batch = batch
        self.timeout_s = max(0.0, timeout_s)
        self.stats = BatchStats()
        self._load = load
        self._engine: Engine | None = None
        self._per_call = batch
        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._streams: set[Stream] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._ready: Future[Engine] = Future()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Engine:
        """Start the thread and load the engine in it; the engine, or its load error."""
        self._thread.start()
        return self._ready.result()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise EngineError("batcher: engine used before start()")
        return self._engine

    @property
    def per_call(self) -> int:
        """Frames per engine call: ``batch``, times the batches an engine overlaps in one call."""
        return self._per_call

    @property
    def stateful(self) -> bool:
        """The engine keeps per-video state: one stream at a time may use it."""
        return bool(getattr(self.engine, "stateful", False))

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    @contextmanager
    def stream(self) -> Iterator[Stream]:
        stream = Stream(self)
        with self._cond:
            self._streams.add(stream)
        try:
            yield stream
        finally:
            with self._cond:
                self._streams.discard(stream)
                stream.ended = True
                # a stream that stopped early (a time limit, a cancellation) leaves frames nobody reads
                if any(item.stream is stream for item in self._queue):
                    kept = deque(item for item in self._queue if item.stream is not stream)
                    for item in self._queue:
                        if item.stream is stream:
                            item.future.cancel()
                    self._queue = kept
                self._cond.notify_all()

    # ------------------------------------------------------------------ producers' side
    def _put(self, item: _Item) -> Future[Any]:
        with self._cond:
            if self._closed:
                item.future.set_exception(EngineError("batcher: closed"))
                return item.future
            self._queue.append(item)
            self._cond.notify_all()
        return item.future

    def _set_waiting(self, stream: Stream, waiting: bool) -> None:
        with self._cond:
            stream.waiting = waiting
            if waiting:
                self._cond.notify_all()

    # ------------------------------------------------------------------ the engine's thread
    def _run(self) -> None:
        try:
            engine = self._load()
        except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
            self._ready.set_exception(exc)
            return
        self._engine = engine
        # an engine that overlaps one batch's upload with the previous one's inference
        # (tensorrt) takes several batches per call
        self._per_call = self.batch * max(1, int(getattr(engine, "pipelined_batches", 1)))
        self._ready.set_result(engine)
        try:
            while True:
                taken, reason = self._take()
                if taken is None:
                    return
                self._dispatch(engine, taken, reason)
        finally:
            self._fail_queued(EngineError("batcher: stopped"))
            try:
                engine.close()
            except Exception:
                logger.exception("batcher: engine close failed")

    def _take(self) -> tuple[list[_Item] | None, str]:
        """The next call's items: a control call alone, or up to ``per_call`` frames."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None, ""
                self._cond.wait()
            if self._queue[0].image is None:
                return [self._queue.popleft()], "call"
            deadline = self._queue[0].queued_at + self.timeout_s  # at most timeout_s after its first frame
            reason = "full"
            while True:
                frames = self._frames_queued()
                if frames >= self._per_call:
                    break
                if frames < len(self._queue):  # a control call waits behind these frames: go now
                    reason = "idle"
                    break
                if self._closed or all(s.waiting or s.ended for s in self._streams):
                    reason = "idle"
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    reason = "timeout"
                    break
                self._cond.wait(remaining)
            taken: list[_Item] = []
            while self._queue and self._queue[0].image is not None and len(taken) < self._per_call:
                taken.append(self._queue.popleft())
            return taken, reason

    def _frames_queued(self) -> int:
        count = 0
        for item in self._queue:
            if item.image is None:
                break
            count += 1
        return count

    def _dispatch(self, engine: Engine, taken: list[_Item], reason: str) -> None:
        if reason == "call":
            item = taken[0]
            try:
                item.future.set_result(item.fn(engine))  # type: ignore[misc]
            except BaseException as exc:  # noqa: BLE001 - the caller's error, handed back
                item.future.set_exception(exc)
            return
        try:
            results = engine.infer([item.image for item in taken])  # type: ignore[misc]
            if len(results) != len(taken):
                raise EngineError(f"engine {engine.kind}: expected {len(taken)} results, got {len(results)}")
        except BaseException as exc:  # noqa: BLE001 - every waiting segment gets the engine's error
            for item in taken:
                item.future.set_exception(exc)
            return
        batches = math.ceil(len(taken) / self.batch)
        self._count(taken, batches, reason)
        for item, found in zip(taken, results, strict=True):
            item.future.set_result(found)

    def _count(self, taken: list[_Item], batches: int, reason: str) -> None:
        stats = self.stats
        stats.calls += 1
        stats.frames += len(taken)
        stats.batches += batches
        stats.by_reason[reason] = stats.by_reason.get(reason, 0) + 1
        streams = {id(item.stream) for item in taken}
        if len(streams) > 1:
            stats.mixed_calls += 1
        share = batches / len(taken)
        for item in taken:
            if item.stream is not None:
                item.stream.frames += 1
                item.stream.batches += share

    def _fail_queued(self, exc: Exception) -> None:
        with self._cond:
            self._closed = True
            while self._queue:
                item = self._queue.popleft()
                if not item.future.done():
                    item.future.set_exception(exc)


class BatcherPool:
    """The batchers of one worker process: one shared by every stream, or one per stream.

    A stateless engine (onnx, tensorrt) is shared: all segments feed one batcher. A
    stateful one (opencv: background models) cannot mix videos, so each concurrent
    segment gets a batcher (and engine) of its own, kept for the next segment.
    """

    def __init__(self, load: Callable[[], Engine], *, batch: int, timeout_s: float) -> None:
        self._load = load
        self._batch = batch
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._shared: Batcher | None = None
        self._idle: list[Batcher] = []
        self._all: list[Batcher] = []

    def _new(self) -> Batcher:
        batcher = Batcher(self._load, batch=self._batch, timeout_s=self._timeout_s,
                          name=f"batcher-{len(self._all)}")
        batcher.start()
        self._all.append(batcher)
        return batcher

    @contextmanager
    def stream(self) -> Iterator[Stream]:
        with self._lock:
            if self._shared is not None and self._shared.alive:
                batcher, exclusive = self._shared, False
            elif self._idle:
                batcher, exclusive = self._idle.pop(), True
            else:
                batcher = self._new()
                exclusive = batcher.stateful
                if not exclusive:
                    self._shared = batcher
        try:
            with batcher.stream() as stream:
                yield stream
        finally:
            if exclusive:
                with self._lock:
                    if batcher.alive:
                        self._idle.append(batcher)

    @property
    def engine_kind(self) -> str | None:
        with self._lock:
            return self._all[0].engine.kind if self._all else None

    def stats(self) -> BatchStats:
        """Every batcher's counts added up."""
        total = BatchStats()
        with self._lock:
            batchers = list(self._all)
        for batcher in batchers:
            total.add(batcher.stats)
        return total

    def close(self) -> None:
        with self._lock:
            batchers, self._all, self._idle, self._shared = list(self._all), [], [], None
        for batcher in batchers:
            batcher.close()
