"""Writing files so readers never see half of one, and hashing files.

Every file vidwatch produces (spool copies, crops, sidecars, timelines, clips, units,
engine caches) is written under a hidden partial name beside its target and renamed into
place: a reader sees the old file or the whole new one, never a torn one.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> atomic_write(folder / "a.json", '{"ok": true}') == folder / "a.json"
True
>>> (folder / "a.json").read_text(), sorted(p.name for p in folder.iterdir())
('{"ok": true}', ['a.json'])
>>> sha256_file(folder / "a.json")[:12]
'6bc0da1f42f9'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

BLOCK_BYTES = 1 << 20


def partial_path(target: Path, *, suffix: str = ".part", unique: bool = False) -> Path:
    """The hidden name ``target`` is written under: ``.<name>[.<pid>]<suffix>`` in the same folder.

    ``unique``: add the process id, where several processes may write the same target at once.
    ``suffix``: keep an extension a writer needs (``".part.jpg"`` for OpenCV's ``imwrite``).

    >>> partial_path(Path("/spool/abc.mp4")).name
    '.abc.mp4.part'
    """
    pid = f".{os.getpid()}" if unique else ""
    return target.with_name(f".{target.name}{pid}{suffix}")


@contextlib.contextmanager
def atomic_target(
    target: Path, *, suffix: str = ".part", unique: bool = False, fsync: bool = False
) -> Iterator[Path]:
    """Yield the partial path to write; when the block ends normally, rename it over ``target``.

    The partial file is removed whatever happens (an exception leaves ``target`` as it was).
    ``fsync``: flush the file and its folder to disk before and after the rename.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(target, suffix=suffix, unique=unique)
    try:
        yield partial
        if fsync:
            _fsync_file(partial)
        os.replace(partial, target)
        if fsync:
            fsync_dir(target.parent)
    finally:
        partial.unlink(missing_ok=True)


def atomic_write(
    target: Path, data: bytes | str, *, mode: int | None = None, unique: bool = False, fsync: bool = False
) -> Path:
    """Write ``data`` (text as UTF-8) to ``target`` atomically; ``mode``: its permission bits."""
    with atomic_target(target, unique=unique, fsync=fsync) as partial:
        partial.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        if mode is not None:
            partial.chmod(mode)
    return target


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the filesystem allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (and FUSE mounts) refuse fsync on a folder: nothing more to do
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    """sha256 of the file's bytes (hex), read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()
