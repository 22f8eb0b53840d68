"""daemon/source: what a candidate is, read without ever blocking (no services; each case made on disk)."""

from __future__ import annotations

import errno
import os
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from vidwatch.daemon import source
from vidwatch.daemon.fingerprint import fingerprint
from vidwatch.daemon.mounts import RootChecks

BOXES = b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00" + b"\x00\x00\x00\x08moov" + b"\x00\x00\x00\x0cmdat1234"


def _regular(path: Path, _outside: Path) -> None:
    path.write_bytes(BOXES)


def _fifo(path: Path, _outside: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path, _outside: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


def _device(path: Path, _outside: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))


def _link_in(path: Path, _outside: Path) -> None:
    target = path.with_name("target.mp4")
    target.write_bytes(BOXES)
    path.symlink_to(target.name)


def _link_out(path: Path, outside: Path) -> None:
    (outside / "private.mp4").write_bytes(BOXES)
    path.symlink_to(outside / "private.mp4")


def _folder_link_out(path: Path, outside: Path) -> None:
    (outside / "x.mp4").write_bytes(BOXES)
    (path.parent / "dir").symlink_to(outside)


def _loop(path: Path, _outside: Path) -> None:
    path.symlink_to(path.name)


def _broken(path: Path, _outside: Path) -> None:
    path.symlink_to("nothing-here.mp4")


# (case, how it is made, the path to read (relative to the root's cam1), error class or None, words)
CASES: list[tuple[str, Callable[[Path, Path], None], str, type[Exception] | None, str]] = [
    ("regular file", _regular, "a.mp4", None, ""),
    ("fifo", _fifo, "a.mp4", source.Refused, "not a regular file (a FIFO)"),
    ("socket", _socket, "a.mp4", source.Refused, "not a regular file (a socket)"),
    ("device", _device, "a.mp4", source.Refused, "not a regular file (a character device)"),
    ("link inside the root", _link_in, "a.mp4", None, ""),
    ("link out of the root", _link_out, "a.mp4", source.Refused, "outside the watched roots"),
    ("folder link out of the root", _folder_link_out, "dir/x.mp4", source.Refused, "outside the watched roots"),
    ("link loop", _loop, "a.mp4", source.Unreadable, "a symbolic link loop (ELOOP)"),
    ("broken link", _broken, "a.mp4", source.Unreadable, "a broken link"),
]


@pytest.mark.parametrize(("case", "make", "name", "error", "words"), CASES, ids=[c[0] for c in CASES])
def test_read_refuses_what_is_not_a_file_inside_a_root_and_never_blocks(
    tmp_path: Path, case: str, make: Callable[[Path, Path], None], name: str, error: type[Exception] | None,
    words: str,
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "cam1").mkdir(parents=True)
    outside.mkdir()
    make(root / "cam1" / "a.mp4", outside)
    path = root / "cam1" / name
    outcome: list[object] = []
    reader = threading.Thread(target=lambda: outcome.append(_attempt(path, [root])), daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert outcome, f"{case}: reading blocked"
    result = outcome[0]
    if error is None:
        assert isinstance(result, source.SourceRead), result
        assert result.fingerprint == fingerprint(path.resolve()) and result.incomplete is None
    else:
        assert isinstance(result, error), (case, result)
        assert words in str(result) and str(path) in str(result), str(result)
    assert source.stamp(path) == source.stamp(path)  # the settle tracker's stat answers for every case


def _attempt(path: Path, roots: list[Path]) -> object:
    try:
        return source.read(path, roots)
    except (source.Refused, source.Unreadable) as exc:
        return exc


def test_fingerprint_of_a_fifo_raises_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "a.mp4"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        fingerprint(fifo)


def test_path_ids_are_stable_and_distinct() -> None:
    assert source.path_video_id("/nvr/a.mp4") == source.path_video_id("/nvr/a.mp4")
    assert source.path_video_id("/nvr/a.mp4") != source.path_video_id("/nvr/b.mp4")


# (require_mount, a mount point when first seen, a mount point now, outage expected)
MOUNT_RULES = [
    ("auto", True, True, False),
    ("auto", True, False, True),
    ("auto", False, False, False),
    (True, False, False, True),
    (True, True, False, True),
    (False, True, False, False),
]


@pytest.mark.parametrize(("require", "at_start", "now", "outage"), MOUNT_RULES)
def test_require_mount(require: bool | str, at_start: bool, now: bool, outage: bool) -> None:
    checks = RootChecks(require_mount=require, mount_points=dict)  # type: ignore[arg-type]
    checks.mount_rule("/nas", root_dev=2 if at_start else 1, parent_dev=1, listed=False)
    why = checks.mount_rule("/nas", root_dev=2 if now else 1, parent_dev=1, listed=False)
    assert (why is not None) == outage, why


# (errno, words in the reason, the record's failure kind)
ERRORS = [
    (errno.ELOOP, "a symbolic link loop (ELOOP)", "unreadable"),
    (errno.ENOENT, "a broken link (its target does not exist) (ENOENT)", "missing"),
    (errno.EACCES, "permission denied (EACCES)", "permission"),
    (errno.EPERM, "permission denied (EPERM)", "permission"),
    (errno.EIO, "I/O error (EIO)", "unreadable"),
    (errno.ESTALE, "(ESTALE)", "unreadable"),
]


@pytest.mark.parametrize(("code", "words", "failure"), ERRORS)
def test_unreadable_names_the_file_and_why(code: int, words: str, failure: str) -> None:
    error = source.unreadable("/nvr/cam1/a.mp4", OSError(code, os.strerror(code)))
    assert str(error).startswith("/nvr/cam1/a.mp4: cannot read: ") and words in str(error), str(error)
    assert error.failure == failure
