"""What kind of mount holds a path, the watch mode it gets, and the spool's free space."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidwatch.filesystems import SPOOL_MIN_FREE_BYTES, choose_mode, existing_ancestor, filesystem_type, spool_space

MOUNTINFO = "\n".join([
    "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw",
    "40 22 0:50 / /nas rw,relatime - nfs4 srv:/video rw",
    "41 40 0:51 / /nas/cam\\0409 rw - cifs //srv/cam9 rw",  # a space in the mount point (\040)
    "42 22 0:52 / /mnt/s3 rw - fuse.s3fs s3fs rw",
    "43 22 0:53 / /data rw - xfs /dev/sdb1 rw",
    "garbage line without a separator",
])

TYPES = [  # path, the filesystem holding it (the longest mount point that contains it)
    ("/", "ext4"),
    ("/home/user", "ext4"),
    ("/nas", "nfs4"),
    ("/nas/cam1/2026-11-24", "nfs4"),
    ("/nas/cam 9/a.mp4", "cifs"),
    ("/nasty", "ext4"),  # a prefix of the name is not inside the mount
    ("/mnt/s3/bucket", "fuse.s3fs"),
    ("/data/spool", "xfs"),
]


@pytest.mark.parametrize(("path", "expected"), TYPES)
def test_filesystem_type(path: str, expected: str) -> None:
    assert filesystem_type(Path(path), MOUNTINFO) == expected


MODES = [  # configured mode, root, the mode it watches with
    ("auto", "/nas/cam1", "poll"),  # network filesystem: other hosts' writes raise no inotify events
    ("auto", "/nas/cam 9", "poll"),
    ("auto", "/mnt/s3", "poll"),  # FUSE
    ("auto", "/data/in", "inotify"),
    ("auto", "/", "inotify"),
    ("inotify", "/nas/cam1", "inotify"),  # what is configured wins
    ("poll", "/data/in", "poll"),
]


@pytest.mark.parametrize(("mode", "root", "expected"), MODES)
def test_choose_mode(mode: str, root: str, expected: str) -> None:
    assert choose_mode(mode, Path(root), MOUNTINFO) == expected


def test_existing_ancestor(tmp_path: Path) -> None:
    assert existing_ancestor(tmp_path) == tmp_path
    assert existing_ancestor(tmp_path / "not" / "yet") == tmp_path


def test_spool_space_reports_the_folder_it_will_be_in(tmp_path: Path) -> None:
    ok, detail = spool_space(tmp_path / "spool")  # not made yet: its parent's filesystem
    assert detail["path"] == str(tmp_path / "spool") and detail["min_free_bytes"] == SPOOL_MIN_FREE_BYTES
    assert ok == (detail["free_bytes"] >= SPOOL_MIN_FREE_BYTES)
    assert 0.0 <= detail["free_percent"] <= 100.0
