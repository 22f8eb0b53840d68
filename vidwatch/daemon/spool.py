"""The spool: bounded in bytes, and emptied of videos that are over.

A spool file is ``<spool>/<video_id>.mp4`` (written as ``.<video_id>.mp4.part`` and
renamed into place). :class:`SpoolBudget` makes a normalization wait until its estimated
output fits under ``spool_max_bytes``; :func:`sweep` removes the copies of videos whose
record is ``done`` or ``failed`` since ``spool_retention_seconds``. Both look at the
folder and at Redis each time, never at memory alone, so a restart loses nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from vidwatch.config import NormalizeConfig
from vidwatch.errors import ShuttingDown
from vidwatch.media.normalize import plan
from vidwatch.media.probe import Probe
from vidwatch.results.keys import Keys
from vidwatch.results.records import State

logger = logging.getLogger(__name__)

WAIT_POLL_S = 1.0
STALE_PARTIAL_S = 600.0  # a partial file nobody here writes, untouched this long, is a crash's leftover
ORPHAN_AGE_S = 86_400.0  # a spool file without any record is removed once this old
TRANSCODE_BITS_PER_PIXEL = 0.15  # generous size estimate of a transcode (H.264, crf 23)


def video_id_of(name: str) -> str | None:
    """The video id a spool file name belongs to.

    >>> video_id_of("abc.mp4"), video_id_of(".abc.mp4.part"), video_id_of("notes.txt")
    ('abc', 'abc', None)
    """
    if name.startswith(".") and name.endswith(".mp4.part"):
        return name[1 : -len(".mp4.part")]
    if not name.startswith(".") and name.endswith(".mp4"):
        return name[: -len(".mp4")]
    return None


def estimate_bytes(facts: Probe, settings: NormalizeConfig) -> int:
    """Bytes the spool copy will take, at most about: the source for a remux, less for most transcodes."""
    how = plan(facts, settings)
    if how.method == "remux":
        return facts.size_bytes
    encoded = facts.duration_s * how.width * how.height * how.fps * TRANSCODE_BITS_PER_PIXEL / 8
    return int(min(facts.size_bytes, encoded) if facts.size_bytes else encoded) + 2**20


class SpoolBudget:
    """Admission of normalizations against ``max_bytes`` of spool (files on disk + reservations)."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._reserved: dict[str, int] = {}
        self._cond = threading.Condition()

    def active(self) -> set[str]:
        with self._cond:
            return set(self._reserved)

    def used_bytes(self) -> int:
        """Bytes of spool files plus, for normalizations running, the larger of estimate and file."""
        with self._cond:
            reserved = dict(self._reserved)
        on_disk: dict[str, int] = {}
        total = 0
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            entries = []
        for entry in entries:
            try:
                size = entry.stat().st_size
            except FileNotFoundError:
                continue
            video_id = video_id_of(entry.name)
            if video_id in reserved:
                on_disk[video_id] = on_disk.get(video_id, 0) + size
            else:
                total += size
        return total + sum(max(estimate, on_disk.get(v, 0)) for v, estimate in reserved.items())

    def reserve(
        self,
        video_id: str,
        nbytes: int,
        stop: threading.Event,
        on_wait: Callable[[int], None] | None = None,
        make_room: Callable[[], object] | None = None,
    ) -> None:
        """Block until ``nbytes`` fit (or, for one larger than the whole spool, the spool is empty).

        ``on_wait`` is told once that the normalization waits; ``make_room`` is called
        each time it does not fit yet (the daemon removes finished videos' copies early).
        """
        waited = False
        while True:
            used = self.used_bytes()
            fits = used + nbytes <= self.max_bytes or (nbytes > self.max_bytes and used == 0)
            if fits:
                with self._cond:
                    self._reserved[video_id] = nbytes
                if nbytes > self.max_bytes:
                    logger.warning("spool: video=%s needs %d bytes, more than spool_max_bytes %d; let through alone",
                                   video_id, nbytes, self.max_bytes)
                return
            if not waited:
                waited = True
                logger.info("spool: video=%s waits for %d bytes (%d of %d used)", video_id, nbytes, used,
                            self.max_bytes)
                if on_wait is not None:
                    on_wait(used)
            if stop.is_set():
                raise ShuttingDown(f"spool: video={video_id}: stopped while waiting for room")
            if make_room is not None and make_room():
                continue
            with self._cond:
                self._cond.wait(WAIT_POLL_S)

    def release(self, video_id: str) -> None:
        with self._cond:
            self._reserved.pop(video_id, None)
            self._cond.notify_all()

    def notify(self) -> None:
        """Room was made (files removed): waiting normalizations look again now."""
        with self._cond:
            self._cond.notify_all()


@dataclass(frozen=True)
class Swept:
    files: int
    bytes: int


def sweep(
    folder: Path, client: redis.Redis, keys: Keys, *, retention_s: float, active: set[str], now: float | None = None
) -> Swept:
    """Remove spool files of videos done or failed more than ``retention_s`` ago, and leftovers.

    Leftovers: partial files nobody is writing (older than :data:`STALE_PARTIAL_S`) and
    copies whose video has no record at all (older than :data:`ORPHAN_AGE_S`).
    """
    now = time.time() if now is None else now
    try:
        entries = [e for e in os.scandir(folder) if e.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return Swept(0, 0)
    doomed: list[os.DirEntry[str]] = []
    finished: list[tuple[os.DirEntry[str], str]] = []
    for entry in entries:
        video_id = video_id_of(entry.name)
        if video_id is None or video_id in active:
            continue
        finished.append((entry, video_id))
    pipe = client.pipeline(transaction=False)
    for _, video_id in finished:
        pipe.hmget(keys.video(video_id), "state", "done_at", "failed_at", "updated_at")
    for (entry, _), fields in zip(finished, pipe.execute(), strict=True):
        if _due(entry, fields, now=now, retention_s=retention_s):
            doomed.append(entry)
    return _remove(doomed)


def _due(entry: os.DirEntry[str], fields: list[str | None], *, now: float, retention_s: float) -> bool:
    """Whether a spool file goes: a stale partial, a finished video's copy past retention, an old orphan."""
    state, done_at, failed_at, updated_at = fields
    age = _age(entry, now)
    if age is None:
        return False
    if entry.name.endswith(".part"):
        return age >= STALE_PARTIAL_S
    if state and State(state).terminal:
        ended = float(done_at or failed_at or updated_at or 0) or (now - age)
        return now - ended >= retention_s
    return state is None and age >= max(ORPHAN_AGE_S, retention_s)


def _remove(doomed: list[os.DirEntry[str]]) -> Swept:
    removed = Swept(0, 0)
    for entry in doomed:
        try:
            size = entry.stat().st_size
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.warning("spool: cannot remove %s: %s", entry.path, exc.strerror)
            continue
        removed = Swept(removed.files + 1, removed.bytes + size)
        logger.info("spool: removed %s (%d bytes)", entry.name, size)
    return removed


def _age(entry: os.DirEntry[str], now: float) -> float | None:
    try:
        return now - entry.stat().st_mtime
    except FileNotFoundError:
        return None
