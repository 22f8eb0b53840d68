"""The daemon's normalization: inspect a settled file, then remux or transcode it into the spool.

:meth:`Normalizer.inspect` decides whether a file is a usable, complete video (probe,
limits, tail decode) and raises with a reason a person understands when it is not;
:meth:`Normalizer.normalize` waits for spool room, runs ffmpeg, publishes ``progress``
events at a bounded rate and keeps :class:`NormalizeMetrics` up to date. A thread sweeps
spooled copies of finished videos.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import redis

from vidwatch.config import Config
from vidwatch.daemon.spool import SpoolBudget, estimate_bytes, sweep
from vidwatch.errors import ResultsUnavailable, ShuttingDown, SourceError
from vidwatch.media.normalize import Normalized, Progress, admit, normalize, plan
from vidwatch.media.probe import Probe, probe
from vidwatch.media.verify import verify_tail
from vidwatch.results.connection import redis_errors
from vidwatch.results.events import event_fields
from vidwatch.results.keys import Keys

logger = logging.getLogger(__name__)

__all__ = ["NormalizeMetrics", "Normalizer", "ShuttingDown"]


class NormalizeMetrics:
    """Counters and gauges of normalization, read by a metrics endpoint through :meth:`snapshot`.

    >>> m = NormalizeMetrics()
    >>> m.rejected("empty")
    >>> m.snapshot()["rejected_total"]
    {'empty': 1}
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._normalized: Counter[str] = Counter()
        self._seconds: defaultdict[str, float] = defaultdict(float)
        self._media_seconds: defaultdict[str, float] = defaultdict(float)
        self._failed: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._counts: Counter[str] = Counter()
        self._running: dict[str, dict[str, Any]] = {}
        self.spool_bytes = 0

    def rejected(self, kind: str) -> None:
        with self._lock:
            self._rejected[kind] += 1

    def count(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counts[name] += by

    def started(self, video_id: str, method: str) -> None:
        with self._lock:
            self._running[video_id] = {"method": method, "fraction": 0.0, "speed": 0.0, "started": time.time()}

    def progressed(self, video_id: str, progress: Progress) -> None:
        with self._lock:
            if video_id in self._running:
                self._running[video_id].update(fraction=progress.fraction, speed=progress.speed)

    def finished(self, video_id: str, result: Normalized | None, media_s: float, kind: str | None = None) -> None:
        with self._lock:
            self._running.pop(video_id, None)
            if result is None:
                self._failed[kind or "normalize_failed"] += 1
                return
            self._normalized[result.method] += 1
            self._seconds[result.method] += result.wall_s
            self._media_seconds[result.method] += media_s

    def snapshot(self) -> dict[str, Any]:
        """Plain numbers (Prometheus-style names: ``*_total`` counters, the rest gauges)."""
        with self._lock:
            return {
                "normalized_total": dict(self._normalized),
                "normalize_seconds_total": {k: round(v, 3) for k, v in self._seconds.items()},
                "media_seconds_total": {k: round(v, 3) for k, v in self._media_seconds.items()},
                "failed_total": dict(self._failed),
                "rejected_total": dict(self._rejected),
                "not_ready_total": self._counts["not_ready"],
                "spool_waits_total": self._counts["spool_waits"],
                "spool_removed_total": self._counts["spool_removed"],
                "spool_removed_bytes_total": self._counts["spool_removed_bytes"],
                "progress_events_total": self._counts["progress_events"],
                "spool_bytes": self.spool_bytes,
                "in_progress": {k: dict(v) for k, v in self._running.items()},
            }


class Normalizer:
    """Inspect and normalize files for the daemon; sweep the spool in a thread of its own."""

    def __init__(self, config: Config, client: redis.Redis, keys: Keys, stop: threading.Event) -> None:
        self.config = config
        self.settings = config.normalize
        self.client = client
        self.keys = keys
        self.stop_event = stop
        self.spool = config.paths.spool
        self.metrics = NormalizeMetrics()
        self.budget = SpoolBudget(self.spool, self.settings.spool_max_bytes)
        self._sweeper: threading.Thread | None = None

    # ---------------------------------------------------------------- inspect
    def inspect(self, source: Path) -> Probe:
        """Probe, refuse what is over the limits, and decode the tail: facts of a complete, usable video.

        Raises :class:`NotReadyError` when the file may still be arriving (no index yet,
        data shorter than declared) and :class:`SourceError` with ``kind`` otherwise.
        """
        try:
            facts = probe(source, max_pixels=self.settings.max_pixels)
            admit(facts, self.settings, source)
            if self.settings.verify_tail_seconds > 0:
                verify_tail(source, facts, tail_s=self.settings.verify_tail_seconds,
                            max_pixels=self.settings.max_pixels)
        except SourceError as exc:  # NotReadyError included: once claimed, a file short of data is failed
            self.metrics.rejected(exc.kind)
            raise
        return facts

    # ---------------------------------------------------------------- normalize
    def normalize(self, video_id: str, path: str, facts: Probe, target: Path) -> Normalized:
        """Wait for spool room, then remux or transcode ``path`` into ``target``.

        Raises :class:`NormalizeError` (the video fails) or :class:`ShuttingDown` (it is
        resumed at the next start).
        """
        needed = estimate_bytes(facts, self.settings)

        def waiting(used: int) -> None:
            self.metrics.count("spool_waits")
            self._event(video_id, path, {"stage": "spool_wait", "spool_bytes": used, "needed_bytes": needed,
                                         "spool_max_bytes": self.settings.spool_max_bytes})

        self.budget.reserve(video_id, needed, self.stop_event, on_wait=waiting, make_room=self._make_room)
        throttle = _Throttle(self.settings.progress_interval_seconds)
        self.metrics.started(video_id, plan(facts, self.settings).method)

        def progressed(progress: Progress) -> None:
            self.metrics.progressed(video_id, progress)
            if throttle.due():
                self._event(video_id, path, {"stage": "normalize", "fraction": progress.fraction,
                                             "out_time_s": round(progress.out_time_s, 3),
                                             "duration_s": facts.duration_s, "speed": progress.speed})

        try:
            result = normalize(Path(path), target, facts, self.settings, on_progress=progressed)
        except Exception as exc:
            self.metrics.finished(video_id, None, facts.duration_s, getattr(exc, "kind", "internal_error"))
            raise
        finally:
            self.budget.release(video_id)
            self.metrics.spool_bytes = self.budget.used_bytes()
        self.metrics.finished(video_id, result, facts.duration_s)
        logger.info("normalize video=%s path=%s %s in %.2f s (%s)", video_id, path, result.method, result.wall_s,
                    result.why)
        return result

    def _event(self, video_id: str, path: str, detail: dict[str, Any]) -> None:
        """A ``progress`` event; a Redis blip costs the event, never the normalization."""
        try:
            with redis_errors(f"normalize: video={video_id}: progress event"):
                self.client.xadd(self.keys.events, event_fields("progress", video_id, path, detail),  # type: ignore[arg-type]
                                 maxlen=self.config.redis.events_maxlen, approximate=True)
            self.metrics.count("progress_events")
        except ResultsUnavailable as exc:
            logger.debug("progress event of video=%s lost: %s", video_id, exc)

    # ---------------------------------------------------------------- spool sweeper
    def start(self) -> None:
        self._sweeper = threading.Thread(target=self._sweep_loop, name="spool-sweeper", daemon=True)
        self._sweeper.start()

    def stop(self) -> None:
        self.budget.notify()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)

    def sweep(self, *, retention_s: float | None = None) -> int:
        """Remove the spool files that are due; returns how many."""
        retention_s = self.settings.spool_retention_seconds if retention_s is None else retention_s
        swept = sweep(self.spool, self.client, self.keys, retention_s=retention_s, active=self.budget.active())
        if swept.files:
            self.metrics.count("spool_removed", swept.files)
            self.metrics.count("spool_removed_bytes", swept.bytes)
            self.budget.notify()
        self.metrics.spool_bytes = self.budget.used_bytes()
        return swept.files

    def _make_room(self) -> int:
        """The spool is full and a normalization waits: finished videos' copies go now, retention or not."""
        try:
            with redis_errors("spool: make room"):
                return self.sweep(retention_s=0)
        except ResultsUnavailable as exc:
            logger.debug("spool: cannot make room now: %s", exc)
            return 0

    def _sweep_loop(self) -> None:
        interval = min(60.0, max(1.0, self.settings.spool_retention_seconds / 4))
        while not self.stop_event.wait(interval):
            try:
                with redis_errors("spool: sweep"):
                    self.sweep()
            except ResultsUnavailable as exc:
                logger.warning("%s; sweeping later", exc)
            except OSError as exc:
                logger.warning("spool: cannot sweep %s: %s", self.spool, exc)


class _Throttle:
    """True at most once per ``interval_s``, and not before ``interval_s`` has passed.

    >>> _Throttle(0).due(), _Throttle(3600).due()
    (True, False)
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return False
        self._last = now
        return True
