"""The walker: one thread that walks folders for files the ledger does not know.

It walks every root at start-up and every ``rescan_seconds``, a root after an inotify
overflow or when it comes back, and folders that were moved in. What it finds is a hint
(:attr:`Kind.FOUND` on the inbox): a path whose size and mtime the ledger's path hints
already carry is skipped without reading it; everything else goes through the settle
tracker and the claim like a file an observer reported. Links are not followed into folders
(``os.walk`` does not descend into them); a link, FIFO or other special file with a candidate's
name is reported like any file, and the claim refuses it once (:mod:`vidwatch.daemon.source`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path

from vidwatch.daemon import source
from vidwatch.daemon.ledger import Ledger
from vidwatch.daemon.work import Inbox, Kind, WorkItem
from vidwatch.errors import ResultsUnavailable
from vidwatch.paths import PathRules
from vidwatch.results.connection import redis_errors

logger = logging.getLogger(__name__)

WALK_BATCH = 500  # path hints asked of Redis in one pipeline


class Walker:
    def __init__(self, ledger: Ledger, rules: PathRules, inbox: Inbox, stop: threading.Event) -> None:
        self.ledger = ledger
        self.rules = rules
        self.inbox = inbox
        self.stop_event = stop
        self._folders: queue.Queue[Path | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="walker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._folders.put(None)

    def walk(self, folder: Path) -> None:
        """Walk ``folder`` (soon, on the walker's thread)."""
        self._folders.put(folder)

    def folder_appeared(self, path: str, _now: float) -> None:
        """A :attr:`Kind.FOLDER` work item: walk it unless its name is ignored."""
        if not self.rules.is_ignored_name(Path(path).name):
            self.walk(Path(path))

    def idle(self) -> bool:
        return self._folders.unfinished_tasks == 0

    # ------------------------------------------------------------------ the thread
    def _loop(self) -> None:
        while True:
            folder = self._folders.get()
            try:
                if folder is None or self.stop_event.is_set():
                    return
                with redis_errors(f"walk {folder}"):
                    self._walk(folder)
            except ResultsUnavailable as exc:
                logger.warning("%s; the next rescan will cover it", exc)
            except OSError as exc:
                logger.warning("walk %s: %s", folder, exc)
            finally:
                self._folders.task_done()

    def _walk(self, folder: Path) -> None:
        batch: list[tuple[str, int, int]] = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not self.rules.is_ignored_name(d)]
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not self.rules.is_candidate(Path(path)):
                    continue
                try:
                    size, mtime_ns = source.hint_stat(path)  # a link loop: the link's own attributes
                except OSError:
                    continue
                batch.append((path, size, mtime_ns))
                if len(batch) >= WALK_BATCH:
                    self._report_unknown(batch)
                    batch = []
            if self.stop_event.is_set():
                return
        self._report_unknown(batch)

    def _report_unknown(self, batch: list[tuple[str, int, int]]) -> None:
        if not batch:
            return
        for (path, _, _), known in zip(batch, self.ledger.known_many(batch), strict=True):
            if not known:
                self.inbox.put(WorkItem(Kind.FOUND, path))
