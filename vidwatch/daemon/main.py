"""The daemon: watch the roots, wait for files to settle, claim, normalize, publish.

Threads and what they own:
- observers (inotify) and pollers (network mounts): put paths on ``self.events``, nothing else;
- the walker: walks roots at start-up, every ``rescan_seconds``, after an inotify overflow
  and for moved-in folders; puts candidates the ledger does not know on ``self.events``;
- the main loop (:meth:`Daemon.tick`): owns the settle tracker; hands settled files to
- the claim pool (:meth:`Ingestor.claim`): fingerprint and ledger; claimed videos wait in
  the shared backlog in Redis, from which
- the normalize threads (``[normalize] workers``) take them: probe, normalize, publish.
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis

from vidwatch.config import Config
from vidwatch.daemon.fingerprint import fingerprint, fstat
from vidwatch.daemon.fsguard import FsGuard, RootStuck
from vidwatch.daemon.ingest import Ingestor
from vidwatch.daemon.ledger import Ledger, daemon_id_for
from vidwatch.daemon.normalize import Normalizer
from vidwatch.daemon.poller import DirPoller
from vidwatch.daemon.publish import Publisher
from vidwatch.daemon.settle import SettleTracker
from vidwatch.daemon.watch import EnqueueHandler, choose_mode, start_observer
from vidwatch.engines import choose_kind
from vidwatch.errors import SourceError
from vidwatch.paths import PathRules
from vidwatch.results.connection import connect
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records
from vidwatch.results.trim import prune_indexes
from vidwatch.tasks.app import make_app

logger = logging.getLogger(__name__)

TICK_S = 0.05
HEARTBEAT_S = 5.0
RESUME_CHECK_S = 10.0
SUPERVISE_S = 2.0
FS_DEADLINE_S = 5.0
CLAIM_THREADS = 2
MAX_CLAIMS_IN_FLIGHT = 64
WALK_BATCH = 500
PRUNE_EVERY_S = 3600.0
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def queue_for(config: Config) -> str:
    """Videos go to the ``gpu`` queue when the engine is TensorRT, else to ``cpu``."""
    return "gpu" if choose_kind(config.engine)[0] == "tensorrt" else "cpu"


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.rules = PathRules(config.watch)
        self.keys = Keys(config.redis.prefix)
        self.client = connect(config.redis)
        self.records = Records(self.client, self.keys, events_maxlen=config.redis.events_maxlen)
        self.ledger = Ledger(self.client, self.keys, self.records, daemon_id_for(config.paths.state_dir))
        self.queue = queue_for(config)
        self.publisher = Publisher(make_app(config), self.queue, config.broker.publish_timeout_seconds)
        self.stop_event = threading.Event()
        self.normalizer = Normalizer(config, self.client, self.keys, self.stop_event)
        self.ingestor = Ingestor(
            config, self.rules, self.records, self.ledger, self.publisher, self.queue, normalizer=self.normalizer
        )
        self.tracker = SettleTracker(config.watch.settle_seconds)
        self.fs = FsGuard(FS_DEADLINE_S)
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.claims = ThreadPoolExecutor(CLAIM_THREADS, thread_name_prefix="claim")
        self.observers: dict[Path, Any] = {}
        self.root_errors: dict[Path, str] = {}
        self._root_ids: dict[Path, tuple[int, int]] = {}
        self.started_at = time.time()
        self.last_tick = time.monotonic()
        self.redis_ok = False
        self._work = threading.Event()  # something may be waiting on the backlog
        self._normalizers: list[threading.Thread] = []
        self._walk_queue: queue.Queue[Path | None] = queue.Queue()
        self._walker: threading.Thread | None = None
        self._busy_paths: set[str] = set()
        self._active_videos: set[str] = set()
        self._active_lock = threading.Lock()
        self._probe_failures: dict[str, int] = {}
        self._not_ready_stats: dict[str, tuple[int, int]] = {}
        self._publish_retries: dict[str, tuple[float, int, str]] = {}
        self._requeue: set[str] = set()
        self._next = {"heartbeat": 0.0, "resume": 0.0, "supervise": 0.0, "rescan": 0.0}

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.config.paths.spool.mkdir(parents=True, exist_ok=True)
        self._wait_for_redis()
        self.ledger.heartbeat()
        self._resume(include_own=True)  # before any normalize thread runs: nothing of ours is in flight
        self._supervise_observers()
        self._walker = threading.Thread(target=self._walk_loop, name="walker", daemon=True)
        self._walker.start()
        threading.Thread(target=self._prune_loop, name="index-pruner", daemon=True).start()
        self.normalizer.start()
        for root in self.rules.roots:  # reconcile: whatever arrived while we were down
            self._walk_queue.put(root)
        self._next["rescan"] = time.monotonic() + self.config.watch.rescan_seconds
        self._next["resume"] = time.monotonic() + RESUME_CHECK_S
        for index in range(self.config.normalize.workers):
            thread = threading.Thread(target=self._normalize_loop, name=f"normalize-{index}", daemon=True)
            thread.start()
            self._normalizers.append(thread)
        self._work.set()
        logger.info(
            "daemon %s watching %s (queue %s, settle %.1f s)",
            self.ledger.daemon_id,
            ", ".join(str(r) for r in self.rules.roots),
            self.queue,
            self.config.watch.settle_seconds,
        )

    def run(self) -> None:
        """Tick until :meth:`stop` is called (or ``stop_event`` is set)."""
        while not self.stop_event.is_set():
            self.tick()
            self.stop_event.wait(TICK_S)

    def stop(self) -> None:
        self.stop_event.set()
        self._work.set()
        for observer in self.observers.values():
            observer.stop()
        for observer in self.observers.values():
            observer.join(timeout=5)
        self._walk_queue.put(None)
        self.claims.shutdown(wait=True, cancel_futures=True)
        self.normalizer.stop()
        for thread in self._normalizers:
            thread.join(timeout=30)
        self.publisher.close()
        self.fs.close()
        try:
            self.ledger.release()
        except REDIS_ERRORS:
            logger.warning("daemon: Redis unreachable at shutdown; heartbeat key left to expire")
        logger.info("daemon stopped")

    def _wait_for_redis(self) -> None:
        delay = 0.5
        while not self.stop_event.is_set():
            try:
                self.client.ping()
                self.redis_ok = True
                return
            except REDIS_ERRORS as exc:
                logger.warning("daemon: Redis unreachable (%s); retrying in %.0f s", exc, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, 10.0)

    # ---------------------------------------------------------------- main loop
    def tick(self) -> None:
        now = time.monotonic()
        self.last_tick = now
        self._drain_events(now)
        self._check_settled(now)
        self._retry_publishes(now)
        try:
            if self._requeue:
                for video_id in sorted(self._requeue):
                    self.ledger.enqueue(video_id)
                    self._requeue.discard(video_id)
                self._work.set()
            if now >= self._next["heartbeat"]:
                self.ledger.heartbeat()
                self._next["heartbeat"] = now + HEARTBEAT_S
            if now >= self._next["resume"]:
                self._resume(include_own=False)
                self._next["resume"] = now + RESUME_CHECK_S
            if not self.redis_ok:
                logger.info("daemon: Redis is back")
            self.redis_ok = True
        except REDIS_ERRORS as exc:
            if self.redis_ok:
                logger.warning("daemon: Redis unreachable (%s); files wait until it is back", exc)
            self.redis_ok = False
        if now >= self._next["supervise"]:
            self._supervise_observers()
            self._next["supervise"] = now + SUPERVISE_S
        if now >= self._next["rescan"]:
            self.rescan()
            self._next["rescan"] = now + self.config.watch.rescan_seconds

    def rescan(self, root: Path | None = None) -> None:
        """Walk ``root`` (default: every root) for anything the observers missed."""
        for folder in [root] if root else self.rules.roots:
            self._walk_queue.put(folder)

    def submit(self, path: str | Path) -> str:
        """Ingest ``path`` now, skipping the settle wait (``vidwatch submit``, ``POST /jobs``).

        The path must resolve (symlinks included) inside a root. Returns the video id the
        file will have; the ledger decides as for a dropped file whether it is new.
        """
        resolved = Path(path).resolve()
        roots = [root.resolve() for root in self.rules.roots]
        if not any(resolved == root or root in resolved.parents for root in roots):
            raise SourceError(f"submit: {path}: not inside a watched root ({', '.join(map(str, roots))})")
        if not resolved.is_file():
            raise SourceError(f"submit: {path}: not a file")
        try:
            video_id = fingerprint(resolved).video_id
        except OSError as exc:
            raise SourceError(f"submit: {path}: cannot read: {exc.strerror}") from exc
        inside = next(root for root in self.rules.roots if root.resolve() in (resolved, *resolved.parents))
        self.events.put(("submit", str(inside / resolved.relative_to(inside.resolve()))))
        return video_id

    def idle(self) -> bool:
        """Nothing settling, claiming, normalizing or waiting to be published (a test and shutdown hook)."""
        with self._active_lock:
            active = bool(self._active_videos or self._publish_retries)
        return (
            self.events.empty()
            and self._walk_queue.unfinished_tasks == 0
            and not len(self.tracker)
            and not self._busy_paths
            and not active
            and not self._requeue
            and self.ledger.backlog_size() == 0
        )

    def status(self) -> dict[str, Any]:
        """Counters for health checks, metrics and STATUS lines."""
        with self._active_lock:
            active, retries = len(self._active_videos), len(self._publish_retries)
        pollers = {
            str(root): {"folder_stats": obs.last_pass.folder_stats, "listings": obs.last_pass.listings,
                        "seconds": round(obs.last_pass.seconds, 4), "outage": obs.outage}
            for root, obs in self.observers.items()
            if isinstance(obs, DirPoller)
        }
        root_errors = {str(root): why for root, why in self.root_errors.items()}
        for root, poller in pollers.items():
            if poller["outage"]:
                root_errors.setdefault(root, poller["outage"])
        for root in self.fs.stuck_roots():
            root_errors.setdefault(root, "stuck: filesystem calls do not return")
        return {
            "settling": len(self.tracker),
            "claiming": len(self._busy_paths),
            "videos_in_progress": active,
            "publish_retries": retries,
            "observers": {str(root): obs.is_alive() for root, obs in self.observers.items()},
            "pollers": pollers,
            "root_errors": root_errors,
            "redis_ok": self.redis_ok,
            "loop_age_s": round(time.monotonic() - self.last_tick, 3),
            "normalize": self.normalizer.metrics.snapshot(),
        }

    def _drain_events(self, now: float) -> None:
        while True:
            try:
                kind, path = self.events.get_nowait()
            except queue.Empty:
                return
            if kind == "dir":
                if not self.rules.is_ignored_name(Path(path).name):
                    self._walk_queue.put(Path(path))
            elif kind == "overflow":
                logger.warning("watch %s: events were lost (queue overflow); rescanning", path)
                self.rescan(Path(path))
            elif kind == "deleted":
                self.tracker.forget(path)
                self._probe_failures.pop(path, None)
                self._not_ready_stats.pop(path, None)
            elif kind == "claimed":
                self._busy_paths.discard(path)
                self._probe_failures.pop(path, None)
                self._not_ready_stats.pop(path, None)
                self._work.set()
            elif kind == "not_ready":
                self._busy_paths.discard(path)
                self._not_ready(path, now)
            elif kind == "retry":
                self._busy_paths.discard(path)
                self.tracker.defer(path, now=now, delay_s=self.config.watch.settle_seconds)
            elif kind == "submit":
                self.tracker.forget(path)
                if path not in self._busy_paths:
                    self._busy_paths.add(path)
                    self.claims.submit(self._claim, path, True)
            elif self.rules.is_candidate(Path(path)):
                self.tracker.touch(path, now=now)

    def _not_ready(self, path: str, now: float) -> None:
        failures = self._probe_failures.get(path, 0) + 1
        self.normalizer.metrics.count("not_ready")
        self._probe_failures[path] = failures
        self.tracker.defer(path, now=now, delay_s=self.config.watch.settle_seconds)
        logger.debug("ingest: %s not complete yet (%d of %d)", path, failures, self.config.normalize.probe_attempts)

    def _check_settled(self, now: float) -> None:
        for path in self.tracker.due(now=now):
            if path in self._busy_paths:
                continue
            if len(self._busy_paths) >= MAX_CLAIMS_IN_FLIGHT:
                return  # back-pressure: settled files wait in the tracker
            root = str(self.rules.root_of(Path(path)) or "")
            try:
                st = self.fs.call(root, lambda p=path: fstat(Path(p)))
            except FileNotFoundError:
                self.tracker.forget(path)
                continue
            except OSError as exc:
                if not isinstance(exc, RootStuck):
                    logger.warning("watch: %s: cannot stat (%s); trying again later", path, exc.strerror)
                self.tracker.defer(path, now=now, delay_s=self.config.watch.settle_seconds)
                continue
            if not self.tracker.observe(path, size=st.st_size, mtime_ns=st.st_mtime_ns, now=now):
                continue
            self.tracker.forget(path)
            self._busy_paths.add(path)
            stamp = (st.st_size, st.st_mtime_ns)
            if self._not_ready_stats.get(path, stamp) != stamp:  # it changed since it was not ready: still arriving
                self._probe_failures.pop(path, None)
            self._not_ready_stats[path] = stamp
            final = self._probe_failures.get(path, 0) + 1 >= self.config.normalize.probe_attempts
            self.claims.submit(self._claim, path, final)

    # ---------------------------------------------------------------- claim pool
    def _claim(self, path: str, final_attempt: bool) -> None:
        outcome = "claimed"
        try:
            outcome = self.ingestor.claim(path, final_attempt=final_attempt) or "claimed"
        except REDIS_ERRORS as exc:
            logger.warning("ingest: %s: Redis unreachable (%s); will retry", path, exc)
            outcome = "retry"
        except OSError as exc:
            logger.warning("ingest: %s: cannot read (%s); will retry", path, exc)
            outcome = "retry"
        except Exception:
            logger.exception("ingest: %s: unexpected error while claiming", path)
        self.events.put((outcome, path))

    # ---------------------------------------------------------------- normalize threads
    def _normalize_loop(self) -> None:
        while not self.stop_event.is_set():
            if not self._work.wait(timeout=0.5):
                continue
            try:
                video_id = self.ledger.pop()
            except REDIS_ERRORS:
                self.stop_event.wait(1.0)
                continue
            if video_id is None:
                self._work.clear()
                continue
            self._process(video_id)

    def _process(self, video_id: str) -> None:
        with self._active_lock:
            self._active_videos.add(video_id)
        try:
            outcome = self.ingestor.process(video_id)
            if outcome is not None and not outcome.confirmed:
                path = self.records.get(video_id).get("path", "")
                with self._active_lock:
                    self._publish_retries[video_id] = (time.monotonic() + outcome.retry_in_s, 1, path)
        except REDIS_ERRORS as exc:
            logger.warning("ingest: video=%s: Redis unreachable (%s); back on the backlog when it returns",
                           video_id, exc)
            self._requeue.add(video_id)
        except Exception:
            logger.exception("ingest: video=%s: unexpected error", video_id)
            self._fail_safely(video_id, "ingest: internal error (see the daemon log)")
        finally:
            with self._active_lock:
                self._active_videos.discard(video_id)

    def _fail_safely(self, video_id: str, reason: str) -> None:
        try:
            self.records.fail(video_id, reason, path=self.records.get(video_id).get("path", ""))
        except REDIS_ERRORS:
            self._requeue.add(video_id)

    def _retry_publishes(self, now: float) -> None:
        with self._active_lock:
            due = [(v, a, p) for v, (t, a, p) in self._publish_retries.items() if now >= t]
            for video_id, _, _ in due:
                del self._publish_retries[video_id]
                self._active_videos.add(video_id)
        for video_id, attempt, path in due:
            threading.Thread(
                target=self._publish_retry, args=(video_id, path, attempt), name="publish-retry", daemon=True
            ).start()

    def _publish_retry(self, video_id: str, path: str, attempt: int) -> None:
        try:
            outcome = self.ingestor.publish(video_id, path, attempt)
            if not outcome.confirmed:
                with self._active_lock:
                    self._publish_retries[video_id] = (time.monotonic() + outcome.retry_in_s, attempt + 1, path)
        except REDIS_ERRORS:
            self._requeue.add(video_id)
        finally:
            with self._active_lock:
                self._active_videos.discard(video_id)

    def _resume(self, *, include_own: bool) -> None:
        """Put back on the backlog what a dead daemon (or this one, before a restart) left unfinished."""
        with self._active_lock:
            busy = self._active_videos | set(self._publish_retries)
        for record in self.ledger.resumable(include_own=include_own):
            video_id = record["video_id"]
            if video_id in busy:
                continue
            logger.info("ingest: resuming video=%s path=%s state=%s", video_id, record.get("path"), record["state"])
            self.ledger.enqueue(video_id)
            self._work.set()

    # ---------------------------------------------------------------- observers
    def _supervise_observers(self) -> None:
        """(Re)start observers; a root that vanished or was remounted gets a fresh one and a rescan."""
        for root in self.rules.roots:
            observer = self.observers.get(root)
            identity = self._root_identity(root)
            if identity is None:
                if root not in self.root_errors:
                    logger.error("watch %s: missing or unreadable; waiting for it to come back", root)
                self.root_errors.setdefault(root, "missing or not a folder")
                if observer is not None:
                    observer.stop()
                    self.observers.pop(root)
                continue
            if observer is not None and observer.is_alive() and self._root_ids.get(root) == identity:
                continue
            if observer is not None:
                why = "died" if not observer.is_alive() else "watches a folder that is no longer the root"
                logger.warning("watch %s: observer %s; restarting it", root, why)
                observer.stop()
            mode = choose_mode(self.config.watch.mode, root)
            try:
                self.observers[root] = self._start_observer(root, mode)
            except OSError as exc:
                self.root_errors[root] = f"cannot watch: {exc}"
                logger.error("watch %s: cannot start observer: %s", root, exc)
                continue
            self._root_ids[root] = identity
            if root in self.root_errors or observer is not None:
                logger.info("watch %s: back; rescanning", root)
                self.rescan(root)  # catch up on what happened while unwatched
            self.root_errors.pop(root, None)
            logger.info("watch %s: %s", root, mode)

    def _root_identity(self, root: Path) -> tuple[int, int] | None:
        """(device, inode) of the root folder, or None when it is missing, unreadable or stuck."""
        try:
            st = self.fs.call(str(root), lambda: os.stat(root))
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError):
                self.root_errors[root] = str(exc)
            return None
        if not stat.S_ISDIR(st.st_mode) or not os.access(root, os.R_OK | os.X_OK):
            return None
        return st.st_dev, st.st_ino

    def _start_observer(self, root: Path, mode: str) -> Any:
        interval = self.config.watch.poll_interval_seconds
        if mode == "poll":
            poller = DirPoller(root, self.events, interval, skip_folder=self.rules.is_ignored_name)
            poller.start()
            return poller
        observer = start_observer(root, mode, EnqueueHandler(self.events))
        if observer is None:  # inotify watches ran out: poll this root instead
            return self._start_observer(root, "poll")
        return observer

    def _prune_loop(self) -> None:
        """Hourly: unindex videos whose summaries the streams' MAXLEN trimmed (queries check anyway)."""
        while not self.stop_event.wait(PRUNE_EVERY_S):
            try:
                pruned = prune_indexes(self.client, self.keys)
            except REDIS_ERRORS as exc:
                logger.warning("prune: Redis unreachable (%s); next time", exc)
                continue
            if pruned:
                logger.info("prune: %d trimmed video(s) removed from the indexes", pruned)

    # ---------------------------------------------------------------- walker thread
    def _walk_loop(self) -> None:
        while True:
            folder = self._walk_queue.get()
            try:
                if folder is None or self.stop_event.is_set():
                    return
                self._walk(folder)
            except REDIS_ERRORS as exc:
                logger.warning("walk %s: Redis unreachable (%s); the next rescan will cover it", folder, exc)
            except OSError as exc:
                logger.warning("walk %s: %s", folder, exc)
            finally:
                self._walk_queue.task_done()

    def _walk(self, folder: Path) -> None:
        batch: list[tuple[str, os.stat_result]] = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not self.rules.is_ignored_name(d)]
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not self.rules.is_candidate(Path(path)):
                    continue
                try:
                    batch.append((path, os.stat(path)))
                except OSError:
                    continue
                if len(batch) >= WALK_BATCH:
                    self._enqueue_unknown(batch)
                    batch = []
            if self.stop_event.is_set():
                return
        self._enqueue_unknown(batch)

    def _enqueue_unknown(self, batch: list[tuple[str, os.stat_result]]) -> None:
        if not batch:
            return
        pipe = self.client.pipeline(transaction=False)
        for path, _ in batch:
            pipe.hget(self.keys.paths, path)
        hints = pipe.execute()
        for (path, st), hint in zip(batch, hints, strict=True):
            if hint and str(hint).startswith(f"{st.st_size}:{st.st_mtime_ns}:"):
                continue
            self.events.put(("found", path))
