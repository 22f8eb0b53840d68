"""Periodic jobs: the main loop's timetable, whether Redis answers, and the hourly index pruner.

:class:`Timetable` runs named jobs when due (heartbeat, resume check, observer supervision,
rescan); a job that raises is due again at the next tick. :class:`RedisHealth` remembers
whether the last round of Redis jobs went through and logs each change once.
:class:`IndexPruner` is a thread of its own: pruning may take long, the loop must not wait.

>>> clock = [0.0]
>>> ran = []
>>> table = Timetable()
>>> table.every("beat", 5.0, lambda: ran.append(clock[0]))
>>> for clock[0] in (0.0, 1.0, 5.0, 6.0):
...     table.run_due(clock[0])
>>> ran
[0.0, 5.0]
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import redis

from vidwatch.errors import ResultsUnavailable
from vidwatch.results.connection import redis_errors
from vidwatch.results.keys import Keys
from vidwatch.results.trim import prune_indexes

logger = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0


@dataclass
class _Job:
    name: str
    period_s: float
    run: Callable[[], None]
    next_at: float


class Timetable:
    def __init__(self) -> None:
        self._jobs: list[_Job] = []

    def every(self, name: str, period_s: float, job: Callable[[], None], *, first_at: float = 0.0) -> None:
        """Run ``job`` every ``period_s``, first when the clock reaches ``first_at``."""
        if any(existing.name == name for existing in self._jobs):
            raise ValueError(f"timetable: a job named {name!r} is already registered")
        self._jobs.append(_Job(name, period_s, job, first_at))

    def run_due(self, now: float) -> None:
        """Run the jobs that are due, in registration order; one that raises stops the round and stays due."""
        for job in self._jobs:
            if now >= job.next_at:
                job.run()
                job.next_at = now + job.period_s

    def postpone(self, name: str, until: float) -> None:
        for job in self._jobs:
            if job.name == name:
                job.next_at = until
                return
        raise KeyError(name)


class RedisHealth:
    """Whether Redis answered the main loop's last round of jobs; logs the changes, not every tick."""

    def __init__(self) -> None:
        self.ok = False

    def run(self, jobs: Callable[[], None]) -> None:
        try:
            with redis_errors("daemon"):
                jobs()
        except ResultsUnavailable as exc:
            if self.ok:
                logger.warning("%s; files wait until it is back", exc)
            self.ok = False
            return
        if not self.ok:
            logger.info("daemon: Redis is back")
        self.ok = True


class IndexPruner:
    """Hourly: unindex videos whose summaries the streams' MAXLEN trimmed (queries check anyway)."""

    def __init__(self, client: redis.Redis, keys: Keys, stop: threading.Event, period_s: float = PRUNE_EVERY_S) -> None:
        self.client = client
        self.keys = keys
        self.stop_event = stop
        self.period_s = period_s
        self._thread = threading.Thread(target=self._loop, name="index-pruner", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def prune_once(self) -> int:
        try:
            with redis_errors("prune"):
                pruned = prune_indexes(self.client, self.keys)
        except ResultsUnavailable as exc:
            logger.warning("%s; next time", exc)
            return 0
        if pruned:
            logger.info("prune: %d trimmed video(s) removed from the indexes", pruned)
        return pruned

    def _loop(self) -> None:
        while not self.stop_event.wait(self.period_s):
            self.prune_once()
