"""The daemon's supervisor: starts its parts, runs the main loop, stops them, reports on them.

The parts, each with one job (built from the :mod:`vidwatch.daemon.compose` root):

- :class:`~vidwatch.daemon.watchers.RootWatchers`: an observer or poller per root, supervised;
  observers put :class:`~vidwatch.daemon.work.WorkItem` reports on the inbox, nothing else;
- :class:`~vidwatch.daemon.walker.Walker`: walks roots (start-up, rescans, overflows, moved-in
  folders) for files the ledger does not know;
- :class:`~vidwatch.daemon.claims.ClaimPool`: settle tracker, then fingerprint and ledger claim
  on a few threads; claimed videos wait on the shared backlog in Redis;
- :class:`~vidwatch.daemon.normalize_pool.NormalizePool`: threads that take videos off the
  backlog, normalize and publish them; a retry scheduler republishes what was not confirmed;
- periodic jobs (:mod:`vidwatch.daemon.periodic`): heartbeat, resume check, supervision,
  rescans, and the hourly index pruner; the retention job (:mod:`vidwatch.daemon.retention`);
- :class:`~vidwatch.daemon.sourcewatch.SourceWatch`: sources of videos in flight looked at
  again, so a source that changed after its claim becomes a new version of the same video.

The main loop (:meth:`Daemon.tick`) dispatches the inbox's work items, checks which files
settled and runs the periodic jobs that are due; it never blocks on a file system or Redis
for long, so ``loop_age_s`` in :meth:`Daemon.status` says whether the daemon is alive, and
``stuck`` whether a part of it (a claim thread) is wedged.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from pathlib import Path

from vidwatch.config import Config
from vidwatch.daemon.claims import ClaimPool
from vidwatch.daemon.compose import Components, build
from vidwatch.daemon.mounts import RootChecks
from vidwatch.daemon.normalize_pool import NormalizePool
from vidwatch.daemon.periodic import IndexPruner, RedisHealth, Timetable
from vidwatch.daemon.retention import RetentionJob
from vidwatch.daemon.source import Refused, Unreadable
from vidwatch.daemon.sourcewatch import SourceWatch
from vidwatch.daemon.walker import Walker
from vidwatch.daemon.watchers import RootWatchers, Watcher
from vidwatch.daemon.work import FILE_CHANGES, Dispatcher, Handler, Inbox, Kind, WorkItem
from vidwatch.errors import ResultsUnavailable, SourceError
from vidwatch.paths import file_in_roots
from vidwatch.results.connection import redis_errors
from vidwatch.status import DaemonStatus

logger = logging.getLogger(__name__)

TICK_S = 0.05
HEARTBEAT_S = 5.0
RESUME_CHECK_S = 10.0
SUPERVISE_S = 2.0
REDIS_RETRY_MAX_S = 10.0
SOURCE_WATCH_MIN_S = 1.0


class Daemon:
    """Watch the roots, claim what settled, normalize and publish it; see the module's docstring."""

    def __init__(self, config: Config, parts: Components | None = None) -> None:
        parts = parts or build(config)
        self.config = config
        self.parts = parts
        self.rules, self.keys, self.client = parts.rules, parts.keys, parts.client
        self.records, self.ledger, self.queue = parts.records, parts.ledger, parts.queue
        self.publisher, self.normalizer, self.ingestor = parts.publisher, parts.normalizer, parts.ingestor
        self.stop_event = parts.stop_event
        self.events: Inbox = queue.Queue()
        self.fs = parts.fs
        self.walker = Walker(self.ledger, self.rules, self.events, self.stop_event)
        self.root_checks = RootChecks(require_mount=config.watch.require_mount, fs=self.fs)
        self.watchers = RootWatchers(config.watch, self.rules, self.fs, self.events, self.walker.walk,
                                     self.root_checks)
        self.ingestor.outage_of = self.watchers.outage_of
        self.claims = ClaimPool(self.ingestor, self.rules, self.fs, self.events, self.normalizer.metrics)
        self.source_watch = SourceWatch(
            self.records, self.rules, self.fs, self.events, self.stop_event,
            period_s=max(SOURCE_WATCH_MIN_S, config.watch.settle_seconds), watching=self.watchers.watching,
        )
        self.ingestor.changed_in_flight = self.source_watch.await_end
        self.pool = NormalizePool(self.ingestor, self.stop_event, workers=config.normalize.workers)
        self.pruner = IndexPruner(self.client, self.keys, self.stop_event)
        self.retention = RetentionJob(self.client, self.keys, config, self.stop_event)
        self.redis = RedisHealth()
        self.dispatcher = Dispatcher(self._handlers())
        self.redis_jobs = Timetable()  # run while Redis answers; a failure marks it away
        self.redis_jobs.every("heartbeat", HEARTBEAT_S, self.ledger.heartbeat)
        self.redis_jobs.every("resume", RESUME_CHECK_S, lambda: self.pool.resume(include_own=False))
        self.fs_jobs = Timetable()
        self.fs_jobs.every("supervise", SUPERVISE_S, self.watchers.supervise)
        self.fs_jobs.every("rescan", config.watch.rescan_seconds, self.rescan)
        self.last_tick = time.monotonic()

    def _handlers(self) -> dict[Kind, Handler]:
        handlers: dict[Kind, Handler] = {kind: self.claims.touch for kind in FILE_CHANGES}
        handlers.update({
            Kind.FOLDER: self.walker.folder_appeared,
            Kind.OVERFLOW: self._overflowed,
            Kind.CHANGED: self.claims.changed,
            Kind.DELETED: self.claims.deleted,
            Kind.SUBMIT: self.claims.submitted,
            Kind.CLAIMED: self._claimed,
            Kind.NOT_READY: self.claims.not_ready,
            Kind.RETRY: self.claims.retry,
        })
        return handlers

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.config.paths.spool.mkdir(parents=True, exist_ok=True)
        self._wait_for_redis()
        self.ledger.heartbeat()
        self.pool.resume(include_own=True)  # before any normalize thread runs: nothing of ours is in flight
        self.watchers.supervise()
        self.walker.start()
        self.pruner.start()
        self.retention.start()
        self.normalizer.start()
        self.rescan()  # reconcile: whatever arrived while we were down
        self.source_watch.start()
        now = time.monotonic()  # heartbeat and supervision are due at the first tick
        self.redis_jobs.postpone("resume", now + RESUME_CHECK_S)
        self.fs_jobs.postpone("rescan", now + self.config.watch.rescan_seconds)
        self.pool.start()
        logger.info(
            "daemon %s watching %s (queue %s, settle %.1f s)",
            self.ledger.daemon_id,
            ", ".join(str(r) for r in self.rules.roots),
            self.queue,
            self.config.watch.settle_seconds,
        )

    def run(self, after_tick: Callable[[], None] | None = None) -> None:
        """Tick until :meth:`stop` is called (or ``stop_event`` is set); ``after_tick`` runs after each tick."""
        while not self.stop_event.is_set():
            self.tick()
            if after_tick is not None:
                after_tick()
            self.stop_event.wait(TICK_S)

    def stop(self) -> None:
        self.stop_event.set()
        self.pool.wake()
        self.watchers.stop()
        self.walker.stop()
        self.source_watch.stop()
        self.claims.stop()
        self.normalizer.stop()
        self.pool.stop()
        self.publisher.close()
        self.fs.close()
        try:
            with redis_errors("ledger: release"):
                self.ledger.release()
        except ResultsUnavailable:
            logger.warning("daemon: Redis unreachable at shutdown; heartbeat key left to expire")
        logger.info("daemon stopped")

    def _wait_for_redis(self) -> None:
        delay = 0.5
        while not self.stop_event.is_set():
            try:
                with redis_errors("daemon: start"):
                    self.client.ping()
                self.redis.ok = True
                return
            except ResultsUnavailable as exc:
                logger.warning("%s; retrying in %.0f s", exc, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, REDIS_RETRY_MAX_S)

    # ---------------------------------------------------------------- main loop
    def tick(self) -> None:
        now = time.monotonic()
        self.last_tick = now
        self.dispatcher.drain(self.events, now=now)
        self.claims.check_settled(now)
        self.redis.run(lambda: self._redis_jobs(now))
        self.fs_jobs.run_due(now)

    def _redis_jobs(self, now: float) -> None:
        self.pool.flush_requeue()
        self.redis_jobs.run_due(now)

    def rescan(self, root: Path | None = None) -> None:
        """Walk ``root`` (default: every root) for anything the observers missed; roots that are down wait.

        A root that is missing, unmounted or stuck is walked when it is back (its supervision rescans it).
        """
        for folder in [root] if root else self.rules.roots:
            if self.watchers.watching(self.rules.root_of(folder) or folder):
                self.walker.walk(folder)

    def _overflowed(self, path: str, _now: float) -> None:
        logger.warning("watch %s: events were lost (queue overflow); rescanning", path)
        self.rescan(Path(path))

    def _claimed(self, path: str, now: float) -> None:
        self.claims.claimed(path, now)
        self.pool.wake()

    # ---------------------------------------------------------------- API
    def submit(self, path: str | Path) -> str:
        """Ingest ``path`` now, skipping the settle wait (``vidwatch submit``, ``POST /jobs``).

        The path must resolve (symlinks included) inside a root and be a regular file that can be
        read. Returns the video id the file will have; the ledger decides as for a dropped file
        whether it is new (or a new version of the video its path already has).
        """
        configured = file_in_roots(path, self.rules.roots)
        try:
            fp = self.ingestor.read(str(configured)).fingerprint
        except (Refused, Unreadable) as exc:
            raise SourceError(f"submit: {exc}") from exc
        except OSError as exc:
            raise SourceError(f"submit: {path}: cannot read: {exc.strerror or exc}") from exc
        with redis_errors(f"submit: {path}"):
            video_id = self.ingestor.video_id_for(str(configured), fp)
        self.events.put(WorkItem(Kind.SUBMIT, str(configured)))
        return video_id

    @property
    def observers(self) -> dict[Path, Watcher]:
        return self.watchers.observers

    def idle(self) -> bool:
        """Nothing settling, claiming, normalizing or waiting to be published (a test and shutdown hook)."""
        return (
            self.events.empty()
            and self.walker.idle()
            and self.claims.idle()
            and self.pool.idle()
            and self.ledger.backlog_size() == 0
        )

    def status(self) -> DaemonStatus:
        """Counters for health checks, metrics and STATUS lines."""
        pollers = self.watchers.pollers()
        stuck = {
            f"claim {path}": f"running for {seconds:.0f} s (deadline {self.claims.claim_deadline_s:.0f} s)"
            for path, seconds in self.claims.stuck()
        }
        return DaemonStatus(
            settling=self.claims.settling,
            claiming=self.claims.claiming,
            videos_in_progress=self.pool.retries.active(),
            publish_retries=self.pool.retries.waiting(),
            observers=self.watchers.alive(),
            pollers=pollers,
            root_errors=self.watchers.root_errors(pollers),
            redis_ok=self.redis.ok,
            loop_age_s=round(time.monotonic() - self.last_tick, 3),
            normalize=self.normalizer.metrics.snapshot(),
            stuck=stuck,
        )

