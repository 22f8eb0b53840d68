"""watchdog observers on the roots. Events are hints: handlers only enqueue work items.

``mode = "auto"`` polls on network filesystems (NFS, SMB, FUSE…), where writes made
by other hosts raise no inotify event, and uses inotify elsewhere
(:func:`vidwatch.filesystems.choose_mode`).
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from vidwatch.daemon.work import Inbox, Kind, WorkItem
from vidwatch.filesystems import choose_mode

__all__ = ["EnqueueHandler", "choose_mode", "start_observer"]

logger = logging.getLogger(__name__)

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
