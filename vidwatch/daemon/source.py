"""Looking at a candidate file without ever blocking on it, and refusing what is not a video file.

A watched folder may hold anything a user or a recorder put there: FIFOs, sockets, device
nodes, links out of the roots, links that loop, files that cannot be read. Opening a FIFO
for reading blocks until a writer appears, and ffprobe handed a device or ``/etc/passwd``
through a link reads what it should not. So every look at a candidate goes through here:

- :func:`check` (no open): the path resolves (links included) inside a root, and what it
  names is a regular file; else :class:`Refused` (a FIFO, a link out of the roots) or
  :class:`Unreadable` (a link loop, a broken link, permission denied, an I/O error).
- :func:`read` opens it ``O_NONBLOCK`` (``O_NOFOLLOW`` unless the path is a link, which
  :func:`check` resolved inside a root), checks with ``fstat`` that the open file is the regular
  file checked before the open, and reads the fingerprint and the container's completeness
  through that one descriptor. Callers run it under :class:`~vidwatch.daemon.fsguard.FsGuard`
  (a deadline per root), so even a hung NAS costs a claim thread at most the deadline.
- :func:`stamp` is what the settle tracker stats: a regular file's attributes through an open
  descriptor (fresh on NFS); anything else's own ``lstat``, so that a FIFO or a link loop
  settles like a file and is refused once by the claim instead of being retried forever.

A file refused or unreadable has no content to identify it, so its record's id comes from its
path (:func:`path_video_id`): seen again unchanged, it is known, and it fails once.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vidwatch.daemon.completeness import incomplete_reason_of
from vidwatch.daemon.fingerprint import Fingerprint, fingerprint_of
from vidwatch.errors import SourceError
from vidwatch.paths import deepest_root

UNKNOWN_STAMP = (-1, -1)  # (size, mtime_ns) of a path that cannot even be lstat'ed
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
_KINDS = (
    (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"),
)


class Refused(SourceError):
    """Not a file vidwatch may read: a special file, or a link whose target is outside the roots."""

    kind = "refused"


class Unreadable(SourceError):
    """A candidate that cannot be read now: a link loop, a broken link, permission denied, an I/O error.

    ``failure`` is the record's failure kind (``permission``, ``missing``, ``unreadable``).
    """

    kind = "unreadable"

    def __init__(self, message: str, *, failure: str = "unreadable") -> None:
        super().__init__(message)
        self.failure = failure


@dataclass(frozen=True)
class SourceRead:
    """What one open of a candidate learned: its fingerprint, and why it is not complete (None: it looks whole)."""

    fingerprint: Fingerprint
    incomplete: str | None


def describe(mode: int) -> str:
    """What a non-regular file is, in words.

    >>> describe(stat.S_IFIFO | 0o644), describe(stat.S_IFREG | 0o644)
    ('a FIFO', 'a regular file')
    """
    return next((what for test, what in _KINDS if test(mode)), "a regular file" if stat.S_ISREG(mode) else
                "not a regular file")


def path_video_id(path: str) -> str:
    """The id of a file that has no readable content to fingerprint: from its path (stable).

    >>> path_video_id("/nvr/cam1/a.mp4") == path_video_id("/nvr/cam1/a.mp4"), len(path_video_id("/x"))
    (True, 20)
    """
    return hashlib.sha256(b"path:" + os.fsencode(path)).hexdigest()[:20]


def unreadable(path: str | Path, exc: OSError) -> Unreadable:
    """The :class:`Unreadable` error of an ``OSError`` met while looking at ``path``."""
    code = errno.errorcode.get(exc.errno or 0, "")
    why = {
        errno.ELOOP: "a symbolic link loop",
        errno.ENOENT: "a broken link (its target does not exist)",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EIO: "I/O error",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    failure = {errno.EACCES: "permission", errno.EPERM: "permission", errno.ENOENT: "missing"}.get(
        exc.errno or 0, "unreadable")
    return Unreadable(f"{path}: cannot read: {why}" + (f" ({code})" if code else ""), failure=failure)


def check(path: str | Path, roots: Sequence[Path]) -> os.stat_result:
    """The attributes of the regular file ``path`` names, once it is known to be safe to open.

    Raises :class:`FileNotFoundError` when nothing is at ``path`` (it was deleted),
    :class:`Refused` or :class:`Unreadable` otherwise (see the module's docstring).
    """
    path = os.fspath(path)
    link = _lstat(path)  # FileNotFoundError: gone
    resolved = os.path.realpath(path)
    if resolved != os.path.abspath(path) and not _inside(resolved, roots):
        raise Refused(f"{path}: a link to {resolved}, outside the watched roots")
    try:
        st = os.stat(path) if stat.S_ISLNK(link.st_mode) or resolved != os.path.abspath(path) else link
    except OSError as exc:
        raise unreadable(path, exc) from exc
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"{path}: not a regular file ({describe(st.st_mode)})")
    return st


def read(path: str | Path, roots: Sequence[Path]) -> SourceRead:
    """Fingerprint and completeness of ``path`` through one non-blocking descriptor (see the module's docstring)."""
    path = os.fspath(path)
    st = check(path, roots)
    is_link = stat.S_ISLNK(_lstat(path).st_mode)
    try:
        fd = os.open(path, _OPEN_FLAGS | (0 if is_link else os.O_NOFOLLOW))
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP and not is_link:  # swapped for a link since the check
            raise Refused(f"{path}: became a link while it was looked at") from exc
        raise unreadable(path, exc) from exc
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise Refused(f"{path}: replaced while it was looked at (now {describe(opened.st_mode)})")
        os.set_blocking(fd, True)  # a regular file: reads never wait on a writer
        with os.fdopen(fd, "rb", closefd=True) as handle:
            fd = -1
            try:
                fp = fingerprint_of(handle, opened)
                incomplete = incomplete_reason_of(handle, opened.st_size, Path(path).suffix)
            except OSError as exc:
                raise unreadable(path, exc) from exc
    finally:
        if fd >= 0:
            os.close(fd)
    return SourceRead(fp, incomplete)


def stamp(path: str | Path) -> tuple[int, int]:
    """(size, mtime_ns) for the settle tracker; never blocks on a special file (see the module's docstring).

    Raises :class:`FileNotFoundError` only when nothing is at ``path`` any more.
    """
    path = os.fspath(path)
    try:
        link = _lstat(path)
    except Unreadable:
        return UNKNOWN_STAMP  # a folder on the way cannot be searched: the claim says why, once
    try:
        st = os.stat(path) if stat.S_ISLNK(link.st_mode) else link
    except OSError:
        return link.st_size, link.st_mtime_ns  # a loop or a broken link: the claim says why, once
    if not stat.S_ISREG(st.st_mode):
        return st.st_size, st.st_mtime_ns
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return st.st_size, st.st_mtime_ns  # unreadable: the claim says why, once
    try:
        fresh = os.fstat(fd)  # on NFS, fresher than a cached stat
    finally:
        os.close(fd)
    return fresh.st_size, fresh.st_mtime_ns


def hint_stat(path: str | Path) -> tuple[int, int]:
    """(size, mtime_ns) as the ledger's path hints keep them: of the target, else of the link itself."""
    try:
        st = os.stat(path)
    except OSError:
        try:
            st = _lstat(os.fspath(path))
        except Unreadable:
            return UNKNOWN_STAMP
    return st.st_size, st.st_mtime_ns


def _lstat(path: str) -> os.stat_result:
    """``lstat``; :class:`FileNotFoundError` when nothing is there, :class:`Unreadable` when it cannot be looked at."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise unreadable(path, exc) from exc


def _inside(resolved: str, roots: Sequence[Path]) -> bool:
    real_roots = [Path(os.path.realpath(root)) for root in roots]
    return deepest_root(Path(resolved), real_roots) is not None
