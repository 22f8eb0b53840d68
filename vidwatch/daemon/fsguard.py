"""Filesystem calls with a deadline: a hard-mounted NAS that hangs must not freeze the daemon.

A call that does not return in time leaves its thread blocked in the kernel (nothing can
interrupt it), marks its root as stuck, and further calls on that root fail fast until
the blocked call returns.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from vidwatch.errors import RootStuck

logger = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["FsGuard", "RootStuck"]


class FsGuard:
    def __init__(self, deadline_s: float, threads: int = 4) -> None:
        self.deadline_s = deadline_s
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="fs")
        self._stuck: dict[str, float] = {}
        self._lock = threading.Lock()

    def stuck_roots(self) -> dict[str, float]:
        with self._lock:
            return dict(self._stuck)

    def call(self, root: str, func: Callable[[], T]) -> T:
        with self._lock:
            if root in self._stuck:
                raise RootStuck(f"{root}: an earlier filesystem call has not returned")
        future: Future[T] = self._pool.submit(func)
        try:
            return future.result(timeout=self.deadline_s)
        except FutureTimeout:
            with self._lock:
                self._stuck[root] = self.deadline_s
            logger.error("fs %s: no answer within %.0f s; treating the root as stuck", root, self.deadline_s)
            future.add_done_callback(lambda _: self._unstick(root))
            raise RootStuck(f"{root}: no answer within {self.deadline_s:.0f} s") from None

    def _unstick(self, root: str) -> None:
        with self._lock:
            self._stuck.pop(root, None)
        logger.warning("fs %s: answering again", root)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
