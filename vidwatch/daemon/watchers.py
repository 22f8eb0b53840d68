"""The roots' watchers: one observer (inotify) or poller per root, kept alive and pointed at the root.

Events are hints: :class:`EnqueueHandler` only puts work items on the daemon's inbox.
``mode = "auto"`` polls on network filesystems (NFS, SMB, FUSE…), where writes made by
other hosts raise no inotify event, and uses inotify elsewhere
(:func:`vidwatch.filesystems.choose_mode`).

:meth:`RootWatchers.supervise` runs from the main loop every few seconds. A root is known by
its identity (device, inode): a root that vanished, or that must be a mount point and is not
(``[watch] require_mount``, :mod:`vidwatch.daemon.mounts`), loses its observer and is reported
in :meth:`RootWatchers.root_errors` (an outage: nothing in it is treated as deleted); a root
that came back, was remounted (a new identity) or whose observer died gets a fresh observer
and a rescan, so nothing written meanwhile is missed. Filesystem calls go through
:class:`FsGuard`, so a hung NAS cannot freeze the loop.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from vidwatch.config import WatchConfig
from vidwatch.daemon.fsguard import FsGuard
from vidwatch.daemon.mounts import RootChecks
from vidwatch.daemon.poller import DirPoller
from vidwatch.daemon.work import Inbox, Kind, WorkItem
from vidwatch.filesystems import choose_mode
from vidwatch.paths import PathRules
from vidwatch.status import PollerStatus

logger = logging.getLogger(__name__)

OBSERVER_JOIN_S = 5.0


_FILE_EVENTS = {"created": Kind.CREATED, "modified": Kind.MODIFIED, "closed": Kind.CLOSED}


class EnqueueHandler(FileSystemEventHandler):
    """Puts a :class:`WorkItem` for every relevant event on the inbox; nothing slow on the observer thread."""

    def __init__(self, sink: Inbox) -> None:
        self.sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.event_type == "moved":
            self._put(Kind.MOVED, event.dest_path)
            if event.is_directory:
                self._put(Kind.FOLDER, event.dest_path)
            return
        if event.event_type == "deleted":
            self._put(Kind.DELETED, event.src_path)
            return
        if event.is_directory:
            if event.event_type == "created":
                self._put(Kind.FOLDER, event.src_path)
            return
        self._put(_FILE_EVENTS.get(event.event_type, Kind.MODIFIED), event.src_path)

    def _put(self, kind: Kind, path: str | bytes) -> None:
        self.sink.put(WorkItem(kind, os.fsdecode(path)))


def start_observer(root: Path, mode: str, handler: EnqueueHandler) -> BaseObserver | None:
    """Start an inotify observer on ``root``; None when the kernel's inotify watches ran out."""
    if mode != "inotify":
        raise ValueError(f"watch mode: expected inotify here, got {mode!r}")
    observer = Observer()
    observer.schedule(handler, str(root), recursive=True)
    try:
        observer.start()
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        logger.warning(
            "watch %s: inotify watches exhausted (%s); polling this root instead. "
            "Fix: sysctl -w fs.inotify.max_user_watches=1048576 (and in /etc/sysctl.d/)",
            root,
            exc,
        )
        return None
    return observer


class Watcher(Protocol):
    """A watchdog observer or a :class:`DirPoller`: a thread watching one root."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...

    def is_alive(self) -> bool: ...


class RootWatchers:
    def __init__(
        self,
        watch: WatchConfig,
        rules: PathRules,
        fs: FsGuard,
        inbox: Inbox,
        rescan: Callable[[Path], None],
        checks: RootChecks | None = None,
    ) -> None:
        self.watch = watch
        self.rules = rules
        self.fs = fs
        self.checks = checks or RootChecks(require_mount=watch.require_mount, fs=fs)
        self.inbox = inbox
        self.rescan = rescan
        self.observers: dict[Path, Watcher] = {}
        self.errors: dict[Path, str] = {}
        self._identities: dict[Path, tuple[int, int]] = {}

    # ------------------------------------------------------------------ supervision
    def supervise(self) -> None:
        """(Re)start observers; a root that vanished or was remounted gets a fresh one and a rescan."""
        for root in self.rules.roots:
            look = self.checks.look(root)
            if look.identity is None:
                self._lost(root, look.why or "missing")
            else:
                self._ensure(root, look.identity)

    def watching(self, root: Path) -> bool:
        """The root is watched now (not missing, unmounted or stuck): walking it means something."""
        return root not in self.errors and root in self.observers

    def outage_of(self, path: str | Path) -> str | None:
        """Why the root holding ``path`` cannot be read now (a live look), or None when it can."""
        root = self.rules.root_of(Path(path))
        if root is None:
            return None
        return self.errors.get(root) or self.checks.look(root).why

    def stop(self) -> None:
        for observer in self.observers.values():
            observer.stop()
        for observer in self.observers.values():
            observer.join(timeout=OBSERVER_JOIN_S)

    def _lost(self, root: Path, why: str) -> None:
        if self.errors.get(root) != why:
            logger.error("watch %s: %s; not watched until it is back (nothing in it counts as deleted)", root, why)
        self.errors[root] = why
        observer = self.observers.pop(root, None)
        if observer is not None:
            observer.stop()

    def _ensure(self, root: Path, identity: tuple[int, int]) -> None:
        observer = self.observers.get(root)
        if observer is not None and observer.is_alive() and self._identities.get(root) == identity:
            return
        if observer is not None:
            why = "died" if not observer.is_alive() else "watches a folder that is no longer the root"
            logger.warning("watch %s: observer %s; restarting it", root, why)
            observer.stop()
        mode = choose_mode(self.watch.mode, root)
        try:
            self.observers[root] = self._start(root, mode)
        except OSError as exc:
            self.errors[root] = f"cannot watch: {exc}"
            logger.error("watch %s: cannot start observer: %s", root, exc)
            return
        self._identities[root] = identity
        if root in self.errors or observer is not None:
            logger.info("watch %s: back; rescanning", root)
            self.rescan(root)  # catch up on what happened while unwatched
        self.errors.pop(root, None)
        logger.info("watch %s: %s", root, mode)

    def _start(self, root: Path, mode: str) -> Watcher:
        if mode == "poll":
            interval_s = self.watch.poll_interval_seconds
            poller = DirPoller(root, self.inbox, interval_s, skip_folder=self.rules.is_ignored_name)
            poller.start()
            return poller
        observer = start_observer(root, mode, EnqueueHandler(self.inbox))
        if observer is None:  # inotify watches ran out: poll this root instead
            return self._start(root, "poll")
        return observer

    # ------------------------------------------------------------------ status
    def alive(self) -> dict[str, bool]:
        return {str(root): observer.is_alive() for root, observer in self.observers.items()}

    def pollers(self) -> dict[str, PollerStatus]:
        return {
            str(root): PollerStatus(obs.last_pass.folder_stats, obs.last_pass.listings,
                                    round(obs.last_pass.seconds, 4), obs.outage)
            for root, obs in self.observers.items()
            if isinstance(obs, DirPoller)
        }

    def root_errors(self, pollers: dict[str, PollerStatus] | None = None) -> dict[str, str]:
        """Why a root is not watched: missing, unreadable, a poller's outage, or stuck filesystem calls."""
        errors = {str(root): why for root, why in self.errors.items()}
        for root, poller in (self.pollers() if pollers is None else pollers).items():
            if poller.outage:
                errors.setdefault(root, poller.outage)
        for root in self.fs.stuck_roots():
            errors.setdefault(root, "stuck: filesystem calls do not return")
        return errors
