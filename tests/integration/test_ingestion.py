"""Ingestion on real storage semantics: polling, two daemons, lost events, a root that goes away."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis

from tests.e2e.processes import Proc
from tests.helpers import missing, moving_square_clip, wait_for
from tests.integration.test_daemon import events, running
from vidwatch.config import Config, load_config
from vidwatch.results.keys import Keys


def distinct_ts_clips(template: Path, folder: Path, count: int, first: int = 0) -> list[Path]:
    """``count`` different files from one MPEG-TS clip: each ends with its own null packet (numbered from ``first``)."""
    data = template.read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(first, first + count):
        null_packet = b"\x47\x1f\xff\x10" + i.to_bytes(4, "big") * 46
        path = folder / f".{i:04d}.ts.part"
        path.write_bytes(data + null_packet)
        paths.append(path)
    return paths


def publish_all(paths: list[Path]) -> list[Path]:
    """Rename into place, as recorders do."""
    out = []
    for path in paths:
        final = path.with_name(path.name[1:].removesuffix(".part"))
        path.rename(final)
        out.append(final)
    return out


@pytest.fixture
def tiny_ts(tmp_path: Path, ffmpeg: str) -> Path:
    return moving_square_clip(tmp_path / "tiny.ts", seconds=1, size="64x48", fmt="mpegts")


def _config(site: dict, **watch: object) -> Config:
    env = {f"VIDWATCH_WATCH__{k.upper()}": str(v) for k, v in watch.items()}
    return load_config(site["config"], environ=env)


def test_forced_poll_mode_finds_new_files(site: dict, redis_client: redis.Redis, tiny_ts: Path) -> None:
    config = _config(site, mode="poll", poll_interval_seconds=0.5, settle_seconds=0.5)
    keys = Keys(site["prefix"])
    with running(config) as daemon:
        wait_for(daemon.idle, timeout_s=30, what="the start-up walk")
        assert daemon.status().pollers
        day = site["inbox"] / "cam1" / "2026-11-24"
        publish_all(distinct_ts_clips(tiny_ts, day, 3))  # a new date folder with files inside
        wait_for(lambda: [k for k, _ in events(redis_client, keys)].count("queued") == 3, timeout_s=30,
                 what="three files found by polling")


def test_two_daemons_on_one_folder_summarise_each_file_once(
    site: dict, redis_client: redis.Redis, tiny_ts: Path, tmp_path: Path
) -> None:
    keys = Keys(site["prefix"])
    first = _config(site)
    second = load_config(site["config"], environ={"VIDWATCH_PATHS__STATE_DIR": str(tmp_path / "var2")})
    worker = Proc(["worker", "-c", str(site["config"])], tmp_path / "worker.log")
    try:
        with running(first) as a, running(second) as b:
            assert a.ledger.daemon_id != b.ledger.daemon_id
            publish_all(distinct_ts_clips(tiny_ts, site["inbox"] / "cam1", 50))
            wait_for(lambda: redis_client.xlen(keys.summaries) >= 50 and a.idle() and b.idle(), timeout_s=150,
                     what="50 summaries")
    finally:
        worker.stop()
    kinds = events(redis_client, keys)
    for kind in ("detected", "normalized", "queued", "done"):
        ids = [video for k, video in kinds if k == kind]
        assert len(ids) == len(set(ids)) == 50, kind
    summarised = [f["video_id"] for _, f in redis_client.xrange(keys.summaries)]
    assert len(summarised) == len(set(summarised)) == 50
    owners = {redis_client.hget(keys.video(v), "owner") for v in summarised}
    assert owners <= {a.ledger.daemon_id, b.ledger.daemon_id}


def test_lost_inotify_events_are_recovered_by_the_rescan(
    site: dict, redis_client: redis.Redis, tiny_ts: Path
) -> None:
    config = _config(site, rescan_seconds=3600)
    keys = Keys(site["prefix"])
    with running(config) as daemon:
        wait_for(daemon.idle, timeout_s=30, what="the start-up walk")
        root = site["inbox"]
        daemon.observers[root].unschedule_all()  # from here on, the kernel's events are lost
        publish_all(distinct_ts_clips(tiny_ts, root / "cam1", 20))
        wait_for(daemon.idle, timeout_s=30, what="the daemon to be idle")
        assert events(redis_client, keys) == []  # nothing was seen
        daemon.events.put(("overflow", str(root)))  # what an IN_Q_OVERFLOW notice triggers
        wait_for(lambda: [k for k, _ in events(redis_client, keys)].count("queued") == 20, timeout_s=60,
                 what="all 20 files found by the rescan")


def test_a_root_that_disappears_is_reported_and_resumed(
    site: dict, redis_client: redis.Redis, tiny_ts: Path, tmp_path: Path
) -> None:
    config = _config(site)
    keys = Keys(site["prefix"])
    root = site["inbox"]
    with running(config) as daemon:
        wait_for(daemon.idle, timeout_s=30, what="the start-up walk")
        away = tmp_path / "unmounted"
        root.rename(away)
        wait_for(lambda: str(root) in daemon.status().root_errors, timeout_s=30, what="the outage to be reported")
        publish_all(distinct_ts_clips(tiny_ts, away / "cam1", 2))  # written while "unmounted"
        away.rename(root)
        wait_for(lambda: [k for k, _ in events(redis_client, keys)].count("queued") == 2, timeout_s=60,
                 what="the backlog written during the outage")
        assert daemon.status().root_errors == {}
        assert daemon.status().observers == {str(root): True}


def test_moved_in_tree_is_found(site: dict, redis_client: redis.Redis, tiny_ts: Path, tmp_path: Path) -> None:
    config = _config(site)
    keys = Keys(site["prefix"])
    tree = tmp_path / "usb" / "cam7" / "2026-11-24"
    publish_all(distinct_ts_clips(tiny_ts, tree, 3))
    with running(config) as daemon:
        wait_for(daemon.idle, timeout_s=30, what="the start-up walk")
        subprocess.run(["mv", str(tmp_path / "usb" / "cam7"), str(site["inbox"])], check=True, timeout=10)
        wait_for(lambda: [k for k, _ in events(redis_client, keys)].count("queued") == 3, timeout_s=30,
                 what="the three files of the moved-in tree")


def test_redis_down_for_a_while_loses_nothing(site: dict, tiny_ts: Path, tmp_path: Path) -> None:
    """A private redis-server this test may stop; the daemon waits, then every file is queued once."""
    import shutil as _shutil
    import signal

    from tests.conftest import free_port

    binary = _shutil.which("redis-server")
    if binary is None:
        missing("redis-server", "apt-get install redis-server")
    port = free_port()
    folder = tmp_path / "redis"
    folder.mkdir()

    def start_redis() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=port, socket_connect_timeout=0.5)
        wait_for(lambda: _pings(client), timeout_s=20, what="the private redis-server")
        client.close()
        return proc

    server = start_redis()
    config = load_config(site["config"], environ={"VIDWATCH_REDIS__URL": f"redis://127.0.0.1:{port}/0"})
    client = redis.Redis(port=port, decode_responses=True)
    keys = Keys(site["prefix"])
    try:
        with running(config) as daemon:
            wait_for(daemon.idle, timeout_s=30, what="the start-up walk")
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            publish_all(distinct_ts_clips(tiny_ts, site["inbox"] / "cam1", 5))
            wait_for(lambda: not daemon.status().redis_ok, timeout_s=30, what="the daemon to notice")
            assert daemon.status().loop_age_s < 5  # still ticking, not stuck
            server = start_redis()  # empty: nothing was kept on disk
            wait_for(lambda: [f["type"] for _, f in client.xrange(keys.events)].count("queued") == 5,
                     timeout_s=90, what="all five files once Redis is back")
            wait_for(daemon.idle, timeout_s=30, what="the daemon to settle")
        assert [f["type"] for _, f in client.xrange(keys.events)].count("detected") == 5
    finally:
        client.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
