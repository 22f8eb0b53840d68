"""A source that changes after its claim, on the real daemon: one video, the final bytes' results, never two.

- a writer that pauses longer than ``settle_seconds`` and then finishes (MPEG-TS, MKV: no box
  check can tell the half is not whole), with a real worker: one video whose final run has the
  full duration;
- a source overwritten while it is normalized: the copy is dropped, the new bytes are taken;
- a source changed while its video is at a worker: a new run once that one ends;
- a normalized copy shorter than the source: failed, not published.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.e2e.processes import Proc
from tests.helpers import moving_square_clip, wait_for
from tests.integration.test_daemon import events, running
from vidwatch.config import Config, load_config
from vidwatch.daemon.fingerprint import fingerprint
from vidwatch.media.probe import probe
from vidwatch.results.keys import Keys
from vidwatch.results.records import State


def path_events(client: redis.Redis, keys: Keys, path: Path) -> list[tuple[str, str]]:
    return [(f["type"], f["video_id"]) for _, f in client.xrange(keys.events) if f["path"] == str(path)]


@pytest.fixture
def config(site: dict) -> Config:
    return load_config(site["config"], environ={})


@pytest.fixture
def worker(site: dict, tmp_path: Path) -> Iterator[Proc]:
    proc = Proc(["worker", "-c", str(site["config"])], tmp_path / "worker.log")
    yield proc
    proc.stop()


# (container, ffmpeg format, suffix)
PAUSED_WRITERS = [("MPEG-TS", "mpegts", ".ts"), ("Matroska", "matroska", ".mkv")]


@pytest.mark.parametrize(("container", "fmt", "suffix"), PAUSED_WRITERS)
def test_a_writer_that_pauses_then_finishes_is_one_video_with_the_full_duration(
    config: Config, site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path, worker: Proc,
    container: str, fmt: str, suffix: str,
) -> None:
    keys = Keys(site["prefix"])
    whole = moving_square_clip(tmp_path / f"whole{suffix}", seconds=6, fmt=fmt)
    data = whole.read_bytes()
    half = len(data) // 2 // 188 * 188  # at an MPEG-TS packet boundary (any cut for Matroska)
    path = site["inbox"] / "cam1" / f"rec{suffix}"
    path.parent.mkdir()
    with running(config) as daemon:
        wait_for(daemon.idle, timeout_s=30, what="the start-up walk")
        with open(path, "wb") as writer:
            writer.write(data[:half])
        # the pause: longer than settle_seconds, until the half has been taken for a video and ended
        first = wait_for(lambda: [vid for kind, vid in path_events(redis_client, keys, path)
                                  if kind in ("done", "failed")], timeout_s=90, what=f"the half {container}")[0]
        with open(path, "ab") as writer:
            writer.write(data[half:])

        def final() -> dict[str, Any] | None:
            record = daemon.records.record(first)
            return record if record is not None and record.run >= 2 and record.state is State.DONE else None

        record = wait_for(final, timeout_s=120, what="the finished file's run to be done")
        wait_for(daemon.idle, timeout_s=30, what="the daemon to settle")
    assert {vid for _, vid in path_events(redis_client, keys, path)} == {first}  # one video, never two
    assert record.fingerprint == fingerprint(path).digest
    full = probe(whole).duration_s
    assert abs((record.duration_s or 0) - full) < 0.5, (record.duration_s, full)
    summaries = [f for _, f in redis_client.xrange(keys.summaries) if f["video_id"] == first]
    assert summaries[-1]["run"] == str(record.run) and abs(float(summaries[-1]["duration"]) - full) < 0.5
    assert redis_client.hget(keys.video(first), "summary_run") == str(record.run)


def test_a_source_overwritten_while_it_is_normalized_is_taken_again(
    config: Config, site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = Keys(site["prefix"])
    source = moving_square_clip(site["inbox"] / "cam1" / "a.avi", seconds=4, codec="mpeg4")
    video_id = fingerprint(source).video_id
    replacement = moving_square_clip(tmp_path / "other.avi", seconds=2, codec="mpeg4")
    with running(config) as daemon:
        original = daemon.normalizer.normalize
        calls: list[str] = []

        def normalize_then_overwrite(vid: str, path: str, facts: Any, target: Path) -> Any:
            result = original(vid, path, facts, target)
            if not calls:  # the source is replaced (truncated and rewritten, as cp does) while it was read
                subprocess.run(["cp", str(replacement), path], check=True, timeout=30)
            calls.append(path)
            return result

        monkeypatch.setattr(daemon.normalizer, "normalize", normalize_then_overwrite)
        wait_for(lambda: daemon.idle() and ("queued", video_id) in path_events(redis_client, keys, source),
                 timeout_s=60, what="the video queued")
    assert len(calls) == 2  # normalized twice: the first copy was dropped
    assert [kind for kind, _ in path_events(redis_client, keys, source)] == ["detected", "normalized", "queued"]
    record = redis_client.hgetall(keys.video(video_id))
    assert record["fingerprint"] == fingerprint(source).digest == fingerprint(replacement).digest
    assert abs(probe(Path(record["spool_path"])).duration_s - probe(replacement).duration_s) < 0.5


def test_a_source_changed_at_a_worker_is_rerun_once_that_run_ends(
    config: Config, site: dict, redis_client: redis.Redis, ffmpeg: str, tmp_path: Path
) -> None:
    keys = Keys(site["prefix"])
    path = moving_square_clip(site["inbox"] / "cam1" / "b.ts", seconds=2, fmt="mpegts")
    video_id = fingerprint(path).video_id
    longer = moving_square_clip(tmp_path / "longer.ts", seconds=4, fmt="mpegts")
    with running(config) as daemon:
        wait_for(lambda: ("queued", video_id) in events(redis_client, keys), timeout_s=30, what="queued")
        daemon.records.transition(video_id, State.PROCESSING, event="started", path=str(path))  # a worker has it
        subprocess.run(["cp", str(longer), str(path)], check=True, timeout=30)
        wait_for(lambda: redis_client.hget(keys.video(video_id), "source_changed"), timeout_s=30,
                 what="the change to be noticed while the worker has the video")
        assert redis_client.hget(keys.video(video_id), "fingerprint") != fingerprint(path).digest
        daemon.records.transition(video_id, State.DONE, event="done", path=str(path))  # that run ends
        wait_for(lambda: redis_client.hget(keys.video(video_id), "run") == "2"
                 and redis_client.hget(keys.video(video_id), "published") == "1", timeout_s=60,
                 what="run 2 with the new bytes, published")
        wait_for(daemon.idle, timeout_s=30, what="the daemon to settle")
    record = redis_client.hgetall(keys.video(video_id))
    assert record["fingerprint"] == fingerprint(path).digest and record["state"] == "queued"
    assert abs(float(record["probe_duration_s"]) - probe(longer).duration_s) < 0.5
    assert {vid for _, vid in path_events(redis_client, keys, path)} == {video_id}


def test_a_normalized_copy_shorter_than_its_source_is_not_published(
    config: Config, site: dict, redis_client: redis.Redis, ffmpeg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = Keys(site["prefix"])
    source = moving_square_clip(site["inbox"] / "cam1" / "c.mp4", seconds=6)
    video_id = fingerprint(source).video_id
    with running(config) as daemon:
        original = daemon.normalizer.normalize

        def normalize_short(vid: str, path: str, facts: Any, target: Path) -> Any:
            result = original(vid, path, facts, target)
            cut = target.with_name("cut.mp4")
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(target), "-t", "2", "-c", "copy", str(cut)],
                           check=True, timeout=30)
            cut.replace(target)
            return result

        monkeypatch.setattr(daemon.normalizer, "normalize", normalize_short)
        wait_for(lambda: daemon.idle() and ("failed", video_id) in events(redis_client, keys), timeout_s=60,
                 what="the video failed")
    record = redis_client.hgetall(keys.video(video_id))
    assert "cut short" in record["error"] and "of a 6.00 s source" in record["error"], record["error"]
    assert ("queued", video_id) not in events(redis_client, keys)
    assert not (config.paths.spool / f"{video_id}.mp4").exists()
