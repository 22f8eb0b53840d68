"""The daemon: watch the roots, wait for files to settle, ledger, normalize, publish.

Threads and what they own:
- watchdog observers: put paths on ``self.events`` and nothing else;
- the walker: walks roots at start-up, every ``rescan_seconds`` and for moved-in
  folders, and puts unknown candidates on ``self.events``;
- the main loop (:meth:`Daemon.tick`): owns the settle tracker; hands settled files to
- the normalize pool: fingerprint, probe, claim, normalize, publish; reports back
  through ``self.events``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from vidwatch.config import Config
from vidwatch.daemon.fingerprint import fingerprint, fstat
from vidwatch.daemon.ledger import Ledger, daemon_id_for
from vidwatch.daemon.normalize import Normalizer, ShuttingDown
from vidwatch.daemon.publish import Publisher
from vidwatch.daemon.settle import SettleTracker
from vidwatch.daemon.watch import EnqueueHandler, choose_mode, start_observer
from vidwatch.engines import choose_kind
from vidwatch.errors import NormalizeError, NotReadyError, PublishError, SourceError
from vidwatch.media.probe import Probe, probe
from vidwatch.paths import PathRules
from vidwatch.results.connection import connect
from vidwatch.results.keys import Keys
from vidwatch.results.records import Records
from vidwatch.tasks.app import make_app

logger = logging.getLogger(__name__)

TICK_S = 0.1
HEARTBEAT_S = 5.0
RESUME_CHECK_S = 10.0
SUPERVISE_S = 5.0
MAX_PUBLISH_BACKOFF_S = 30.0
WALK_BATCH = 500
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def queue_for(config: Config) -> str:
    """Videos go to the ``gpu`` queue when the engine is TensorRT, else to ``cpu``."""
    return "gpu" if choose_kind(config.engine)[0] == "tensorrt" else "cpu"


def recording_start(facts: Probe | None, mtime_ns: int) -> float:
    """Epoch seconds the recording started: the container's creation_time, else the file's mtime."""
    if facts is not None and facts.creation_time:
        try:
            stamp = datetime.fromisoformat(facts.creation_time.replace("Z", "+00:00"))
            if stamp.year > 1970:
                return stamp.timestamp()
        except ValueError:
            logger.debug("unparsable creation_time %r", facts.creation_time)
    seconds = mtime_ns / 1e9
    return seconds - (facts.duration_s if facts else 0.0)


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.rules = PathRules(config.watch)
        self.keys = Keys(config.redis.prefix)
        self.client = connect(config.redis)
        self.records = Records(self.client, self.keys, events_maxlen=config.redis.events_maxlen)
        self.ledger = Ledger(self.client, self.keys, self.records, daemon_id_for(config.paths.state_dir))
        self.queue = queue_for(config)
        self.publisher = Publisher(make_app(config), self.queue)
        self.tracker = SettleTracker(config.watch.settle_seconds)
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.pool = ThreadPoolExecutor(config.normalize.workers, thread_name_prefix="normalize")
        self.stop_event = threading.Event()
        self.normalizer = Normalizer(config, self.client, self.keys, self.stop_event)
        self.observers: dict[Path, Any] = {}
        self.root_errors: dict[Path, str] = {}
        self.started_at = time.time()
        self.last_tick = time.monotonic()
        self._walk_queue: queue.Queue[Path | None] = queue.Queue()
        self._walker: threading.Thread | None = None
        self._busy_paths: set[str] = set()
        self._active_videos: set[str] = set()
        self._active_lock = threading.Lock()
        self._probe_failures: dict[str, int] = {}
        self._not_ready_stats: dict[str, tuple[int, int]] = {}
        self._publish_retries: dict[str, tuple[float, int, str]] = {}
        self._next = {"heartbeat": 0.0, "resume": 0.0, "supervise": 0.0, "rescan": 0.0}
        self.redis_ok = False

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.config.paths.spool.mkdir(parents=True, exist_ok=True)
        self._wait_for_redis()
        self._supervise_observers()
        self._walker = threading.Thread(target=self._walk_loop, name="walker", daemon=True)
        self._walker.start()
        self.normalizer.start()
        self.ledger.heartbeat()
        self._resume()
        for root in self.rules.roots:  # reconcile: whatever arrived while we were down
            self._walk_queue.put(root)
        self._next["rescan"] = time.monotonic() + self.config.watch.rescan_seconds
        logger.info(
            "daemon %s watching %s (queue %s, settle %.1f s)",
            self.ledger.daemon_id,
            ", ".join(str(r) for r in self.rules.roots),
            self.queue,
            self.config.watch.settle_seconds,
        )

    def run(self) -> None:
        """Tick until :meth:`stop` is called."""
        while not self.stop_event.is_set():
            self.tick()
            self.stop_event.wait(TICK_S)

    def stop(self) -> None:
        self.stop_event.set()
        for observer in self.observers.values():
            observer.stop()
        for observer in self.observers.values():
            observer.join(timeout=5)
        self._walk_queue.put(None)
        self.normalizer.stop()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.publisher.close()
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
            if now >= self._next["heartbeat"]:
                self.ledger.heartbeat()
                self._next["heartbeat"] = now + HEARTBEAT_S
                self.redis_ok = True
            if now >= self._next["resume"]:
                self._resume()
                self._next["resume"] = now + RESUME_CHECK_S
        except REDIS_ERRORS as exc:
            if self.redis_ok:
                logger.warning("daemon: Redis unreachable (%s); files wait until it is back", exc)
            self.redis_ok = False
        if now >= self._next["supervise"]:
            self._supervise_observers()
            self._next["supervise"] = now + SUPERVISE_S
        if now >= self._next["rescan"]:
            for root in self.rules.roots:
                self._walk_queue.put(root)
            self._next["rescan"] = now + self.config.watch.rescan_seconds

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
        """Nothing settling, normalizing or waiting to be published (a test and shutdown hook)."""
        return (
            self.events.empty()
            and self._walk_queue.unfinished_tasks == 0
            and not len(self.tracker)
            and not self._busy_paths
            and not self._active_videos
            and not self._publish_retries
        )

    def status(self) -> dict[str, Any]:
        """Counters for health checks and STATUS lines."""
        with self._active_lock:
            active, retries = len(self._active_videos), len(self._publish_retries)
        return {
            "settling": len(self.tracker),
            "ingesting": len(self._busy_paths),
            "videos_in_progress": active,
            "publish_retries": retries,
            "observers": {str(root): obs.is_alive() for root, obs in self.observers.items()},
            "root_errors": {str(root): why for root, why in self.root_errors.items()},
            "redis_ok": self.redis_ok,
            "loop_age_s": round(time.monotonic() - self.last_tick, 3),
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
            elif kind == "deleted":
                self.tracker.forget(path)
                self._probe_failures.pop(path, None)
                self._not_ready_stats.pop(path, None)
            elif kind == "finished":
                self._busy_paths.discard(path)
                self._probe_failures.pop(path, None)
                self._not_ready_stats.pop(path, None)
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
                    self.pool.submit(self._guard, path, self._ingest, path, True)
            elif self.rules.is_candidate(Path(path)):
                self.tracker.touch(path, now=now)

    def _not_ready(self, path: str, now: float) -> None:
        failures = self._probe_failures.get(path, 0) + 1
        try:  # a file that changed since its last failed probe is still arriving: count afresh
            st = fstat(Path(path))
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = (-1, -1)
        if self._not_ready_stats.get(path, stamp) != stamp:
            failures = 1
        self._not_ready_stats[path] = stamp
        self._probe_failures[path] = failures
        self.tracker.defer(path, now=now, delay_s=self.config.watch.settle_seconds)
        logger.debug("probe: %s not ready (%d of %d)", path, failures, self.config.normalize.probe_attempts)

    def _check_settled(self, now: float) -> None:
        limit = self.config.normalize.workers * 2
        for path in self.tracker.due(now=now):
            if path in self._busy_paths:
                continue
            try:
                st = fstat(Path(path))
            except FileNotFoundError:
                self.tracker.forget(path)
                continue
            except OSError as exc:
                logger.warning("watch: %s: cannot stat (%s); trying again later", path, exc.strerror)
                self.tracker.defer(path, now=now, delay_s=self.config.watch.settle_seconds)
                continue
            if not self.tracker.observe(path, size=st.st_size, mtime_ns=st.st_mtime_ns, now=now):
                continue
            if len(self._busy_paths) >= limit:
                return  # back-pressure: settled files wait in the tracker
            self.tracker.forget(path)
            self._busy_paths.add(path)
            stamp = (st.st_size, st.st_mtime_ns)  # a file that changed since it was not ready gets more tries
            unchanged = self._not_ready_stats.get(path, stamp) == stamp
            final = unchanged and self._probe_failures.get(path, 0) + 1 >= self.config.normalize.probe_attempts
            self.pool.submit(self._guard, path, self._ingest, path, final)

    # ---------------------------------------------------------------- jobs (pool threads)
    def _guard(self, path: str, job: Any, *args: Any) -> None:
        """Run a job; whatever happens, report back to the main loop."""
        outcome = "finished"
        try:
            outcome = job(*args) or "finished"
        except REDIS_ERRORS as exc:
            logger.warning("ingest: %s: Redis unreachable (%s); will retry", path, exc)
            outcome = "retry"
        except Exception:
            logger.exception("ingest: %s: unexpected error", path)
            outcome = "finished"
        self.events.put((outcome, path))

    def _ingest(self, path: str, final_attempt: bool) -> str | None:
        source = Path(path)
        try:
            fp = fingerprint(source)
        except FileNotFoundError:
            return None
        if self.ledger.known(path, fp.size, fp.mtime_ns):
            return None
        facts: Probe | None = None
        error: str | None = None
        try:
            facts = self.normalizer.inspect(source)
        except NotReadyError as exc:
            if not final_attempt:
                return "not_ready"
            error = f"{exc} after {self.config.normalize.probe_attempts} probes"
        except SourceError as exc:
            error = str(exc)
        fields: dict[str, Any] = {
            "camera": self.rules.camera(source),
            "root": str(self.rules.root_of(source) or ""),
            "start_ts": f"{recording_start(facts, fp.mtime_ns):.3f}",
        }
        if facts is not None:
            fields.update(facts.as_record())
        with self._active_lock:
            self._active_videos.add(fp.video_id)
        try:
            if not self.ledger.claim(path, fp, fields):
                logger.info("ingest: %s is already known as video %s", path, fp.video_id)
                return None
            if error is not None or facts is None:
                self.records.fail(fp.video_id, error or "probe failed", path=path)
                return None
            self._normalize_and_publish(fp.video_id, path, facts)
        finally:
            with self._active_lock:
                self._active_videos.discard(fp.video_id)
        return None

    def _normalize_and_publish(self, video_id: str, path: str, facts: Probe) -> None:
        target = self.config.paths.spool / f"{video_id}.mp4"
        self.records.transition(video_id, "normalizing")
        if not target.exists():  # spool files appear whole (renamed into place)
            try:
                result = self.normalizer.normalize(video_id, path, facts, target)
            except NormalizeError as exc:
                self.records.fail(video_id, str(exc), path=path)
                return
            except ShuttingDown:
                return  # still "normalizing": resumed at the next start
            detail = {"method": result.method, "seconds": round(result.wall_s, 3), "why": result.why,
                      "encoder": result.encoder, "hwaccel": result.hwaccel, **facts.as_record()}
            fields = {"spool_path": str(target), "normalize_method": result.method}
        else:
            detail = {"method": "spooled before", **facts.as_record()}
            fields = {"spool_path": str(target)}
        self.records.transition(video_id, "normalizing", fields, event="normalized", path=path, detail=detail)
        self._publish(video_id, path, attempt=0)

    def _publish(self, video_id: str, path: str, attempt: int) -> None:
        """Mark ``queued`` (so events stay in order even when a worker is quick), then publish.

        ``published`` stays "0" until the broker confirms: a restart republishes those.
        """
        if attempt == 0:
            self.records.transition(
                video_id, "queued", {"published": "0"}, event="queued", path=path, detail={"queue": self.queue}
            )
        try:
            self.publisher.publish(video_id)
        except PublishError as exc:
            delay = min(MAX_PUBLISH_BACKOFF_S, 0.5 * 2**attempt)
            if attempt == 0 or attempt % 5 == 0:
                logger.warning("%s; retrying in %.1f s (attempt %d)", exc, delay, attempt + 1)
            with self._active_lock:
                self._publish_retries[video_id] = (time.monotonic() + delay, attempt + 1, path)
            return
        self.records.mark_published(video_id)

    def _resume_video(self, record: dict[str, str]) -> None:
        video_id, path = record["video_id"], record.get("path", "")
        try:
            source = Path(path)
            spooled = Path(record.get("spool_path") or self.config.paths.spool / f"{video_id}.mp4")
            if spooled.exists():
                if record.get("state") == "queued":
                    self._publish(video_id, path, attempt=1)
                    return
                facts = probe(spooled)
            else:
                fp = fingerprint(source)
                if fp.video_id != video_id:
                    self.records.fail(video_id, f"ingest: {path}: source changed before it was normalized", path=path)
                    return
                facts = self.normalizer.inspect(source)
            self._normalize_and_publish(video_id, path, facts)
        except FileNotFoundError:
            self.records.fail(video_id, f"ingest: {path}: source disappeared before it was normalized", path=path)
        except SourceError as exc:
            self.records.fail(video_id, str(exc), path=path)
        finally:
            with self._active_lock:
                self._active_videos.discard(video_id)

    # ---------------------------------------------------------------- main-loop helpers
    def _resume(self) -> None:
        for record in self.ledger.resumable(include_own=True):
            video_id = record["video_id"]
            with self._active_lock:
                if video_id in self._active_videos or video_id in self._publish_retries:
                    continue
                self._active_videos.add(video_id)
            logger.info("ingest: resuming video=%s path=%s state=%s", video_id, record.get("path"), record["state"])
            self.pool.submit(self._guard, record.get("path", ""), self._resume_video, record)

    def _retry_publishes(self, now: float) -> None:
        with self._active_lock:
            due = [(v, a, p) for v, (t, a, p) in self._publish_retries.items() if now >= t]
            for video_id, _, _ in due:
                del self._publish_retries[video_id]
                self._active_videos.add(video_id)
        for video_id, attempt, path in due:
            self.pool.submit(self._guard, path, self._publish_retry_job, video_id, path, attempt)

    def _publish_retry_job(self, video_id: str, path: str, attempt: int) -> None:
        try:
            self._publish(video_id, path, attempt)
        finally:
            with self._active_lock:
                self._active_videos.discard(video_id)

    def _supervise_observers(self) -> None:
        for root in self.rules.roots:
            observer = self.observers.get(root)
            if observer is not None and observer.is_alive():
                continue
            if observer is not None:
                logger.warning("watch %s: observer died; restarting it", root)
            if not root.is_dir():
                self.root_errors[root] = "missing or not a folder"
                continue
            mode = choose_mode(self.config.watch.mode, root)
            try:
                self.observers[root] = start_observer(
                    root, mode, EnqueueHandler(self.events), self.config.watch.poll_interval_seconds
                )
            except OSError as exc:
                self.root_errors[root] = f"cannot watch: {exc}"
                logger.error("watch %s: cannot start observer: %s", root, exc)
                continue
            if root in self.root_errors or observer is not None:
                self._walk_queue.put(root)  # catch up on what happened while unwatched
            self.root_errors.pop(root, None)
            logger.info("watch %s: %s", root, mode)

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
