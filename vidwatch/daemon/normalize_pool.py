"""The normalize pool: ``[normalize] workers`` threads take claimed videos off the shared backlog.

Each thread pops a video that is due from the backlog in Redis (and owns it in the ledger), then
:meth:`Ingestor.process` probes, normalizes and publishes it. A publish the broker did not
confirm goes to the :class:`RetryScheduler`; one retry thread publishes it again when due
(with backoff), so no video is dropped while the broker is away. A video that hit a Redis
outage goes to the :class:`Requeue` and back on the backlog once Redis answers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from vidwatch.daemon.ingest import Ingestor, PublishOutcome
from vidwatch.daemon.ledger import Ledger
from vidwatch.daemon.retries import PublishRetry, Requeue, RetryScheduler
from vidwatch.errors import ResultsUnavailable
from vidwatch.results.connection import redis_errors
from vidwatch.results.records import Records

logger = logging.getLogger(__name__)

IDLE_WAIT_S = 0.5  # how often an idle thread looks for stop, even without a wake-up
REDIS_PAUSE_S = 1.0  # after a failed pop: Redis is away, do not spin
JOIN_S = 30.0


class NormalizePool:
    def __init__(self, ingestor: Ingestor, stop: threading.Event, *, workers: int) -> None:
        self.ingestor = ingestor
        self.ledger: Ledger = ingestor.ledger
        self.records: Records = ingestor.records
        self.stop_event = stop
        self.workers = workers
        self.retries = RetryScheduler()
        self.requeue = Requeue()
        self._work = threading.Event()  # something may be waiting on the backlog
        self._popping = 0  # threads between "popped from Redis" and "marked started": idle() must not miss them
        self._popping_lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for index in range(self.workers):
            self._spawn(self._normalize_loop, f"normalize-{index}")
        self._spawn(self._retry_loop, "publish-retry")
        self.wake()

    def stop(self) -> None:
        """Threads finish the video they hold (a normalization waiting for spool room gives up)."""
        self._work.set()
        self.retries.close()
        for thread in self._threads:
            thread.join(timeout=JOIN_S)

    def wake(self) -> None:
        """Something was put on the backlog."""
        self._work.set()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ------------------------------------------------------------------ views
    def idle(self) -> bool:
        with self._popping_lock:
            popping = self._popping
        return not popping and not self.retries.holding() and not len(self.requeue)

    def holding(self) -> set[str]:
        return self.retries.holding()

    # ------------------------------------------------------------------ main-loop jobs
    def flush_requeue(self) -> None:
        """Put back on the backlog what a Redis outage interrupted (raises while Redis is still away)."""
        with redis_errors("ledger: requeue"):
            flushed = self.requeue.flush(self.ledger.enqueue)
        if flushed:
            self.wake()

    def resume(self, *, include_own: bool) -> None:
        """Put back on the backlog what a dead daemon (or this one, before a restart) left unfinished."""
        busy = self.holding()
        with redis_errors("ledger: resume"):
            self._resume(busy, include_own=include_own)

    def _resume(self, busy: set[str], *, include_own: bool) -> None:
        for record in self.ledger.resumable(include_own=include_own):
            video_id = record.video_id
            if video_id in busy:
                continue
            logger.info("ingest: resuming video=%s path=%s state=%s", video_id, record.path, record.state.value)
            self.ledger.enqueue(video_id)
            self.wake()

    # ------------------------------------------------------------------ normalize threads
    def _normalize_loop(self) -> None:
        while not self.stop_event.is_set():
            # woken, or every IDLE_WAIT_S anyway: a video deferred on the backlog (its source changing,
            # its root down) becomes due without anyone waking us
            self._work.wait(timeout=IDLE_WAIT_S)
            if self.stop_event.is_set():
                return
            video_id = self._pop()
            if video_id is not None:
                self._process(video_id)

    def _pop(self) -> str | None:
        with self._popping_lock:
            self._popping += 1
        try:
            with redis_errors("ledger: pop"):
                video_id = self.ledger.pop()
            if video_id is None:
                self._work.clear()
            else:
                self.retries.started(video_id)
            return video_id
        except ResultsUnavailable:
            self.stop_event.wait(REDIS_PAUSE_S)
            return None
        finally:
            with self._popping_lock:
                self._popping -= 1

    def _process(self, video_id: str) -> None:
        try:
            with redis_errors(f"ingest: video={video_id}"):
                outcome = self.ingestor.process(video_id)
                if outcome is not None and not outcome.confirmed:
                    self._later(video_id, self._path_of(video_id), 1, outcome)
                    return
        except ResultsUnavailable as exc:
            logger.warning("%s; back on the backlog when it returns", exc)
            self.requeue.add(video_id)
        except Exception:
            logger.exception("ingest: video=%s: unexpected error", video_id)
            self._fail_safely(video_id, "ingest: internal error (see the daemon log)")
        self.retries.finished(video_id)

    def _fail_safely(self, video_id: str, reason: str) -> None:
        try:
            with redis_errors(f"ingest: video={video_id}: fail"):
                self.records.fail(video_id, reason, path=self._path_of(video_id), stage="ingest",
                                  kind="internal")
        except ResultsUnavailable:
            self.requeue.add(video_id)

    def _path_of(self, video_id: str) -> str:
        record = self.records.record(video_id)
        return record.path if record is not None else ""

    # ------------------------------------------------------------------ the retry thread
    def _retry_loop(self) -> None:
        while not self.stop_event.is_set():
            retry = self.retries.take_due(timeout_s=IDLE_WAIT_S)
            if retry is not None:
                self._publish_again(retry)

    def _publish_again(self, retry: PublishRetry) -> None:
        try:
            with redis_errors(f"ingest: video={retry.video_id}: publish again"):
                outcome = self.ingestor.publish(retry.video_id, retry.path, retry.attempt)
            if not outcome.confirmed:
                self._later(retry.video_id, retry.path, retry.attempt + 1, outcome)
                return
        except ResultsUnavailable:
            self.requeue.add(retry.video_id)
        except Exception:
            logger.exception("ingest: video=%s: unexpected error while publishing again", retry.video_id)
            self._fail_safely(retry.video_id, "ingest: internal error (see the daemon log)")
        self.retries.finished(retry.video_id)

    def _later(self, video_id: str, path: str, attempt: int, outcome: PublishOutcome) -> None:
        self.retries.later(video_id, path, attempt=attempt, delay_s=outcome.retry_in_s)
