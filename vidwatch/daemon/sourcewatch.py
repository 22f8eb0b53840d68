"""The source watch: sources of videos in flight are looked at again, so a change after the claim is noticed.

A recorder that pauses longer than ``settle_seconds`` and then goes on, or a file overwritten
while its video is at a worker, changes a source whose video already left the claim. Every
``period_s`` a thread of its own (it stats files: a slow NAS must not slow the main loop)
compares the source of each video queued for or at a worker with the size and mtime its
record holds (``stat`` through the root's :class:`FsGuard` deadline, nothing opened; before
that, the normalize thread compares the source itself). A source that differs is
reported as :attr:`Kind.CHANGED`: the claim pool claims it again once it is quiet, and the
claim makes it a new version of the same video (:meth:`Ledger.version_of`). A video marked
``source_changed`` is reported once more when it ends, for its rerun.

Videos whose root is down are skipped: a source missing from an unmounted share is not a change.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from vidwatch.daemon import source
from vidwatch.daemon.fsguard import FsGuard
from vidwatch.daemon.work import Inbox, Kind, WorkItem
from vidwatch.errors import ResultsUnavailable
from vidwatch.paths import PathRules
from vidwatch.results.connection import redis_errors
from vidwatch.results.records import Records, State

logger = logging.getLogger(__name__)

# seen and normalizing: the normalize thread compares the source before and after ffmpeg itself
WATCHED_STATES = (State.QUEUED, State.PROCESSING)
_FIELDS = ("state", "path", "size", "mtime_ns", "source_changed")


class SourceWatch:
    def __init__(
        self,
        records: Records,
        rules: PathRules,
        fs: FsGuard,
        inbox: Inbox,
        stop: threading.Event,
        *,
        period_s: float,
        watching: Callable[[Path], bool] = lambda root: True,
    ) -> None:
        self.records = records
        self.rules = rules
        self.fs = fs
        self.inbox = inbox
        self.stop_event = stop
        self.period_s = period_s
        self.watching = watching
        self._awaiting: dict[str, str] = {}  # video id -> path: changed at a worker, rerun when it ends
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="source-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Wait for the thread to see ``stop`` set (a scan in progress ends first)."""
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def await_end(self, video_id: str, path: str) -> None:
        """``video_id`` is marked ``source_changed`` (by a claim): report ``path`` again once it ends."""
        with self._lock:
            self._awaiting[video_id] = path

    def _loop(self) -> None:
        while not self.stop_event.wait(self.period_s):
            try:
                with redis_errors("source watch"):
                    self.scan()
            except ResultsUnavailable as exc:
                logger.debug("%s; next time", exc)

    def scan(self) -> list[str]:
        """One look at every in-flight video's source; returns the paths reported as changed."""
        ids = sorted(self.records.inflight())
        pipe = self.records.client.pipeline(transaction=False)
        for video_id in ids:
            pipe.hmget(self.records.keys.video(video_id), *_FIELDS)
        by_root: defaultdict[Path, list[tuple[str, int, int]]] = defaultdict(list)
        reported = []
        for video_id, values in zip(ids, pipe.execute(), strict=True):
            state, path, size, mtime_ns, changed = values
            if not path or state not in WATCHED_STATES:
                continue
            if changed:
                self.await_end(video_id, path)
                continue
            root = self.rules.root_of(Path(path))
            if root is not None and self.watching(root):
                by_root[root].append((path, int(size or -1), int(mtime_ns or -1)))
        in_flight = set(ids)
        with self._lock:
            for video_id in [v for v in self._awaiting if v not in in_flight]:  # ended: its rerun is due
                reported.append(self._awaiting.pop(video_id))
        for root, sources in by_root.items():
            reported.extend(self._changed(root, sources))
        for path in reported:
            self.inbox.put(WorkItem(Kind.CHANGED, path))
        return reported

    def _changed(self, root: Path, sources: list[tuple[str, int, int]]) -> list[str]:
        def look() -> list[str]:
            out = []
            for path, size, mtime_ns in sources:
                try:
                    now = source.hint_stat(path)
                except OSError:
                    continue  # gone: the normalize thread or the worker says so
                if now != (size, mtime_ns):
                    out.append(path)
            return out

        try:
            return self.fs.call(str(root), look)
        except OSError as exc:
            logger.debug("source watch %s: %s", root, exc)
            return []
