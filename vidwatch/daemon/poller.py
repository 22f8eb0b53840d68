"""Polling for network mounts, at a cost that follows what changed, not the size of the tree.

Each pass stats every *folder* and re-lists only those whose mtime changed (a file
created, renamed or deleted in a folder changes the folder's mtime). Files themselves are
not stat'ed here: the daemon's settle tracker stats only the files still settling. On an
NVR tree of 100k files in a few hundred folders, a quiet pass is a few hundred stats.

A root that is missing, or reads as suddenly empty, is an outage: nothing is reported as
deleted, and the known listing is kept until the root reads normally again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vidwatch.daemon.work import Inbox, Kind, WorkItem

logger = logging.getLogger(__name__)

RECENT_S = 2.0  # coarse mtime granularity (NFS, SMB): re-list folders changed this recently


@dataclass
class _Folder:
    mtime_ns: int = -1
    files: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)


@dataclass
class PassStats:
    folder_stats: int = 0
    listings: int = 0
    seconds: float = 0.0


class DirPoller:
    """A watchdog-observer-like thread (``start``/``stop``/``join``/``is_alive``) for one root."""

    def __init__(
        self,
        root: Path,
        sink: Inbox,
        interval_s: float,
        skip_folder: Callable[[str], bool] = lambda name: False,
    ) -> None:
        self.root = str(root)
        self.sink = sink
        self.interval_s = interval_s
        self.skip_folder = skip_folder
        self.last_pass = PassStats()
        self.passes = 0
        self.outage: str | None = None
        self._folders: dict[str, _Folder] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"poll:{root}", daemon=True)

    # observer-like surface
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                self.poll_once(report=not first)
                first = False
            except Exception:
                logger.exception("poll %s: pass failed", self.root)
                raise
            self._stop.wait(self.interval_s)

    def poll_once(self, *, report: bool = True) -> PassStats:
        """One pass; ``report=False`` only learns the tree (the daemon's walk covers what is there)."""
        started = time.monotonic()
        stats = PassStats()
        try:
            root_entries = os.listdir(self.root)
        except OSError as exc:
            self._set_outage(f"unreadable: {exc.strerror or exc}")
            return stats
        known = self._folders.get(self.root)
        if not root_entries and known is not None and (known.files or known.folders):
            self._set_outage("reads as empty (mount dropped?)")
            return stats
        if self.outage:
            logger.warning("poll %s: readable again", self.root)
            self.outage = None
        pending = [self.root]
        while pending:
            folder = pending.pop()
            state = self._folders.setdefault(folder, _Folder())
            try:
                st = os.stat(folder)
            except FileNotFoundError:
                self._forget(folder, report)
                continue
            except OSError:
                continue
            stats.folder_stats += 1
            now_ns = time.time_ns()
            changed = st.st_mtime_ns != state.mtime_ns or now_ns - st.st_mtime_ns < RECENT_S * 1e9
            if changed:
                stats.listings += 1
                self._relist(folder, state, st.st_mtime_ns, report)
            pending.extend(os.path.join(folder, name) for name in state.folders)
        stats.seconds = time.monotonic() - started
        self.last_pass = stats
        self.passes += 1
        return stats

    def _relist(self, folder: str, state: _Folder, mtime_ns: int, report: bool) -> None:
        files: set[str] = set()
        folders: set[str] = set()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if not self.skip_folder(entry.name):
                                folders.add(entry.name)
                        else:  # files, links and special files alike: the claim decides what it reads
                            files.add(entry.name)
                    except OSError:
                        continue
        except OSError:
            return
        if report:
            for name in sorted(files - state.files):
                self.sink.put(WorkItem(Kind.CREATED, os.path.join(folder, name)))
            for name in sorted(state.files - files):
                self.sink.put(WorkItem(Kind.DELETED, os.path.join(folder, name)))
            for name in sorted(folders - state.folders):
                self.sink.put(WorkItem(Kind.FOLDER, os.path.join(folder, name)))
        for name in state.folders - folders:
            self._forget(os.path.join(folder, name), report=False)
        state.mtime_ns, state.files, state.folders = mtime_ns, files, folders

    def _forget(self, folder: str, report: bool) -> None:
        state = self._folders.pop(folder, None)
        if state is None:
            return
        for name in state.folders:
            self._forget(os.path.join(folder, name), report)

    def _set_outage(self, why: str) -> None:
        if self.outage != why:
            logger.warning("poll %s: %s; keeping what is known until it reads normally", self.root, why)
        self.outage = why
