"""Content fingerprints: what makes a file version, whatever its path or inode."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

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
    attributes a plain ``stat`` may serve from a cache.
    """
    with open(path, "rb") as handle:
        st = os.fstat(handle.fileno())
        digest = hashlib.sha256(str(st.st_size).encode())
        digest.update(handle.read(CHUNK_BYTES))
        if st.st_size > CHUNK_BYTES:
            handle.seek(max(CHUNK_BYTES, st.st_size - CHUNK_BYTES))
            digest.update(handle.read(CHUNK_BYTES))
    return Fingerprint(digest.hexdigest(), st.st_size, st.st_mtime_ns)


def fstat(path: Path) -> os.stat_result:
    """Attributes through ``open`` + ``fstat`` (fresh on NFS, unlike a cached ``stat``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)
