"""What the normalize pool holds, and what it must try again, each under one lock.

:class:`RetryScheduler` is the pool's one view of "busy": the videos a normalize thread is
working on and the publishes waiting for their next attempt (a heap by due time, a dict by
video id). Moving a video from one to the other happens under the same lock, so a reader
(``Daemon.idle``, the resume check) never sees it in neither.

:class:`Requeue` keeps the videos to put back on the shared backlog once Redis answers
again: added to by the normalize threads, flushed by the main loop.

>>> retries = RetryScheduler(clock=lambda: 100.0)
>>> retries.started("v1")
>>> retries.later("v1", "/nvr/cam1/a.mp4", attempt=1, delay_s=0.5)
>>> retries.waiting(), retries.active()
(1, 0)
>>> retries.take_due(timeout_s=0) is None  # not due before 100.5
True
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class PublishRetry:
    """The next attempt at publishing a video the broker did not confirm."""

    due: float  # monotonic seconds
    video_id: str
    attempt: int
    path: str


class RetryScheduler:
    """Videos in progress and publish retries by due time; one thread (or several) takes them when due."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._heap: list[PublishRetry] = []
        self._due: dict[str, PublishRetry] = {}  # the live entry per video; older heap entries are stale
        self._active: set[str] = set()
        self._closed = False

    # ------------------------------------------------------------------ in progress
    def started(self, video_id: str) -> None:
        with self._cond:
            self._active.add(video_id)

    def finished(self, video_id: str) -> None:
        with self._cond:
            self._active.discard(video_id)

    # ------------------------------------------------------------------ retries
    def later(self, video_id: str, path: str, *, attempt: int, delay_s: float) -> None:
        """Publish ``video_id`` again in ``delay_s``; it stops counting as in progress at the same moment."""
        entry = PublishRetry(self._clock() + delay_s, video_id, attempt, path)
        with self._cond:
            self._due[video_id] = entry
            heapq.heappush(self._heap, entry)
            self._active.discard(video_id)
            self._cond.notify_all()

    def take_due(self, *, timeout_s: float) -> PublishRetry | None:
        """The earliest retry once it is due (now in progress), or None after ``timeout_s`` or :meth:`close`."""
        deadline = self._clock() + timeout_s
        with self._cond:
            while not self._closed:
                self._drop_stale()
                now = self._clock()
                if self._heap and self._heap[0].due <= now:
                    entry = heapq.heappop(self._heap)
                    del self._due[entry.video_id]
                    self._active.add(entry.video_id)
                    return entry
                wait_s = min(deadline, self._heap[0].due if self._heap else deadline) - now
                if wait_s <= 0:
                    return None
                self._cond.wait(wait_s)
            return None

    def close(self) -> None:
        """Wake every waiting :meth:`take_due`; it returns None from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _drop_stale(self) -> None:
        while self._heap and self._due.get(self._heap[0].video_id) is not self._heap[0]:
            heapq.heappop(self._heap)

    # ------------------------------------------------------------------ views
    def active(self) -> int:
        with self._cond:
            return len(self._active)

    def waiting(self) -> int:
        with self._cond:
            return len(self._due)

    def holding(self) -> set[str]:
        """Every video in progress or waiting for a retry (one consistent snapshot)."""
        with self._cond:
            return self._active | set(self._due)


class Requeue:
    """Videos to put back on the backlog when Redis answers again; safe to use from any thread.

    >>> requeue = Requeue()
    >>> requeue.add("b"); requeue.add("a")
    >>> requeue.flush(print)
    a
    b
    2
    >>> len(requeue)
    0
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()

    def add(self, video_id: str) -> None:
        with self._lock:
            self._ids.add(video_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)

    def flush(self, enqueue: Callable[[str], None]) -> int:
        """Call ``enqueue`` for each video (in id order), forgetting each once it returned.

        If ``enqueue`` raises (Redis is still away), the rest stay for the next flush.
        """
        with self._lock:
            pending = sorted(self._ids)
        for video_id in pending:
            enqueue(video_id)
            with self._lock:
                self._ids.discard(video_id)
        return len(pending)
