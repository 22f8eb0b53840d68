"""Content fingerprints: what makes a file version, whatever its path or inode."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class Fingerprint:
    digest: str
    size: int
    mtime_ns: int

    @property
    def video_id(self) -> str:
        """Stable for the same bytes: the first 20 hex digits of the digest."""
        return self.digest[:20]


def fingerprint(path: Path) -> Fingerprint:
    """Hash of size + the first and last 64 KiB, read through one open file.

    Size and mtime come from ``fstat`` on the open file, which on NFS refreshes the
    attributes a plain ``stat`` may serve from a cache. The file is opened non-blocking and
    must be a regular file (:class:`OSError` ``EINVAL`` otherwise): a FIFO never blocks here.
    For candidates in the daemon, :func:`vidwatch.daemon.source.read` adds the root checks.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(22, f"not a regular file: {path}")
        os.set_blocking(fd, True)
        return fingerprint_of(handle, st)


def fingerprint_of(handle: BinaryIO, st: os.stat_result) -> Fingerprint:
    """The fingerprint of the open regular file ``handle`` whose ``fstat`` is ``st``."""
    handle.seek(0)
    digest = hashlib.sha256(str(st.st_size).encode())
    digest.update(handle.read(CHUNK_BYTES))
    if st.st_size > CHUNK_BYTES:
        handle.seek(max(CHUNK_BYTES, st.st_size - CHUNK_BYTES))
        digest.update(handle.read(CHUNK_BYTES))
    return Fingerprint(digest.hexdigest(), st.st_size, st.st_mtime_ns)


def fstat(path: Path) -> os.stat_result:
    """Attributes through ``open`` + ``fstat`` (fresh on NFS, unlike a cached ``stat``); never blocks."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)

