"""Unmounted shares on the real daemon, with real mounts (the tests run as root).

The share is a tmpfs (``share``) bind-mounted on the watched root; unmounting the bind leaves
the root as an empty folder on its parent's filesystem, as an unmounted NAS leaves its mount
point. ``[watch] require_mount`` decides whether that is an outage (not ready, nothing
treated as deleted, rescanned when it is back) or an empty folder like any other.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.helpers import moving_square_clip, wait_for
from tests.integration.test_daemon import events
from tests.integration.test_daemon_files import get, serving
from vidwatch.config import load_config
from vidwatch.daemon.fingerprint import fingerprint
from vidwatch.results.keys import Keys


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here (mount {' '.join(args)}): {done.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=True, timeout=30)


def _mounted(path: Path) -> bool:
    return os.path.ismount(path)


@contextmanager
def share(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs outside the roots: the NAS's own disk, there while the root is unmounted."""
    folder = tmp_path / "share"
    folder.mkdir()
    _mount("-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder))
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, timeout=30)


@contextmanager
def bound(source: Path, root: Path) -> Iterator[None]:
    _mount("--bind", str(source), str(root))
    try:
        yield
    finally:
        if _mounted(root):
            subprocess.run(["umount", "-l", str(root)], check=False, timeout=30)


def roots_check(url: str) -> tuple[bool, dict[str, str]]:
    _, body = get(f"{url}/readyz")
    check = body["checks"]["roots"]
    return check["ok"], check["detail"]


# (require_mount, watch mode, unmounting is an outage)
CASES = [
    ("auto", "inotify", True),
    ("auto", "poll", True),
    ("true", "inotify", True),
    ("false", "inotify", False),
]


@pytest.mark.parametrize(("require", "mode", "outage"), CASES)
def test_an_unmounted_root_is_an_outage_and_is_rescanned_when_it_is_back(
    site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path, require: str, mode: str, outage: bool
) -> None:
    """An outage is reported, nothing in it counts as deleted, and what was written meanwhile is found at once
    when it is back; with ``require_mount = false`` the empty mount point is an empty folder, watched."""
    config = load_config(site["config"], environ={
        "VIDWATCH_WATCH__REQUIRE_MOUNT": require, "VIDWATCH_WATCH__MODE": mode,
        "VIDWATCH_WATCH__POLL_INTERVAL_SECONDS": "0.5"})
    keys = Keys(site["prefix"])
    root = site["inbox"]
    with share(tmp_path) as nas, bound(nas, root), serving(config) as (daemon, url):
        wait_for(lambda: daemon.idle() and roots_check(url)[0], timeout_s=30, what="the root watched")
        first = moving_square_clip(root / "cam1" / "a.mp4", seconds=1)
        first_id = fingerprint(first).video_id
        wait_for(lambda: ("queued", first_id) in events(redis_client, keys), timeout_s=30,
                 what="a clip on the mounted share")

        _umount(root)
        assert not _mounted(root) and list(root.iterdir()) == []  # an empty mount point is left
        if outage:
            wait_for(lambda: (r := roots_check(url)) and not r[0] and r[1][str(root)].startswith("not mounted"),
                     timeout_s=30, what="/readyz to report the root as not mounted")
            assert get(f"{url}/healthz")[0] == 200  # an outage, not a reason to restart the daemon
        else:
            wait_for(lambda: daemon.status().observers.get(str(root)), timeout_s=30,
                     what="the empty folder watched")
            assert roots_check(url)[0]

        second = moving_square_clip(nas / "cam1" / "b.mp4", seconds=2)  # written while unmounted
        _mount("--bind", str(nas), str(root))
        if not outage:  # just a folder to the daemon: what changed under it is found by the periodic rescan
            daemon.rescan()
        wait_for(lambda: ("queued", fingerprint(second).video_id) in events(redis_client, keys),
                 timeout_s=60, what="the file written during the outage, found by the rescan")
        wait_for(lambda: roots_check(url)[0], timeout_s=30, what="the root ready again")
        wait_for(daemon.idle, timeout_s=30, what="the daemon to settle")
    kinds = [kind for kind, _ in events(redis_client, keys)]
    assert "failed" not in kinds  # nothing was treated as deleted
    assert kinds.count("queued") == 2
    assert redis_client.hget(keys.video(first_id), "state") == "queued"


def test_a_video_whose_share_is_unmounted_waits_for_it_instead_of_failing(
    site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    """Claimed before a restart, resumed while its share is unmounted: its source is out of reach, not deleted."""
    config = load_config(site["config"], environ={"VIDWATCH_WATCH__REQUIRE_MOUNT": "true"})
    keys = Keys(site["prefix"])
    root = site["inbox"]
    with share(tmp_path) as nas:
        clip = moving_square_clip(nas / "cam1" / "c.mp4", seconds=1)
        fp = fingerprint(clip)
        path = str(root / "cam1" / "c.mp4")
        with serving(config) as (daemon, url):  # started with the share unmounted
            daemon.records.create(fp.video_id, {"path": path, "fingerprint": fp.digest, "size": fp.size,
                                                "mtime_ns": fp.mtime_ns, "owner": "a-daemon-gone"}, path=path)
            daemon.ledger.enqueue(fp.video_id)
            daemon.pool.wake()
            ok, detail = roots_check(url)
            assert not ok and "require_mount is true" in detail[str(root)]
            wait_for(lambda: redis_client.hget(keys.video(fp.video_id), "owner") == daemon.ledger.daemon_id
                     and daemon.status().videos_in_progress == 0
                     and redis_client.zscore(keys.backlog, fp.video_id) is not None,
                     timeout_s=30, what="the video taken, then waiting on the backlog for its root")
            assert redis_client.hget(keys.video(fp.video_id), "state") == "seen"
            with bound(nas, root):
                wait_for(lambda: redis_client.hget(keys.video(fp.video_id), "published") == "1", timeout_s=60,
                         what="the video normalized and published once its share is back")
                wait_for(daemon.idle, timeout_s=30, what="the daemon to settle")
    assert "failed" not in [kind for kind, _ in events(redis_client, keys)]
