"""What the real daemon does with files that are not video files: FIFOs, sockets, devices, links, unreadable files.

Each case is dropped into a watched root next to a real clip (inotify mode, then poll mode):
the clip must still be queued (nothing blocks a claim thread), and each case must end as one
``failed`` event naming the file and why, logged once, never retried; ffprobe never sees it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.helpers import moving_square_clip, wait_for
from tests.integration.test_daemon import events, running
from vidwatch.api.server import ApiServer, readiness_checks
from vidwatch.config import Config, load_config
from vidwatch.daemon import Daemon
from vidwatch.daemon.fingerprint import fingerprint
from vidwatch.daemon.source import path_video_id
from vidwatch.daemon.work import Kind
from vidwatch.results.keys import Keys

Maker = Callable[[Path, Path], None]  # (path to create, a folder outside the roots)


def _fifo(path: Path, _outside: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path, _outside: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))  # the node stays after the socket is closed
    sock.close()


def _zero_device(path: Path, _outside: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o644, os.makedev(1, 5))  # /dev/zero: endless bytes to a reader


def _link_out(path: Path, outside: Path) -> None:
    path.symlink_to(moving_square_clip(outside / "private.mp4", seconds=1))


def _link_passwd(path: Path, _outside: Path) -> None:
    path.symlink_to("/etc/passwd")


def _link_proc_mem(path: Path, _outside: Path) -> None:
    path.symlink_to("/proc/self/mem")


def _link_loop(path: Path, _outside: Path) -> None:
    path.symlink_to(path.name)  # a link to itself


def _broken_link(path: Path, _outside: Path) -> None:
    path.symlink_to(path.with_name("never-written.mp4"))


# (name, file name, how it is made, failure kind, words in the reason)
CASES: list[tuple[str, str, Maker, str, str]] = [
    ("fifo", "a.mp4", _fifo, "refused", "not a regular file (a FIFO)"),
    ("socket", "s.mkv", _socket, "refused", "not a regular file (a socket)"),
    ("device", "zero.ts", _zero_device, "refused", "not a regular file (a character device)"),
    ("link out of the root", "x.mp4", _link_out, "refused", "outside the watched roots"),
    ("link to /etc/passwd", "passwd.mp4", _link_passwd, "refused", "a link to /etc/passwd, outside the watched roots"),
    ("link to /proc/self/mem", "mem.mp4", _link_proc_mem, "refused", "outside the watched roots"),
    ("link loop", "loop.mp4", _link_loop, "unreadable", "a symbolic link loop (ELOOP)"),
    ("broken link", "broken.mp4", _broken_link, "missing", "a broken link"),
]


def failed_events(client: redis.Redis, keys: Keys) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for _, fields in client.xrange(keys.events):
        if fields["type"] == "failed":
            out.setdefault(fields["path"], []).append(fields["detail"])
    return out


@pytest.mark.parametrize("mode", ["inotify", "poll"])
def test_special_files_and_links_fail_once_and_never_block_a_real_clip(
    site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path, mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = load_config(site["config"], environ={"VIDWATCH_WATCH__MODE": mode,
                                                  "VIDWATCH_WATCH__POLL_INTERVAL_SECONDS": "0.5"})
    keys = Keys(site["prefix"])
    folder = site["inbox"] / "cam7"
    folder.mkdir()
    outside = tmp_path / "elsewhere"
    caplog.set_level(logging.WARNING, logger="vidwatch")
    with running(config) as daemon:
        wait_for(daemon.idle, timeout_s=30, what="the start-up walk")
        for _, name, make, _, _ in CASES:
            make(folder / name, outside)
        clip = moving_square_clip(folder / "real.mp4", seconds=1)
        video_id = fingerprint(clip).video_id
        wait_for(lambda: ("queued", video_id) in events(redis_client, keys) and len(failed_events(
            redis_client, keys)) == len(CASES) and daemon.idle(), timeout_s=90,
            what="the real clip queued and every special case failed")
        daemon.rescan()  # seen again, unchanged: known, not failed again
        wait_for(daemon.idle, timeout_s=30, what="the rescan")
        assert daemon.status().stuck == {}
    failed = failed_events(redis_client, keys)
    for case, name, _, kind, words in CASES:
        path = str(folder / name)
        assert len(failed.get(path, [])) == 1, (case, failed.get(path))
        reason = failed[path][0]
        assert words in reason and path in reason, (case, reason)
        record = redis_client.hgetall(keys.video(path_video_id(path)))
        assert (record["state"], record["failure_stage"], record["failure_kind"]) == ("failed", "ingest", kind), case
        assert record["error"].endswith(f"failed after {config.normalize.probe_attempts} checks"), case
        logged = [r for r in caplog.records if path in r.getMessage()]
        assert len(logged) == 1, (case, [r.getMessage() for r in logged])  # said once, not every second
    assert str(outside / "private.mp4") not in {f["path"] for _, f in redis_client.xrange(keys.events)}


def test_a_link_inside_the_root_is_a_file_like_any_other(
    site: dict, redis_client: redis.Redis, ffmpeg: str
) -> None:
    config = load_config(site["config"], environ={})
    keys = Keys(site["prefix"])
    clip = moving_square_clip(site["inbox"] / "archive" / "a.mp4", seconds=1)
    with running(config) as daemon:
        wait_for(daemon.idle, timeout_s=30, what="the start-up walk")
        link = site["inbox"] / "cam1" / "a-link.mp4"
        link.parent.mkdir()
        link.symlink_to(clip)
        wait_for(lambda: daemon.idle() and ("queued", fingerprint(clip).video_id) in events(redis_client, keys),
                 timeout_s=30, what="the clip queued")
    assert failed_events(redis_client, keys) == {}


@contextmanager
def bind_mounted(source: str, target: Path) -> Iterator[None]:
    target.touch()
    done = subprocess.run(["mount", "--bind", source, str(target)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, timeout=30)


def test_a_file_that_gives_an_io_error_fails_once(
    site: dict, redis_client: redis.Redis, ffmpeg: str
) -> None:
    """``/proc/<pid>/mem`` bind-mounted over a ``.mp4``: a regular file inside the root whose reads fail (EIO)."""
    config = load_config(site["config"], environ={})
    keys = Keys(site["prefix"])
    target = site["inbox"] / "cam1" / "mem.mp4"
    target.parent.mkdir()
    with bind_mounted(f"/proc/{os.getpid()}/mem", target), running(config) as daemon:
        wait_for(lambda: daemon.idle() and failed_events(redis_client, keys), timeout_s=60, what="the failure")
        daemon.events.put((Kind.MODIFIED, str(target)))  # touched again, unchanged: not failed again
        wait_for(daemon.idle, timeout_s=30, what="the second look")
    failed = failed_events(redis_client, keys)
    assert list(failed) == [str(target)]
    assert len(failed[str(target)]) == 1 and "I/O error (EIO)" in failed[str(target)][0]
    assert redis_client.hget(keys.video(path_video_id(str(target))), "failure_kind") == "unreadable"


@contextmanager
def serving(config: Config) -> Iterator[tuple[Daemon, str]]:
    daemon = Daemon(config)
    api = ApiServer(config, daemon, readiness_checks(config, daemon))
    api.start()
    with running_started(daemon):
        host, port = api.address
        try:
            yield daemon, f"http://{host}:{port}"
        finally:
            api.stop()


@contextmanager
def running_started(daemon: Daemon) -> Iterator[None]:
    daemon.start()
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        daemon.stop_event.set()
        thread.join(timeout=10)
        daemon.stop()


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_healthz_fails_while_a_claim_thread_is_wedged(
    site: dict, ffmpeg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever wedges a claim (here a claim that never returns), /healthz says so and names the file."""
    config = load_config(site["config"], environ={})
    release = threading.Event()
    with serving(config) as (daemon, url):
        wait_for(daemon.idle, timeout_s=30, what="the start-up walk")
        assert get(f"{url}/healthz")[0] == 200
        daemon.claims.claim_deadline_s = 1.0
        monkeypatch.setattr(daemon.ingestor, "claim",
                            lambda path, final_attempt, **_: release.wait(60) and Kind.CLAIMED)
        clip = moving_square_clip(site["inbox"] / "cam1" / "a.mp4", seconds=1)
        try:
            _, body = wait_for(lambda: (answer := get(f"{url}/healthz"))[0] == 503 and answer, timeout_s=30,
                                    what="/healthz to fail")
            assert any(str(clip) in reason and "stuck" in reason for reason in body["reasons"]), body
            started = time.monotonic()
            daemon.claims.stop(timeout_s=0.5)  # a wedged claim does not hold up a shutdown (SIGTERM)
            assert time.monotonic() - started < 5
        finally:
            release.set()
        wait_for(lambda: get(f"{url}/healthz")[0] == 200, timeout_s=30, what="/healthz to recover")


@pytest.mark.parametrize(("case", "name", "make", "words"), [
    ("fifo", "a.mp4", _fifo, "not a file"),
    ("device", "zero.ts", _zero_device, "not a file"),
    ("link out of the root", "x.mp4", _link_out, "not inside a watched root"),
    ("link loop", "loop.mp4", _link_loop, "a symbolic link loop"),
])
def test_submit_refuses_what_the_watcher_refuses(
    site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path, case: str, name: str, make: Maker,
    words: str,
) -> None:
    """``vidwatch submit`` and ``POST /jobs`` (``Daemon.submit``) say why at once, and nothing is ledgered."""
    from vidwatch.errors import SourceError

    config = load_config(site["config"], environ={})
    path = site["inbox"] / "cam7" / name
    path.parent.mkdir()
    make(path, tmp_path / "elsewhere")
    with running(config) as daemon:
        wait_for(daemon.idle, timeout_s=30, what="the start-up walk")
        with pytest.raises(SourceError, match=words):
            daemon.submit(path)
        assert daemon.status().claiming == 0
