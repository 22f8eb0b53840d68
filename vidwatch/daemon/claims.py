"""The claim pool: from "something happened to this path" to a video on the shared backlog.

The main loop feeds it paths (:meth:`ClaimPool.touch`) and asks it, every tick, which
settled (:meth:`ClaimPool.check_settled`): a file whose size and mtime stayed the same for
``settle_seconds`` is handed to a few claim threads, which fingerprint it and create its
ledger record (:meth:`Ingestor.claim`). Each claim ends with a :class:`WorkItem` on the
daemon's inbox (claimed, not ready yet, retry later), so the bookkeeping here — the settle
tracker, the paths being claimed, probe failures — is touched by the main loop alone and
needs no lock.

No claim can wedge a thread on a file: settle stats and claims read candidates through
:mod:`vidwatch.daemon.source` (regular files only, non-blocking) under the :class:`FsGuard`
deadline of their root. Should a claim still run past ``claim_deadline_s`` (a bug, a Redis
call that never returns), :meth:`ClaimPool.stuck` says so and the daemon reports itself
unhealthy (``/healthz``, the systemd watchdog) instead of silently ingesting nothing.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

from vidwatch.daemon import source
from vidwatch.daemon.fsguard import FsGuard
from vidwatch.daemon.horizon import Horizon
from vidwatch.daemon.ingest import Ingestor
from vidwatch.daemon.normalize import NormalizeMetrics
from vidwatch.daemon.settle import SettleTracker
from vidwatch.daemon.work import Inbox, Kind, WorkItem
from vidwatch.errors import ResultsUnavailable, RootStuck
from vidwatch.paths import PathRules
from vidwatch.results.connection import redis_errors

logger = logging.getLogger(__name__)

CLAIM_THREADS = 2
MAX_CLAIMS_IN_FLIGHT = 64
CLAIM_DEADLINE_S = 60.0  # a claim running longer is stuck (its file reads have a 5 s deadline)
STOP_S = 15.0  # how long stop() waits for running claims


class ClaimPool:
    def __init__(
        self,
        ingestor: Ingestor,
        rules: PathRules,
        fs: FsGuard,
        inbox: Inbox,
        metrics: NormalizeMetrics,
        *,
        threads: int = CLAIM_THREADS,
        max_in_flight: int = MAX_CLAIMS_IN_FLIGHT,
        claim_deadline_s: float = CLAIM_DEADLINE_S,
    ) -> None:
        config = ingestor.config
        self.ingestor = ingestor
        self.rules = rules
        self.fs = fs
        self.inbox = inbox
        self.metrics = metrics
        self.settle_s = config.watch.settle_seconds
        self.probe_attempts = config.normalize.probe_attempts
        self.max_in_flight = max_in_flight
        self.horizon = Horizon(config, ingestor.time_in_path)  # files recorded before [retention] keeps
        self.tracker = SettleTracker(self.settle_s)
        self._threads_wanted = threads
        self._jobs: queue.Queue[tuple[str, bool, float] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []  # daemon threads: a wedged one cannot hold up exit
        self._busy: set[str] = set()  # being claimed by a thread
        self._first_seen: dict[str, float] = {}  # being claimed -> first sighting (kept if it comes back)
        self._probe_failures: dict[str, int] = {}
        self._not_ready_stats: dict[str, tuple[int, int]] = {}
        self.claim_deadline_s = claim_deadline_s
        self._running: dict[str, float] = {}  # path -> monotonic start, kept by the claim threads
        self._running_lock = threading.Lock()

    # ------------------------------------------------------------------ views
    @property
    def settling(self) -> int:
        return len(self.tracker)

    @property
    def claiming(self) -> int:
        return len(self._busy)

    def idle(self) -> bool:
        return not len(self.tracker) and not self._busy

    def stuck(self, now: float | None = None) -> list[tuple[str, float]]:
        """Claims running past ``claim_deadline_s``: (path, seconds running), longest first."""
        now = time.monotonic() if now is None else now
        with self._running_lock:
            running = [(path, now - started) for path, started in self._running.items()]
        return sorted((item for item in running if item[1] > self.claim_deadline_s), key=lambda item: -item[1])

    def stop(self, timeout_s: float = STOP_S) -> None:
        """Drop the claims not started, let the running ones finish (up to ``timeout_s``; a wedged one is left)."""
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            with self._running_lock:
                left = sorted(self._running)
            logger.error("claims: still running at shutdown, left behind: %s", ", ".join(left) or "?")

    # ------------------------------------------------------------------ work-item handlers (main loop)
    def touch(self, path: str, now: float) -> None:
        """A file was written, moved in or found: its quiet period (re)starts."""
        if self.rules.is_candidate(Path(path)):
            self.tracker.touch(path, now=now)

    def changed(self, path: str, now: float) -> None:
        """The source of a video in flight no longer has its record's size or mtime: claim it again once quiet.

        Unlike :meth:`touch`, a path already settling or being claimed keeps its quiet period.
        """
        if path not in self.tracker and path not in self._busy:
            self.touch(path, now)

    def deleted(self, path: str, _now: float) -> None:
        self.tracker.forget(path)
        self._forget_failures(path)

    def submitted(self, path: str, now: float) -> None:
        """Claim now, without the settle wait, as a last attempt (``vidwatch submit``, ``POST /jobs``)."""
        first_seen = self.tracker.first_seen(path)
        self.tracker.forget(path)
        if path not in self._busy:
            self._start_claim(path, final_attempt=True, first_seen=now if first_seen is None else first_seen)

    def claimed(self, path: str, _now: float) -> None:
        self._busy.discard(path)
        self._first_seen.pop(path, None)
        self._forget_failures(path)

    def not_ready(self, path: str, now: float) -> None:
        self._busy.discard(path)
        failures = self._probe_failures.get(path, 0) + 1
        self.metrics.count("not_ready")
        self._probe_failures[path] = failures
        self.tracker.defer(path, now=now, delay_s=self.settle_s, first_seen=self._first_seen.pop(path, None))
        logger.debug("ingest: %s not complete yet (%d of %d)", path, failures, self.probe_attempts)

    def retry(self, path: str, now: float) -> None:
        self._busy.discard(path)
        self.tracker.defer(path, now=now, delay_s=self.settle_s, first_seen=self._first_seen.pop(path, None))

    # ------------------------------------------------------------------ every tick (main loop)
    def check_settled(self, now: float) -> None:
        """Stat the files that are due; hand the settled ones to the claim threads."""
        for path in self.tracker.due(now=now):
            if path in self._busy:
                continue
            if len(self._busy) >= self.max_in_flight:
                return  # back-pressure: settled files wait in the tracker
            stamp = self._stat(path, now)
            if stamp is None or not self.tracker.observe(path, size=stamp[0], mtime_ns=stamp[1], now=now):
                continue
            first_seen = self.tracker.first_seen(path)
            self.tracker.forget(path)
            if self.horizon.too_old(path, stamp[1]):
                continue  # recorded before summaries_days: analysed only to be removed (logged once)
            if self._not_ready_stats.get(path, stamp) != stamp:  # it changed since it was not ready: still arriving
                self._probe_failures.pop(path, None)
            self._not_ready_stats[path] = stamp
            final = self._probe_failures.get(path, 0) + 1 >= self.probe_attempts
            self._start_claim(path, final_attempt=final, first_seen=now if first_seen is None else first_seen)

    def _stat(self, path: str, now: float) -> tuple[int, int] | None:
        """(size, mtime_ns), or None when the file is gone (forgotten) or cannot be stat'ed now (deferred)."""
        root = str(self.rules.root_of(Path(path)) or "")
        try:
            return self.fs.call(root, lambda: source.stamp(path))
        except FileNotFoundError:
            self.tracker.forget(path)
            return None
        except OSError as exc:
            if not isinstance(exc, RootStuck):
                logger.warning("watch: %s: cannot stat (%s); trying again later", path, exc.strerror)
            self.tracker.defer(path, now=now, delay_s=self.settle_s)
            return None

    def _forget_failures(self, path: str) -> None:
        self._probe_failures.pop(path, None)
        self._not_ready_stats.pop(path, None)

    def _start_claim(self, path: str, *, final_attempt: bool, first_seen: float) -> None:
        """Claim on a thread; ``first_seen`` (the main loop's monotonic clock) goes into the record as epoch s."""
        self._busy.add(path)
        self._first_seen[path] = first_seen
        first_seen_epoch = time.time() - max(0.0, time.monotonic() - first_seen)
        if not self._threads:
            for index in range(self._threads_wanted):
                thread = threading.Thread(target=self._work, name=f"claim-{index}", daemon=True)
                thread.start()
                self._threads.append(thread)
        self._jobs.put((path, final_attempt, first_seen_epoch))

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._claim(*job)

    # ------------------------------------------------------------------ claim threads
    def _claim(self, path: str, final_attempt: bool, first_seen: float) -> None:
        outcome = Kind.CLAIMED
        with self._running_lock:
            self._running[path] = time.monotonic()
        try:
            with redis_errors(f"ingest: claim {path}"):
                outcome = self.ingestor.claim(path, final_attempt=final_attempt, first_seen=first_seen)
        except ResultsUnavailable as exc:
            logger.warning("%s; will retry", exc)
            outcome = Kind.RETRY
        except RootStuck as exc:  # the guard logged the stuck root once
            logger.debug("ingest: %s: %s; will retry", path, exc)
            outcome = Kind.RETRY
        except OSError as exc:
            logger.warning("ingest: %s: cannot read (%s); will retry", path, exc)
            outcome = Kind.RETRY
        except Exception:
            logger.exception("ingest: %s: unexpected error while claiming", path)
        finally:
            with self._running_lock:
                self._running.pop(path, None)
        self.inbox.put(WorkItem(outcome, path))
