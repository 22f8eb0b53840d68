"""The daemon's retention job: every ``[retention] every_seconds``, one bounded pass of
:class:`vidwatch.results.retention.Retention` against the configured horizons.

A thread of its own, like the index pruner: a pass may take a while (files on a slow disk),
and the main loop must not wait. Each pass handles at most :data:`PASS_LIMIT` videos (and
detection spans per camera); a pass that stops at its limit is followed by the next one after
:data:`CATCH_UP_S`, so a backlog (retention switched on for a year of results) is worked off in
steps without holding Redis for long. Everything it needs is in Redis (the retention indexes),
so a restarted daemon carries on where the last one stopped.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from vidwatch.config import Config
from vidwatch.errors import ResultsUnavailable
from vidwatch.results.connection import redis_errors
from vidwatch.results.keys import Keys
from vidwatch.results.retention import Cutoffs, PruneReport, Retention

logger = logging.getLogger(__name__)

PASS_LIMIT = 5000
CATCH_UP_S = 1.0


class RetentionJob:
    def __init__(self, client: redis.Redis, keys: Keys, config: Config, stop: threading.Event,
                 *, limit: int = PASS_LIMIT) -> None:
        self.config = config
        self.retention = Retention(client, keys, config)
        self.stop_event = stop
        self.limit = limit
        self.period_s = config.retention.every_seconds
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)

    @property
    def enabled(self) -> bool:
        return self.config.retention.enabled

    def start(self) -> None:
        """Start the thread (nothing to do when every ``[retention]`` horizon is 0)."""
        if self.enabled:
            self._thread.start()

    def run_once(self, now: float | None = None) -> PruneReport | None:
        """One bounded pass; None when Redis did not answer (the next pass tries again)."""
        cutoffs = Cutoffs.from_config(self.config, time.time() if now is None else now)
        try:
            with redis_errors("retention"):
                report = self.retention.run(cutoffs, limit=self.limit)
        except ResultsUnavailable as exc:
            logger.warning("%s; next pass", exc)
            return None
        removed = {kind: n for kind, n in report.counts.items() if n}
        if removed:
            logger.info("retention: removed %s", ", ".join(f"{n} {kind}" for kind, n in removed.items()))
        return report

    def _loop(self) -> None:
        wait_s = 0.0  # a first pass at start-up
        while not self.stop_event.wait(wait_s):
            report = self.run_once()
            wait_s = CATCH_UP_S if report is not None and report.more else self.period_s
