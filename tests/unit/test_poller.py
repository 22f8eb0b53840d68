import os
import queue
from pathlib import Path

from vidwatch.daemon.poller import RECENT_S, DirPoller


def _age(path: Path, seconds: float = 10 * RECENT_S) -> None:
    """Make a folder's mtime old, as on a quiet NVR tree (recent folders are always re-listed)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def _drain(sink: queue.Queue) -> list[tuple[str, str]]:
    out = []
    while not sink.empty():
        out.append(sink.get_nowait())
    return out


def _tree(root: Path, cameras: int, days: int, files: int) -> None:
    for c in range(cameras):
        for d in range(days):
            folder = root / f"cam{c}" / f"2026-11-{d + 1:02d}"
            folder.mkdir(parents=True)
            for f in range(files):
                (folder / f"{f:04d}.mp4").write_bytes(b"x")
    for folder in [root, *root.rglob("*")]:
        if folder.is_dir():
            _age(folder)


def test_a_quiet_pass_stats_folders_only(tmp_path: Path) -> None:
    _tree(tmp_path, cameras=4, days=5, files=50)  # 1000 files in 25 folders
    sink: queue.Queue = queue.Queue()
    poller = DirPoller(tmp_path, sink, interval_s=1)
    first = poller.poll_once(report=False)
    assert first.listings == 25 and _drain(sink) == []
    quiet = poller.poll_once()
    assert (quiet.folder_stats, quiet.listings) == (25, 0)  # not 1000 stats
    assert _drain(sink) == []


def test_new_files_folders_and_deletions_are_reported(tmp_path: Path) -> None:
    _tree(tmp_path, cameras=2, days=1, files=2)
    sink: queue.Queue = queue.Queue()
    poller = DirPoller(tmp_path, sink, interval_s=1, skip_folder=lambda name: name.startswith("."))
    poller.poll_once(report=False)
    day = tmp_path / "cam0" / "2026-11-01"
    (day / "new.mp4").write_bytes(b"x")
    (day / "0000.mp4").unlink()
    (tmp_path / "cam1" / "2026-11-02").mkdir()
    (tmp_path / "cam1" / "2026-11-02" / "a.mp4").write_bytes(b"x")
    (tmp_path / ".hidden").mkdir()
    stats = poller.poll_once()
    events = _drain(sink)
    assert ("created", str(day / "new.mp4")) in events
    assert ("deleted", str(day / "0000.mp4")) in events
    assert ("dir", str(tmp_path / "cam1" / "2026-11-02")) in events
    assert ("created", str(tmp_path / "cam1" / "2026-11-02" / "a.mp4")) in events
    assert not any(".hidden" in path for _, path in events)
    assert stats.listings >= 3


def test_a_missing_or_suddenly_empty_root_is_an_outage_not_a_deletion(tmp_path: Path) -> None:
    root = tmp_path / "nas"
    _tree(root, cameras=1, days=1, files=3)
    sink: queue.Queue = queue.Queue()
    poller = DirPoller(root, sink, interval_s=1)
    poller.poll_once(report=False)
    moved = tmp_path / "unmounted"
    root.rename(moved)
    poller.poll_once()
    assert poller.outage and _drain(sink) == []
    root.mkdir()  # the mount point is back, but empty: the NAS is not mounted
    poller.poll_once()
    assert poller.outage == "reads as empty (mount dropped?)" and _drain(sink) == []
    root.rmdir()
    moved.rename(root)
    poller.poll_once()
    assert poller.outage is None
    assert [kind for kind, _ in _drain(sink)].count("deleted") == 0
