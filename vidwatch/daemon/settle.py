"""When a file being written is complete: a quiet period with no size or mtime change.

Pure bookkeeping, no I/O: the daemon feeds it events ("something happened to this
path") and stat results, and asks which paths are due for a look and which settled.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Pending:
    first_seen: float  # when the path was first reported (``now``'s clock): where its settle wait starts
    size: int | None = None
    mtime_ns: int | None = None
    last_change: float = 0.0
    not_before: float = 0.0


class SettleTracker:
    """Tracks candidate files until they have been quiet for ``settle_s``.

    >>> t = SettleTracker(settle_s=2.0)
    >>> t.touch("a", now=0.0)
    >>> t.observe("a", size=10, mtime_ns=1, now=0.5)  # first look, 0.5 s after the last event
    False
    >>> t.observe("a", size=20, mtime_ns=2, now=2.1)  # it grew: the quiet period restarts
    False
    >>> t.observe("a", size=20, mtime_ns=2, now=4.0)
    False
    >>> t.observe("a", size=20, mtime_ns=2, now=4.2)
    True
    """

    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, path: str) -> bool:
        return path in self._pending

    def touch(self, path: str, *, now: float) -> None:
        """Something happened to ``path`` (written, closed, moved in): its quiet period restarts."""
        entry = self._pending.setdefault(path, _Pending(first_seen=now))
        entry.last_change = now

    def defer(self, path: str, *, now: float, delay_s: float, first_seen: float | None = None) -> None:
        """Look again no sooner than ``delay_s`` from now (after a failed probe, say).

        ``first_seen``: when a path back from a claim attempt was first reported (default: now).
        """
        first = now if first_seen is None else first_seen
        entry = self._pending.setdefault(path, _Pending(first_seen=first, last_change=now))
        entry.not_before = now + delay_s

    def first_seen(self, path: str) -> float | None:
        """When ``path`` was first reported (None: it is not tracked)."""
        entry = self._pending.get(path)
        return None if entry is None else entry.first_seen

    def forget(self, path: str) -> None:
        self._pending.pop(path, None)

    def due(self, *, now: float) -> list[str]:
        """Paths worth a stat now: quiet for ``settle_s`` by our clock, or never looked at."""
        return [
            path
            for path, entry in self._pending.items()
            if now >= entry.not_before and (entry.size is None or now - entry.last_change >= self.settle_s)
        ]

    def observe(self, path: str, *, size: int, mtime_ns: int, now: float) -> bool:
        """Record a stat of ``path``; True when it has not changed for ``settle_s``."""
        entry = self._pending.setdefault(path, _Pending(first_seen=now, last_change=now))
        if entry.size is None:
            # First look: the quiet period runs from the last event seen for the path.
            entry.size, entry.mtime_ns = size, mtime_ns
        elif (size, mtime_ns) != (entry.size, entry.mtime_ns):
            entry.size, entry.mtime_ns = size, mtime_ns
            entry.last_change = now
            return False
        return now - entry.last_change >= self.settle_s
