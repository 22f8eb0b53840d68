"""Atomic writes, file hashing, mounts and free space, paths inside roots, plugin settings."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from vidwatch.errors import SourceError
from vidwatch.fileio import atomic_target, atomic_write, partial_path, sha256_file
from vidwatch.filesystems import choose_mode, existing_ancestor, filesystem_type, spool_space
from vidwatch.paths import file_in_roots, is_inside


def test_atomic_write_replaces_whole_and_leaves_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    atomic_write(target, "one")
    atomic_write(target, b"two", mode=0o600, fsync=True)
    assert target.read_bytes() == b"two" and (target.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError), atomic_target(target) as partial:
        partial.write_text("half")
        raise RuntimeError("writer died")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_partial_names() -> None:
    target = Path("/spool/abc.mp4")
    assert partial_path(target).name == ".abc.mp4.part"
    assert partial_path(target, unique=True).name == f".abc.mp4.{os.getpid()}.part"
    assert partial_path(Path("/t/x.jpg"), suffix=".part.jpg").name == ".x.jpg.part.jpg"


def test_sha256_file(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # several blocks
    (tmp_path / "m.onnx").write_bytes(data)
    assert sha256_file(tmp_path / "m.onnx") == hashlib.sha256(data).hexdigest()


MOUNTINFO = "\n".join([
    "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw",
    "40 22 0:50 / /mnt/nvr rw - nfs4 nas:/export/nvr rw",
    "41 22 0:51 / /mnt/my\\040share rw - cifs //nas/share rw",
    "42 22 0:52 / /mnt/fuse rw - fuse.sshfs host: rw",
])
MODES = [  # path, configured mode, filesystem type, chosen mode
    ("/mnt/nvr/cam1", "auto", "nfs4", "poll"),
    ("/mnt/my share/cam2", "auto", "cifs", "poll"),
    ("/mnt/fuse/x", "auto", "fuse.sshfs", "poll"),
    ("/srv/video", "auto", "ext4", "inotify"),
    ("/mnt/nvr", "inotify", "nfs4", "inotify"),
]


@pytest.mark.parametrize(("path", "mode", "fstype", "chosen"), MODES)
def test_watch_mode_from_the_mount(path: str, mode: str, fstype: str, chosen: str) -> None:
    assert filesystem_type(Path(path), MOUNTINFO) == fstype
    assert choose_mode(mode, Path(path), MOUNTINFO) == chosen


def test_spool_space_looks_where_the_folder_will_be(tmp_path: Path) -> None:
    spool = tmp_path / "not" / "yet"
    assert existing_ancestor(spool) == tmp_path
    _, detail = spool_space(spool)
    assert detail["path"] == str(spool) and detail["free_bytes"] > 0 and detail["total_bytes"] >= detail["free_bytes"]


def test_files_inside_roots(tmp_path: Path) -> None:
    root, outside = tmp_path / "nvr", tmp_path / "other"
    (root / "cam1").mkdir(parents=True)
    outside.mkdir()
    (root / "cam1" / "a.mp4").write_bytes(b"x")
    (outside / "b.mp4").write_bytes(b"x")
    (root / "cam1" / "link.mp4").symlink_to(outside / "b.mp4")  # resolves outside: refused
    assert file_in_roots(str(root / "cam1" / "a.mp4"), [root]) == root / "cam1" / "a.mp4"
    with pytest.raises(SourceError, match="not inside a watched root"):
        file_in_roots(outside / "b.mp4", [root])
    with pytest.raises(SourceError, match="not inside a watched root"):
        file_in_roots(root / "cam1" / "link.mp4", [root])
    with pytest.raises(SourceError, match="not a file"):
        file_in_roots(root / "cam1", [root])
    assert is_inside(root / "cam1", root) and not is_inside(outside, root)


def test_a_root_given_through_a_symlink_keeps_its_configured_name(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "cam1").mkdir(parents=True)
    (real / "cam1" / "a.mp4").write_bytes(b"x")
    (tmp_path / "nvr").symlink_to(real)
    assert file_in_roots(real / "cam1" / "a.mp4", [tmp_path / "nvr"]) == tmp_path / "nvr" / "cam1" / "a.mp4"
