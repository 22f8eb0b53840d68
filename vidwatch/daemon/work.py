"""What travels to the daemon's main loop: typed work items, and the table that dispatches them.

Observers, pollers and the walker report what they saw; the claim pool reports how a claim
ended; ``Daemon.submit`` asks for a file to be claimed now. Each report is one
:class:`WorkItem` on the daemon's inbox (a :class:`queue.Queue`); only the main loop takes
items off it, so what the handlers touch (the settle tracker, the claim pool's bookkeeping)
needs no lock.

>>> seen = []
>>> dispatcher = Dispatcher({kind: (lambda path, now, k=kind: seen.append((k.value, path))) for kind in Kind})
>>> inbox: Inbox = queue.Queue()
>>> inbox.put(WorkItem(Kind.CLOSED, "/nvr/cam1/a.mp4"))
>>> inbox.put(WorkItem(Kind.OVERFLOW, "/nvr"))
>>> dispatcher.drain(inbox, now=0.0)
2
>>> seen
[('closed', '/nvr/cam1/a.mp4'), ('overflow', '/nvr')]
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import NamedTuple


class Kind(StrEnum):
    """What happened to a path, and so what the main loop does with it (values as watchdog names them)."""

    # reported by observers, pollers and the walker: (re)start the file's quiet period
    CREATED = "created"
    MODIFIED = "modified"
    CLOSED = "closed"
    MOVED = "moved"  # moved in (the destination)
    FOUND = "found"  # by a walk of the root
    # reported by observers and pollers
    FOLDER = "dir"  # a folder appeared (created or moved in): walk it
    DELETED = "deleted"  # a file went away: stop tracking it
    OVERFLOW = "overflow"  # events of this root were lost (inotify queue overflow): rescan it
    # reported by the source watch
    CHANGED = "changed"  # the source of a video in flight changed: claim it again once quiet
    # asked for by Daemon.submit
    SUBMIT = "submit"  # claim this file now, without waiting for it to settle
    # reported by the claim pool
    CLAIMED = "claimed"  # the claim ended (ledgered, known already, or gone): nothing more to do here
    NOT_READY = "not_ready"  # the file is not complete yet: look again after the settle time
    RETRY = "retry"  # Redis or the file could not be read: look again after the settle time


#: kinds that mean "something was written here": the path's quiet period (re)starts
FILE_CHANGES = (Kind.CREATED, Kind.MODIFIED, Kind.CLOSED, Kind.MOVED, Kind.FOUND)


class WorkItem(NamedTuple):
    """One report for the main loop (a named tuple, so ``("created", path)`` compares equal)."""

    kind: Kind
    path: str


Inbox = queue.Queue[WorkItem]
Handler = Callable[[str, float], None]  # (path, monotonic now)


class Dispatcher:
    """Calls the handler of each item's kind; every kind must have one (checked at construction)."""

    def __init__(self, handlers: Mapping[Kind, Handler]) -> None:
        missing = sorted(kind.value for kind in Kind if kind not in handlers)
        if missing:
            raise ValueError(f"dispatcher: no handler for {', '.join(missing)}")
        self._handlers = dict(handlers)

    def dispatch(self, item: WorkItem, now: float) -> None:
        kind, path = item
        self._handlers[Kind(kind)](path, now)  # Kind(): a bare ("overflow", path) pair is checked too

    def drain(self, inbox: Inbox, *, now: float) -> int:
        """Dispatch every item waiting on ``inbox``; returns how many there were."""
        count = 0
        while True:
            try:
                item = inbox.get_nowait()
            except queue.Empty:
                return count
            self.dispatch(item, now)
            count += 1
