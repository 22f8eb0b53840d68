"""The daemon in-process against real Redis, RabbitMQ and ffmpeg (no worker: messages stay queued)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from kombu import Connection

from tests.helpers import moving_square_clip, wait_for
from vidwatch.config import Config, load_config
from vidwatch.daemon import Daemon
from vidwatch.daemon.fingerprint import fingerprint
from vidwatch.results.keys import Keys


@contextmanager
def running(config: Config) -> Iterator[Daemon]:
    daemon = Daemon(config)
    daemon.start()
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        yield daemon
    finally:
        daemon.stop_event.set()
        thread.join(timeout=10)
        daemon.stop()


def queued_messages(config: Config, queue: str = "cpu") -> int:
    with Connection(config.broker.url.get_secret_value()) as conn:
        return conn.default_channel.queue_declare(queue=queue, passive=True).message_count


def events(client: redis.Redis, keys: Keys) -> list[tuple[str, str]]:
    return [(f["type"], f["video_id"]) for _, f in client.xrange(keys.events)]


@pytest.fixture
def config(site: dict) -> Config:
    return load_config(site["config"], environ={})


def test_existing_files_are_found_at_start_and_not_again_after_a_restart(
    config: Config, site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    keys = Keys(site["prefix"])
    clip = moving_square_clip(site["inbox"] / "cam1" / "a.mp4", seconds=2)
    shutil.copy(clip, site["inbox"] / "cam1" / "copy-of-a.mp4")  # same bytes: the same video
    with running(config) as daemon:
        wait_for(lambda: daemon.idle() and ("queued", fingerprint(clip).video_id) in events(redis_client, keys),
                 timeout_s=30, what="the file present at start to be queued")
    assert [kind for kind, _ in events(redis_client, keys)] == ["detected", "normalized", "queued"]
    assert queued_messages(config) == 1

    with running(config) as daemon:  # a restart: the walk finds both files again
        wait_for(daemon.idle, timeout_s=30, what="the daemon to settle")
    assert len(events(redis_client, keys)) == 3
    assert queued_messages(config) == 1


def test_a_record_left_mid_normalization_is_resumed(
    config: Config, site: dict, redis_client: redis.Redis, ffmpeg: str
) -> None:
    keys = Keys(site["prefix"])
    clip = moving_square_clip(config.paths.state_dir / "elsewhere" / "b.mp4", seconds=2)
    fp = fingerprint(clip)
    daemon = Daemon(config)  # the same host and state folder: the same daemon id as "before the crash"
    daemon.records.create(fp.video_id, {"path": str(clip), "owner": daemon.ledger.daemon_id}, path=str(clip))
    daemon.records.transition(fp.video_id, "normalizing")
    with running(config) as daemon:
        wait_for(lambda: redis_client.hget(keys.video(fp.video_id), "published") == "1", timeout_s=30,
                 what="the interrupted video to be published")
    assert redis_client.hget(keys.video(fp.video_id), "state") == "queued"
    assert queued_messages(config) == 1


def test_bad_input_fails_with_a_reason_and_the_daemon_keeps_going(
    config: Config, site: dict, redis_client: redis.Redis, ffmpeg: str
) -> None:
    keys = Keys(site["prefix"])
    (site["inbox"] / "cam1").mkdir()
    (site["inbox"] / "cam1" / "notes.mp4").write_text("not a video at all\n")
    (site["inbox"] / "cam1" / "empty.mkv").write_bytes(b"")
    with running(config) as daemon:
        good = moving_square_clip(site["inbox"] / "cam1" / "good.mp4", seconds=2)

        def ended() -> bool:
            return len([e for e in events(redis_client, keys) if e[0] in ("failed", "queued")]) == 3

        wait_for(lambda: daemon.idle() and ended(), timeout_s=30, what="two failures and one queued video")
        assert daemon.status().observers == {str(site["inbox"]): True}
    failed = {f["path"]: f["detail"] for _, f in redis_client.xrange(keys.events) if f["type"] == "failed"}
    assert set(failed) == {str(site["inbox"] / "cam1" / "notes.mp4"), str(site["inbox"] / "cam1" / "empty.mkv")}
    assert "not a video" in failed[str(site["inbox"] / "cam1" / "notes.mp4")]
    assert "empty file" in failed[str(site["inbox"] / "cam1" / "empty.mkv")]
    assert ("queued", fingerprint(good).video_id) in events(redis_client, keys)


def test_submit_ingests_now_and_refuses_paths_outside_the_roots(
    config: Config, site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    from vidwatch.errors import SourceError

    keys = Keys(site["prefix"])
    outside = moving_square_clip(tmp_path / "outside" / "x.mp4", seconds=2)
    (site["inbox"] / "link").symlink_to(outside.parent)
    with running(config) as daemon:
        wait_for(daemon.idle, timeout_s=30, what="the start-up walk")
        with pytest.raises(SourceError, match="not inside a watched root"):
            daemon.submit(site["inbox"] / "link" / "x.mp4")  # a symlink out of the root
        with pytest.raises(SourceError, match="not a file"):
            daemon.submit(site["inbox"])
        inside = shutil.copy(outside, site["inbox"] / "cam1.mp4")
        video_id = daemon.submit(inside)
        assert video_id == fingerprint(outside).video_id
        wait_for(lambda: redis_client.hget(keys.video(video_id), "published") == "1", timeout_s=30,
                 what="the submitted file to be published")
        daemon.submit(inside)  # again: the ledger knows it
        wait_for(daemon.idle, timeout_s=30, what="the daemon to settle")
    assert [kind for kind, _ in events(redis_client, keys)] == ["detected", "normalized", "queued"]
