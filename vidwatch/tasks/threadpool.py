"""The GPU worker's pool: tasks as threads of one process, with time limits that hold.

One process owns one GPU, and the segments it analyses at once feed one batcher
(:mod:`vidwatch.engines.batcher`), so they must be threads. Celery's ``threads`` pool
enforces no time limits and cannot cancel a task; this one adds both:

- the soft limit and a cancellation (the broker connection was lost: the message goes
  back to the queue) are cooperative: the analysis loop calls :meth:`Limits.check`
  once per frame, which raises :class:`~celery.exceptions.SoftTimeLimitExceeded` or
  :class:`Cancelled`;
- the hard limit is a watchdog: a task still running past it (stuck in native code)
  has its video failed, then the whole process exits; systemd starts a fresh one and the
  other tasks' messages, unacknowledged, are delivered again. Either way a task never
  outlives RabbitMQ's consumer timeout.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery.concurrency.thread import ApplyResult
from celery.concurrency.thread import TaskPool as CeleryThreadPool
from celery.exceptions import SoftTimeLimitExceeded

from vidwatch.errors import Cancelled

__all__ = ["HARD_LIMIT_EXIT_CODE", "RUNNING", "Cancelled", "Limits", "Registry", "ThreadPool"]

logger = logging.getLogger(__name__)

HARD_LIMIT_EXIT_CODE = 70  # EX_SOFTWARE: systemd's Restart=on-failure starts a fresh worker
WATCHDOG_PERIOD_S = 1.0


@dataclass
class Limits:
    """One running task's deadlines (monotonic seconds) and cancellation flag."""

    task_id: str
    soft_at: float | None
    hard_at: float | None
    cancelled: threading.Event = field(default_factory=threading.Event)
    on_hard: Callable[[], None] | None = None  # what to do before the process exits: fail the video
    soft_raised: bool = False

    def check(self) -> None:
        """Raise when the task must stop: cancelled, or past its soft limit."""
        if self.cancelled.is_set():
            raise Cancelled(f"task {self.task_id}: cancelled")
        if self.soft_at is not None and not self.soft_raised and time.monotonic() >= self.soft_at:
            self.soft_raised = True
            raise SoftTimeLimitExceeded(f"task {self.task_id}: soft time limit exceeded")


class Registry:
    """The limits of the tasks running in this process, and the watchdog over their hard limits."""

    def __init__(self, exit: Callable[[int], None] = os._exit) -> None:
        self._lock = threading.Lock()
        self._limits: dict[str, Limits] = {}
        self._cancelled: set[str] = set()  # cancelled before their thread started
        self._exit = exit
        self._watchdog: threading.Thread | None = None

    def expect(self, task_id: str, soft_s: float | None, hard_s: float | None) -> None:
        """Called by the pool when it accepts a task: its limits count from now."""
        now = time.monotonic()
        limits = Limits(task_id, now + soft_s if soft_s else None, now + hard_s if hard_s else None)
        with self._lock:
            self._limits[task_id] = limits
            self._cancelled.discard(task_id)
        self._ensure_watchdog()

    def get(self, task_id: str) -> Limits | None:
        with self._lock:
            return self._limits.get(task_id)

    def done(self, task_id: str) -> None:
        with self._lock:
            self._limits.pop(task_id, None)

    def cancel(self, task_id: str) -> None:
        with self._lock:
            limits = self._limits.get(task_id)
        if limits is not None:
            limits.cancelled.set()
            logger.warning("task %s: cancelled (broker connection lost); it will be delivered again", task_id)

    def overdue(self, now: float | None = None) -> list[Limits]:
        now = time.monotonic() if now is None else now
        with self._lock:
            return [lim for lim in self._limits.values() if lim.hard_at is not None and now >= lim.hard_at]

    def _ensure_watchdog(self) -> None:
        with self._lock:
            if self._watchdog is not None and self._watchdog.is_alive():
                return
            self._watchdog = threading.Thread(target=self._watch, name="time-limit-watchdog", daemon=True)
            self._watchdog.start()

    def _watch(self) -> None:
        while True:
            time.sleep(WATCHDOG_PERIOD_S)
            late = self.overdue()
            if late:
                self.enforce(late)
                return

    def enforce(self, late: list[Limits]) -> None:
        """Fail the overdue tasks' videos, then end the process (a thread cannot be killed)."""
        for limits in late:
            logger.critical("task %s: hard time limit exceeded; failing it and exiting the worker process",
                            limits.task_id)
            if limits.on_hard is not None:
                try:
                    limits.on_hard()
                except Exception:
                    logger.exception("task %s: could not record the hard time limit", limits.task_id)
        self._exit(HARD_LIMIT_EXIT_CODE)


RUNNING = Registry()


class _Result(ApplyResult):
    """What Celery keeps of an applied task; ``terminate`` is how it cancels one."""

    def __init__(self, result: ApplyResult, task_id: str | None) -> None:
        super().__init__(result.f)
        self.task_id = task_id

    def terminate(self, signal: Any = None) -> None:
        if self.task_id is not None:
            RUNNING.cancel(self.task_id)


class ThreadPool(CeleryThreadPool):
    """Celery's thread pool, with our time limits and cancellation (see the module docstring)."""

    def on_apply(self, target: Any, args: Any = None, kwargs: Any = None, callback: Any = None,
                 accept_callback: Any = None, **options: Any) -> ApplyResult:
        task_id = options.get("correlation_id")
        if task_id is not None:
            # the message's own limits, else the worker's ([worker] task_time_limit_seconds)
            soft = options.get("soft_timeout") or self.options.get("soft_timeout")
            hard = options.get("timeout") or self.options.get("timeout")
            RUNNING.expect(task_id, soft, hard)
        result = super().on_apply(target, args, kwargs, callback, accept_callback, **options)
        if task_id is not None:
            result.f.add_done_callback(lambda _: RUNNING.done(task_id))
        return _Result(result, task_id)

    def terminate_job(self, pid: int, signal: Any = None) -> None:
        """Every task shares this process: cancellation goes through the applied task's ``terminate``."""
